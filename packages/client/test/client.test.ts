import t, { type Test } from 'tap';
import type { ReplicaIndex } from '@veritydb/types';
import { ERROR_CODES, type WireError } from '@veritydb/wire';
import {
  AbortedError, Client, ClientError, Connection, ConnectionClosedError, IndeterminateError, NotPrimaryError,
  OverloadedError, SqlError, TimeoutError, UnauthorizedError, UnavailableError, fromWireError, parseAddress,
} from '../src/index.js';
import { FakeServer, intResult } from '../testing/fake-server.js';

const token = 'good-token';
const statement = { sql: 'SELECT n FROM t', params: [] };

async function withServer(t: Test, options: Parameters<typeof FakeServer.start>[0]): Promise<FakeServer> {
  const server = await FakeServer.start(options);
  t.teardown(() => server.stop());
  return server;
}

async function open(t: Test, server: FakeServer, extra: Partial<Parameters<typeof Connection.open>[0]> = {}): Promise<Connection> {
  const connection = await Connection.open({ address: server.address, token, ...extra });
  t.teardown(() => connection.close());
  return connection;
}

t.test('handshake: a good token connects, a bad one is refused with UnauthorizedError', async (t) => {
  const server = await withServer(t, {});
  const connection = await open(t, server);
  t.equal(connection.hello.version, 1);
  t.equal(connection.hello.primary?.address, server.address);
  await t.rejects(Connection.open({ address: server.address, token: 'wrong' }), UnauthorizedError);
  await t.rejects(Connection.open({ address: '127.0.0.1:1', token, connectTimeoutMs: 2000 }), ConnectionClosedError, 'nothing listens there');
  await t.rejects(Connection.open({ address: 'not an address', token }), { code: 'BadRequest' });
});

t.test('pipelining: many requests in flight, replies out of order, each matched by id', async (t) => {
  const held: bigint[] = [];
  const server = await withServer(t, {
    onRequest: (request, connection) => {
      held.push(request.id);
      if (held.length === 50) for (const id of held.reverse()) connection.send(intResult(id, [Number(id)], true));
    },
  });
  const connection = await open(t, server);
  const results = await Promise.all(Array.from({ length: 50 }, () => connection.query(1, statement)));
  const requestIds = server.requests.map((r) => r.id);
  t.same(results.map((r) => Number((r.rows[0]?.[0] as { value: bigint }).value)), requestIds.map(Number), 'each caller got the reply to its own request');
  t.equal(connection.inFlight, 0);
});

t.test('streamed results are reassembled across frames and statements', async (t) => {
  const server = await withServer(t, {
    onRequest: (request, connection) => {
      connection.send(intResult(request.id, [1, 2], false, 0, 9));
      connection.send(intResult(request.id, [3], false, 0, 9));
      connection.send(intResult(request.id, [4, 5], false, 1, 9));
      connection.send(intResult(request.id, [6], true, 1, 9));
    },
  });
  const connection = await open(t, server);
  const result = await connection.execute(1, [statement, statement]);
  t.equal(result.position, 9);
  t.same(result.statements.map((s) => s.rows.map((r) => (r[0] as { value: bigint }).value)), [[1n, 2n, 3n], [4n, 5n, 6n]]);
});

t.test('typed errors carry the wire details; the connection keeps serving', async (t) => {
  const server = await withServer(t, {
    onRequest: (request, connection) => {
      if (request.id === 1n) connection.send({ requestId: 1n, body: { kind: 'error', error: { code: 'SqlError', message: 'syntax', sqlState: '42601', line: 2, column: 7 } } });
      else connection.send(intResult(request.id, [1], true));
    },
  });
  const connection = await open(t, server);
  const error = await connection.query(1, statement).catch((e: unknown) => e);
  t.ok(error instanceof SqlError);
  t.match(error, { code: 'SqlError', sqlState: '42601', line: 2, column: 7 });
  t.equal((await connection.query(1, statement)).rows.length, 1);
});

