# VerityDB wire protocol: the root of every frame's payload (PROTOCOL.md §3).
@0xf4655629653f5622;

using Handshake = import "handshake.capnp";
using Req = import "request.capnp";
using Resp = import "response.capnp";

struct ClientMessage {      # client (or connecting replica) → server
  union {
    hello @0 :Handshake.ClientHello;
    request @1 :Req.Request;
  }
}

struct ServerMessage {      # server → client
  union {
    hello @0 :Handshake.ServerHello;
    response @1 :Resp.Response;
  }
}
