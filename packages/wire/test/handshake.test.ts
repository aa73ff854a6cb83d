import t from 'tap';
import type { ClusterId, ReplicaIndex } from '@veritydb/types';
import {
  ClientHandshake, FrameDecoder, PROTOCOL_VERSIONS, ServerHandshake, decodeClientMessage, decodeServerMessage,
  encodeClientMessage, encodeFrame, encodeServerMessage, negotiateVersion, type ClientHello, type ClientMessage,
  type Request, type ServerMessage,
} from '../src/index.js';

const CLUSTER = 0xabcdefn as ClusterId;
const identity = { clusterId: CLUSTER, replicaIndex: 1 as ReplicaIndex, replicaCount: 3, versions: [1, 2, 3] };
const hello = (overrides: Partial<ClientHello> = {}): ClientHello => ({
  versions: [1, 2], role: 'client', token: 'token', clientName: 'test', clusterId: 0n as ClusterId,
  replicaIndex: 0 as ReplicaIndex, ...overrides,
});
const request: Request = { id: 1n, body: { kind: 'cancel', target: 7n } };
const asRequest: ClientMessage = { kind: 'request', request };

function closeCode(step: ReturnType<ServerHandshake['onMessage']>): string {
  if (step.kind !== 'close' || step.reply.kind !== 'response' || step.reply.response.body.kind !== 'error') return `not a close: ${step.kind}`;
  t.equal(step.reply.response.requestId, 0n, 'connection-level errors use request id 0');
  return step.reply.response.body.error.code;
}

t.test('negotiateVersion picks the highest common version or none', async (t) => {
  t.equal(negotiateVersion([1, 2, 3], [2, 3, 4]), 3);
  t.equal(negotiateVersion([3, 1], [1]), 1);
  t.equal(negotiateVersion([5, 6], [1, 2]), null);
  t.same(PROTOCOL_VERSIONS, [1]);
});

t.test('hello → authenticate → accept → requests flow', async (t) => {
  const server = new ServerHandshake(identity);
  const step = server.onMessage({ kind: 'hello', hello: hello() });
  t.match(step, { kind: 'authenticate', version: 2 });
  t.equal(server.state, 'authenticating');
  const accepted = server.accept({ index: 0 as ReplicaIndex, address: '127.0.0.1:7420' });
  t.match(accepted, { kind: 'send', message: { kind: 'hello', hello: { version: 2, clusterId: CLUSTER, replicaIndex: 1, replicaCount: 3 } } });
  t.equal(server.state, 'ready');
  t.same(server.onMessage(asRequest), { kind: 'request', request });
});

t.test('nothing but a hello is accepted before authentication', async (t) => {
  const first = new ServerHandshake(identity);
  t.equal(closeCode(first.onMessage(asRequest)), 'Unauthorized');
  t.equal(first.state, 'closed');
  t.equal(closeCode(first.onMessage({ kind: 'hello', hello: hello() })), 'BadRequest', 'closed stays closed');

  const early = new ServerHandshake(identity);
  early.onMessage({ kind: 'hello', hello: hello() });
  t.equal(closeCode(early.onMessage(asRequest)), 'BadRequest', 'a request while the token is being checked');
  t.equal(early.state, 'closed');
});

t.test('no common version: UnsupportedVersion, closed', async (t) => {
  const server = new ServerHandshake(identity);
  t.equal(closeCode(server.onMessage({ kind: 'hello', hello: hello({ versions: [7, 9] }) })), 'UnsupportedVersion');
  t.equal(server.state, 'closed');
});

t.test('a refused token, a wrong cluster, an unknown replica index', async (t) => {
  const refused = new ServerHandshake(identity);
  refused.onMessage({ kind: 'hello', hello: hello() });
  t.equal(closeCode(refused.reject('signature does not verify')), 'Unauthorized');
  t.throws(() => refused.accept(null), 'accepting after a refusal is a bug');

  const wrongCluster = new ServerHandshake(identity);
  t.equal(closeCode(wrongCluster.onMessage({ kind: 'hello', hello: hello({ clusterId: 5n as ClusterId }) })), 'Forbidden');

  const replica = new ServerHandshake(identity);
  t.equal(closeCode(replica.onMessage({
    kind: 'hello', hello: hello({ role: 'replica', clusterId: CLUSTER, replicaIndex: 3 as ReplicaIndex }),
  })), 'Forbidden');
  const goodReplica = new ServerHandshake(identity);
  t.match(goodReplica.onMessage({ kind: 'hello', hello: hello({ role: 'replica', clusterId: CLUSTER, replicaIndex: 2 as ReplicaIndex }) }),
    { kind: 'authenticate' });
});

