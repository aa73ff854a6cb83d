# VerityDB wire protocol: responses (server → client; PROTOCOL.md §5, §7).
@0xe861c6ab2b63921c;

enum SqlType {
  bigint @0; integer @1; double @2; text @3; boolean @4; date @5; timestamp @6; bytes @7; json @8;
}

struct Column {
  name @0 :Text;              # 1..identifierBytesMax bytes
  type @1 :SqlType;
}

struct Result {
  statementIndex @0 :UInt32;  # which statement of the request this belongs to
  columns @1 :List(Column);   # empty for statements that return no rows
  rows @2 :Data;              # row block (PROTOCOL.md §6); null pointer = no rows
  rowsAffected @3 :UInt64;
  position @4 :UInt64;        # the write's position, or the state a read saw
  final @5 :Bool;             # true on the last frame of the request
}

enum ErrorCode {
  notPrimary @0;
  unauthorized @1;
  forbidden @2;
  tenantNotFound @3;
  tenantExists @4;
  sqlError @5;
  constraintViolation @6;
  quotaExceeded @7;
  timeout @8;
  indeterminate @9;
  overloaded @10;
  badFrame @11;
  badRequest @12;
  unsupportedVersion @13;
  evicted @14;
  unavailable @15;
  cancelled @16;
  internal @17;
  notSupported @18;
}

struct NotPrimary {
  index @0 :UInt8;            # the primary's replica index
  address @1 :Text;           # its client address "host:port"
}

struct SqlPosition {
  sqlState @0 :Text;          # five-character SQLSTATE, e.g. "42601"
  line @1 :UInt32;            # 1-based; 0 = unknown
  column @2 :UInt32;          # 1-based; 0 = unknown
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;           # for a person; 0..8192 bytes
  detail :union {
    none @2 :Void;
    notPrimary @3 :NotPrimary;   # code notPrimary
    sql @4 :SqlPosition;         # code sqlError
    constraint @5 :Text;         # code constraintViolation: the constraint's name
    retryAfterMs @6 :UInt32;     # codes overloaded, quotaExceeded
  }
}

struct TenantInfo {
  id @0 :UInt64;
  name @1 :Text;
}

enum ReplicaRole { primary @0; backup @1; unknown @2; }
enum ReplicaState { normal @0; viewChange @1; recovering @2; unreachable @3; }

struct ReplicaStatus {
  index @0 :UInt8;
  address @1 :Text;
  role @2 :ReplicaRole;
  state @3 :ReplicaState;
  view @4 :UInt32;
  commit @5 :UInt64;          # commit position
  applied @6 :UInt64;         # applied position
}

struct ClusterStatus {
  clusterIdHigh @0 :UInt64;
  clusterIdLow @1 :UInt64;
  view @2 :UInt32;
  replicas @3 :List(ReplicaStatus);  # in replica index order
}

struct VerifyFault {
  position @0 :UInt64;        # the first broken position
  reason @1 :Text;            # a short code: "crc", "chain", "tenant-chain", "index", … (1..63 bytes)
  detail @2 :Text;            # for a person; 0..8192 bytes
  file @3 :Text;              # the server's file that holds it; 0..4096 bytes
}

struct VerifyReport {
  checked @0 :UInt64;         # records checked so far
  total @1 :UInt64;           # records to check (a tenant's chain: as far as known, = checked)
  head @2 :UInt64;            # the last position the verify covers (the log head when it began)
  union {
    progress @3 :Void;        # not final: more reports follow
    ok @4 :Void;              # final: every record checked is intact
    broken @5 :VerifyFault;   # final: the first defect
  }
}

struct ExportChunk {
  data @0 :Data;              # the next bytes of the export file; 0..1 MiB
  final @1 :Bool;             # true on the last chunk: the file is complete
}

struct BackupFileChunk {
  path @0 :Text;              # relative to the data dir, '/'-separated; 1..4096 bytes, never absolute or with ".."
  mode @1 :UInt16;            # permission bits, 0..0o777
  bytes @2 :UInt64;           # the file's size in the backup
  offset @3 :UInt64;          # where `data` goes in the file: the chunks of a file come in order, from 0
  data @4 :Data;              # 0..1 MiB (empty only for an empty file)
  blake3 @5 :Data;            # on the file's last chunk (offset + |data| = bytes): BLAKE3-256 of the whole file; else empty
}

struct BackupDone {
  clusterIdHigh @0 :UInt64;
  clusterIdLow @1 :UInt64;
  position @2 :UInt64;        # the last position in the backup
  stateHash @3 :Data;         # BLAKE3-256 of the state at `position` (32 bytes)
  files @4 :UInt64;           # files sent
  bytes @5 :UInt64;           # bytes of all files together
}

struct Response {
  requestId @0 :UInt64;       # 0 = about the connection itself (then always an error)
  union {
    result @1 :Result;
    error @2 :Error;          # always final
    tenants @3 :List(TenantInfo);  # answer to listTenants; final
    status @4 :ClusterStatus;      # answer to status; final
    token @5 :Text;                # answer to createToken; final
    verify @6 :VerifyReport;       # answer to verify: progress reports, then a final one
    exportChunk @7 :ExportChunk;   # answer to exportTenant: the file's bytes in order, the last final
    backupFile @8 :BackupFileChunk;  # answer to backup: every file's bytes, file after file; not final
    backupDone @9 :BackupDone;     # answer to backup: the position and state hash of the copy; final
  }
}
