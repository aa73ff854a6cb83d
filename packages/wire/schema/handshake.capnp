# VerityDB wire protocol: the handshake (PROTOCOL.md §4).
# The first frame a peer sends is a ClientHello; the server answers with a ServerHello or with
# an Error response (request id 0) and closes the connection. Nothing else is accepted before.
@0xfaad84cc84fabbde;

enum Role {
  client @0;   # an application, the SDK or vdb-admin
  replica @1;  # another replica of the same cluster (replication traffic follows)
}

struct ClientHello {
  versions @0 :List(UInt16);  # protocol versions the peer speaks (1..16 entries, any order)
  role @1 :Role;
  token @2 :Text;             # signed bearer token (DESIGN §12); 1..4096 bytes
  clientName @3 :Text;        # free-form, for logs only; 0..64 bytes
  clusterIdHigh @4 :UInt64;   # u128 cluster id the peer expects; 0 = any (clients only)
  clusterIdLow @5 :UInt64;
  replicaIndex @6 :UInt8;     # role replica: the connecting replica's index; clients: 0
}

struct PrimaryHint {
  index @0 :UInt8;            # replica index of the primary as far as this replica knows
  address @1 :Text;           # its client address "host:port"; 1..255 bytes
}

struct ServerHello {
  version @0 :UInt16;         # the chosen protocol version (highest common)
  clusterIdHigh @1 :UInt64;   # this cluster's u128 id
  clusterIdLow @2 :UInt64;
  replicaIndex @3 :UInt8;     # index of the replica that answered
  replicaCount @4 :UInt8;     # replicas in the cluster (1..5)
  primary @5 :PrimaryHint;    # null pointer = primary unknown (view change in progress)
}