t.test('a second hello after the handshake closes the connection', async (t) => {
  const server = new ServerHandshake(identity);
  server.onMessage({ kind: 'hello', hello: hello() });
  server.accept(null);
  t.equal(closeCode(server.onMessage({ kind: 'hello', hello: hello() })), 'BadRequest');
});

t.test('a frame error closes with BadFrame, an undecodable payload with BadRequest', async (t) => {
  const server = new ServerHandshake(identity);
  t.equal(closeCode(server.onFrameError({ kind: 'CrcMismatch', expected: 1, actual: 2, message: 'x' })), 'BadFrame');
  const other = new ServerHandshake(identity);
  const decoded = decodeClientMessage(new Uint8Array(16));
  t.notOk(decoded.ok);
  t.equal(closeCode(other.onMalformed(decoded.ok ? '' : decoded.reason)), 'BadRequest');
  t.equal(other.state, 'closed');
});

t.test('client side: ready, refused, and protocol violations', async (t) => {
  const serverHello = (version: number, clusterId: bigint = CLUSTER): ServerMessage => ({
    kind: 'hello', hello: { version, clusterId: clusterId as ClusterId, replicaIndex: 0 as ReplicaIndex, replicaCount: 1, primary: null },
  });
  const ok = new ClientHandshake(hello());
  t.same(ok.hello(), { kind: 'hello', hello: hello() });
  t.match(ok.onMessage(serverHello(2)), { kind: 'ready' });
  t.equal(ok.version, 2);
  const response: ServerMessage = { kind: 'response', response: { requestId: 1n, body: { kind: 'token', token: 't' } } };
  t.match(ok.onMessage(response), { kind: 'response' });
  t.match(ok.onMessage(serverHello(2)), { kind: 'close' }, 'a second server hello');

  const refused = new ClientHandshake(hello());
  t.match(refused.onMessage({
    kind: 'response', response: { requestId: 0n, body: { kind: 'error', error: { code: 'UnsupportedVersion', message: 'no' } } },
  }), { kind: 'refused', error: { code: 'UnsupportedVersion' } });
  t.equal(refused.state, 'closed');

  t.match(new ClientHandshake(hello()).onMessage(serverHello(3)), { kind: 'close' }, 'a version that was not offered');
  t.match(new ClientHandshake(hello()).onMessage(response), { kind: 'close' }, 'a response before the hello');
  t.match(new ClientHandshake(hello({ clusterId: 9n as ClusterId })).onMessage(serverHello(1)), { kind: 'close' }, 'another cluster');
});

t.test('a whole exchange through frames: hello, accept, request, streamed response', async (t) => {
  const client = new ClientHandshake(hello());
  const server = new ServerHandshake(identity);
  const toServer = new FrameDecoder();
  const toClient = new FrameDecoder();
  const deliver = (decoder: FrameDecoder, bytes: Uint8Array): Uint8Array[] => {
    const payloads: Uint8Array[] = [];
    for (const byte of bytes) payloads.push(...decoder.push(new Uint8Array([byte])).frames.map((f) => f.payload));
    return payloads;
  };
  const serverReceives = (message: ClientMessage) => {
    const [payload] = deliver(toServer, encodeFrame(encodeClientMessage(message)));
    const decoded = decodeClientMessage(payload as Uint8Array);
    if (!decoded.ok) throw new Error(decoded.reason);
    return server.onMessage(decoded.value);
  };
  const clientReceives = (message: ServerMessage) => {
    const [payload] = deliver(toClient, encodeFrame(encodeServerMessage(message)));
    const decoded = decodeServerMessage(payload as Uint8Array);
    if (!decoded.ok) throw new Error(decoded.reason);
    return client.onMessage(decoded.value);
  };

  const authenticate = serverReceives(client.hello());
  t.match(authenticate, { kind: 'authenticate', hello: { token: 'token' }, version: 2 });
  const accepted = server.accept(null);
  t.equal(accepted.kind, 'send');
  if (accepted.kind === 'send') t.match(clientReceives(accepted.message), { kind: 'ready', hello: { version: 2, primary: null } });
  t.same(serverReceives(asRequest), { kind: 'request', request });
  t.match(clientReceives({ kind: 'response', response: { requestId: 1n, body: { kind: 'error', error: { code: 'Cancelled', message: '' } } } }),
    { kind: 'response', response: { requestId: 1n } });
  t.equal(toServer.bufferedBytes + toClient.bufferedBytes, 0);
});
