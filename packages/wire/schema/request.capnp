# VerityDB wire protocol: requests (client → server; PROTOCOL.md §5).
@0x985ebed8691d9bb5;

enum Consistency {
  linearizable @0;  # primary only; sees every write acknowledged before the read began
  causal @1;        # any replica; waits until applied >= position (the session's token)
  eventual @2;      # any replica; a consistent snapshot, maybe stale; position must be 0
  atPosition @3;    # any replica; exactly the state after `position` (>= 1)
}

struct Options {
  consistency @0 :Consistency;
  position @1 :UInt64;        # position token (see Consistency); 0 = none
  timeoutMs @2 :UInt32;       # 0 = the server's default
  rowsLimit @3 :UInt32;       # rows returned at most over all frames; 0 = the server's default
}

struct Statement {
  sql @0 :Text;               # 1..sqlTextBytesMax bytes of UTF-8
  params @1 :Data;            # value list (PROTOCOL.md §6); null pointer = no parameters
}

struct Session {
  clientIdHigh @0 :UInt64;    # u128 client session id (not zero)
  clientIdLow @1 :UInt64;
  requestNumber @2 :UInt32;   # strictly increasing per session; 0 = registration
}

struct Execute {
  tenant @0 :UInt64;
  statements @1 :List(Statement);  # 1..batchStatementsMax
  atomic @2 :Bool;                 # all statements apply or none (one position)
  session @3 :Session;             # null pointer = no exactly-once (never retried)
  options @4 :Options;             # null pointer = defaults (causal, position 0)
}

struct Query {
  tenant @0 :UInt64;
  statement @1 :Statement;
  options @2 :Options;
}

struct Subscribe {
  tenant @0 :UInt64;
  stream @1 :Text;            # table name; 1..identifierBytesMax bytes
  from @2 :UInt64;            # first position to deliver (>= 1)
}

struct TenantSpec {
  id @0 :UInt64;              # >= 1 (0 is the system tenant)
  name @1 :Text;              # 1..identifierBytesMax bytes
}

struct TokenSpec {
  scopes @0 :List(Text);      # "admin", "tenant:<id>:read", "tenant:<id>:write"; 1..64 entries
  expiresAtMicros @1 :UInt64; # µs since the Unix epoch; 0 = never
}

struct VerifySpec {
  tenant @0 :UInt64;          # 0 = the whole log; else that tenant's chain
}

struct Admin {
  union {
    createTenant @0 :TenantSpec;
    dropTenant @1 :UInt64;    # tenant id
    listTenants @2 :Void;
    status @3 :Void;
    createToken @4 :TokenSpec;
    verify @5 :VerifySpec;    # checks the answering server's own log; answered with verify reports
    exportTenant @6 :UInt64;  # tenant id (>= 1); answered with export chunks (docs/EXPORT.md)
    backup @7 :Void;          # a consistent copy of the answering server's data dir; answered with backup file chunks, then backupDone
  }
}

struct Request {
  id @0 :UInt64;              # >= 1, unique among the connection's in-flight requests
  union {
    execute @1 :Execute;
    query @2 :Query;
    subscribe @3 :Subscribe;
    admin @4 :Admin;
    cancel @5 :UInt64;        # id of an in-flight request or subscription to stop
    register @6 :Session;     # registers a client session (requestNumber must be 0)
  }
}