t.test('every wire error code maps to a ClientError with the same code', async (t) => {
  for (const code of ERROR_CODES) {
    const wire = (code === 'NotPrimary' ? { code, message: 'm', primary: { index: 1 as ReplicaIndex, address: 'h:1' } }
      : code === 'SqlError' ? { code, message: 'm', sqlState: '42601', line: 1, column: 1 }
        : code === 'ConstraintViolation' ? { code, message: 'm', constraint: 'p_pkey' }
          : code === 'QuotaExceeded' || code === 'Overloaded' ? { code, message: 'm', retryAfterMs: 5 }
            : { code, message: 'm' }) as WireError;
    const error = fromWireError(wire);
    t.ok(error instanceof ClientError, code);
    t.equal(error.code, code);
  }
});

t.test('a timeout is Indeterminate for a write and Timeout for a read (which is cancelled)', async (t) => {
  const server = await withServer(t, {}); // never answers
  const connection = await open(t, server);
  await t.rejects(connection.execute(1, [statement], { timeoutMs: 50 }), IndeterminateError);
  await t.rejects(connection.query(1, statement, { timeoutMs: 50 }), TimeoutError);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const kinds = server.requests.map((r) => r.body.kind);
  t.same(kinds, ['execute', 'query', 'cancel'], 'the read was cancelled, the write was not');
  const cancel = server.requests[2]?.body;
  t.equal(cancel?.kind === 'cancel' ? cancel.target : null, server.requests[1]?.id);
  t.equal(connection.inFlight, 0);
});

t.test('AbortSignal: before sending → Aborted (nothing sent); after → Aborted for reads, Indeterminate for writes', async (t) => {
  const server = await withServer(t, {});
  const connection = await open(t, server);
  await t.rejects(connection.execute(1, [statement], { signal: AbortSignal.abort('stop') }), AbortedError);
  const readAbort = new AbortController();
  const read = connection.query(1, statement, { signal: readAbort.signal });
  const writeAbort = new AbortController();
  const write = connection.execute(1, [statement], { signal: writeAbort.signal });
  readAbort.abort();
  writeAbort.abort();
  await t.rejects(read, AbortedError);
  await t.rejects(write, IndeterminateError);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(server.requests.map((r) => r.body.kind).slice(0, 2), ['query', 'execute'], 'the pre-aborted write was never sent');
});

t.test('a bounded number of requests in flight: the next one fails with Overloaded at once', async (t) => {
  const server = await withServer(t, {});
  const connection = await open(t, server, { inFlightMax: 2 });
  const first = connection.query(1, statement, { timeoutMs: 200 }).catch(() => 'gave up');
  const second = connection.query(1, statement, { timeoutMs: 200 }).catch(() => 'gave up');
  await t.rejects(connection.query(1, statement), OverloadedError);
  await Promise.all([first, second]);
  t.equal(connection.inFlight, 0);
});

t.test('a dropped connection fails writes as Indeterminate and reads as ConnectionClosed', async (t) => {
  const server = await withServer(t, {
    onRequest: (request, connection) => { if (request.body.kind === 'query') setTimeout(() => connection.socket.destroy(), 20); },
  });
  const connection = await open(t, server);
  const write = connection.execute(1, [statement]);
  const read = connection.query(1, statement);
  await t.rejects(write, IndeterminateError);
  await t.rejects(read, ConnectionClosedError);
  await t.rejects(connection.query(1, statement), ConnectionClosedError, 'a closed connection refuses new requests');
});

t.test('a connection-level error (request id 0) ends the connection with its typed error', async (t) => {
  const server = await withServer(t, {
    onRequest: (_request, connection) => {
      connection.send({ requestId: 0n, body: { kind: 'error', error: { code: 'Unauthorized', message: 'token expired' } } });
    },
  });
  const connection = await open(t, server);
  await t.rejects(connection.query(1, statement), UnauthorizedError, 'the request in flight fails with the reason');
  t.equal(connection.closedBy?.code, 'Unauthorized');
  await t.rejects(connection.query(1, statement), UnauthorizedError, 'and so does every later one');
});

t.test('Client follows the hello primary hint, then NotPrimary redirects, and retries there', async (t) => {
  const primary = await withServer(t, {
    replicaIndex: 2, replicaCount: 3,
    onRequest: (request, connection) => connection.send(intResult(request.id, [42], true)),
  });
  const backupHint = await withServer(t, { replicaIndex: 0, replicaCount: 3, primary: () => ({ index: 2 as ReplicaIndex, address: primary.address }) });
  const client = await Client.connect({ addresses: [backupHint.address], token });
  t.teardown(() => client.close());
  t.equal(client.address, primary.address, 'the hello hint led to the primary');
  t.equal((await client.query(1, statement)).rows.length, 1);

  // A replica that believes it is primary at handshake but answers NotPrimary later.
  const stale = await withServer(t, {
    replicaIndex: 1, replicaCount: 3,
    onRequest: (request, connection) => connection.send({
      requestId: request.id,
      body: { kind: 'error', error: { code: 'NotPrimary', message: 'not the primary', primary: { index: 2 as ReplicaIndex, address: primary.address } } },
    }),
  });
  const redirected = await Client.connect({ addresses: [stale.address], token });
  t.teardown(() => redirected.close());
  t.equal(redirected.address, stale.address);
  const result = await redirected.execute(1, [statement]);
  t.equal(result.position, 5);
  t.equal(redirected.address, primary.address, 'the call was retried at the primary');
  t.equal(stale.requests.length, 1);

  // Redirects are bounded: two replicas pointing at each other.
  let a: FakeServer | null = null;
  let b: FakeServer | null = null;
  const notPrimary = (to: () => string) => (request: { id: bigint }, connection: { send: (r: never) => void }) => connection.send({
    requestId: request.id, body: { kind: 'error', error: { code: 'NotPrimary', message: 'no', primary: { index: 0, address: to() } } },
  } as never);
  a = await withServer(t, { onRequest: notPrimary(() => b?.address ?? '') });
  b = await withServer(t, { onRequest: notPrimary(() => a?.address ?? '') });
  const looping = await Client.connect({ addresses: [a.address], token, redirectsMax: 3, redirectWindowMs: 0 });
  t.teardown(() => looping.close());
  await t.rejects(looping.execute(1, [statement]), NotPrimaryError);
  t.equal(a.requests.length + b.requests.length, 4, 'one try plus redirectsMax retries');
});

t.test('Client skips unreachable addresses and reports when none answers', async (t) => {
  const server = await withServer(t, { onRequest: (request, connection) => connection.send(intResult(request.id, [1], true)) });
  const client = await Client.connect({ addresses: ['127.0.0.1:1', server.address], token, connectTimeoutMs: 2000 });
  t.teardown(() => client.close());
  t.equal(client.address, server.address);
  await t.rejects(Client.connect({ addresses: ['127.0.0.1:1'], token, connectTimeoutMs: 2000 }), UnavailableError);
  await t.rejects(Client.connect({ addresses: [server.address], token: 'wrong' }), UnauthorizedError, 'auth failures are final');
});

t.test('parseAddress accepts host:port forms and rejects the rest', async (t) => {
  t.match(parseAddress('127.0.0.1:7420'), { ok: true, address: { host: '127.0.0.1', port: 7420 } });
  t.match(parseAddress('db-1.example:0'), { ok: true, address: { host: 'db-1.example', port: 0 } });
  t.match(parseAddress('[::1]:7420'), { ok: true, address: { host: '::1', port: 7420 } });
  for (const bad of ['', '127.0.0.1', ':7420', 'host:', 'host:65536', 'host:-1', 'host:7e3', 'ho st:1', '[::1]7420', '[zz]:1']) {
    t.equal(parseAddress(bad).ok, false, JSON.stringify(bad));
  }
});
