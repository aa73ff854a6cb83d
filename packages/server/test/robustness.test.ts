import { connect } from 'node:net';
import t from 'tap';
import { Connection, parseAddress } from '@veritydb/client';
import { Prng, seedFrom, type Position, type TenantId } from '@veritydb/types';
import { FRAME_HEADER_BYTES, FrameDecoder, decodeServerMessage, type RequestBody } from '@veritydb/wire';
import { adminToken, startServer, tempDir } from '../testing/process.js';
import { flipBytes, frameOf, hello, mutatePayload, mutateText, randomValue, rawExchange } from '../testing/wire-fuzz.js';

/**
 * A bounded wire fuzz against a live vdb-server process: a few thousand connections carrying
 * random bytes, mutated and truncated frames, frames with mutated payloads under a valid CRC
 * (so they reach the message decoder), oversized length fields, requests before or instead of
 * the hello, bad tokens, and random or mutated requests after a real handshake — while one
 * well-behaved client keeps writing and reading. The server must answer every connection with
 * well-formed frames (or nothing) and close it, never crash, and never fail the good client.
 */
const seed = seedFrom(process.env, () => Date.now() % 1_000_000_007);
t.comment(`SEED=${seed}`);
const CASES = Number(process.env['VDB_FUZZ_CASES'] ?? 3000);
const PARALLEL = 16;
const CASE_TIMEOUT_MS = 15_000;

const SQL = [
  'SELECT * FROM t', 'SELECT count(*) FROM t WHERE id > $1', 'INSERT INTO t (id, v) VALUES ($1, $2)', 'CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)',
  "SELECT * FROM __events WHERE stream = 't'", 'DROP TABLE t', 'UPDATE t SET v = $2 WHERE id = $1', 'SELECT * FROM t AS OF POSITION 1', 'DELETE FROM t',
];

function randomBody(rng: Prng): RequestBody {
  const tenant = rng.pick([1, 2, 3, 0, 2 ** 40]) as TenantId;
  const statement = { sql: rng.pick(SQL), params: Array.from({ length: rng.int(3) }, () => randomValue(rng)) };
  const options = { consistency: rng.pick(['causal', 'eventual', 'linearizable', 'atPosition'] as const), position: 0 as Position, timeoutMs: 50, rowsLimit: 0 };
  if (options.consistency === 'atPosition') options.position = rng.range(1, 50) as Position;
  switch (rng.int(7)) {
    case 0: return { kind: 'execute', tenant, statements: [statement], atomic: rng.chance(0.8), session: null, options: { ...options, consistency: 'causal', position: 0 as Position } };
    case 1: return { kind: 'query', tenant, statement, options };
    case 2: return { kind: 'admin', admin: rng.pick([{ op: 'status' }, { op: 'listTenants' }, { op: 'createTenant', id: 3 as TenantId, name: 'x' }, { op: 'dropTenant', id: 1 as TenantId }] as const) };
    case 3: return { kind: 'cancel', target: BigInt(rng.range(1, 5)) };
    case 4: return { kind: 'subscribe', tenant, stream: 't', from: 1 as Position };
    case 5: return { kind: 'register', session: { clientId: 9n as never, requestNumber: 0 } };
    default: return { kind: 'query', tenant, statement: { sql: mutateText(rng, rng.pick(SQL)), params: [] }, options };
  }
}

t.test('wire fuzz against a live server while a good client keeps working', async (t) => {
  const rng = new Prng(seed);
  const dataDir = await tempDir(t.teardown);
  const server = await startServer(t.teardown, dataDir);
  const parsed = parseAddress(server.listen);
  if (!parsed.ok) throw new Error(parsed.reason);
  const address = parsed.address;
  const token = await adminToken(dataDir);

  const good = await Connection.open({ address: server.listen, token });
  t.teardown(() => good.close());
  await good.createTenant(1, 'good');
  await good.createTenant(2, 'fuzzed');
  await good.execute(1, [{ sql: 'CREATE TABLE g (id BIGINT PRIMARY KEY, v TEXT)', params: [] }]);
  // The fuzzer's authenticated connections may only touch tenant 2: they cannot drop the good tenant.
  const fuzzToken = await good.createToken(['tenant:2:write'], BigInt(Date.now() + 3_600_000) * 1000n);

  let goodWrites = 0;
  let goodFailures = 0;
  let stop = false;
  const goodLoop = (async () => {
    for (let id = 1; !stop; id++) {
      try {
        await good.execute(1, [{ sql: 'INSERT INTO g (id, v) VALUES ($1, $2)', params: [{ kind: 'int64', value: BigInt(id) }, { kind: 'text', value: `v${id}` }] }]);
        const read = await good.query(1, { sql: 'SELECT count(*) AS n FROM g', params: [] });
        if ((read.rows[0]?.[0] as { value: bigint }).value !== BigInt(id)) goodFailures++;
        goodWrites++;
      } catch (error) {
        goodFailures++;
        t.fail(`the good client failed: ${(error as Error).message}`);
        return;
      }
    }
  })();

  const validHello = hello(fuzzToken);
  const kinds = ['random', 'flip', 'payload', 'truncate', 'oversize', 'pre-auth', 'bad-token', 'post-auth', 'post-auth-mutated', 'eager'] as const;
  const counts = new Map<string, number>();
  let malformedReplies = 0;
  let unclosed = 0;
  let answeredAfterHalfClose = 0;
  const makeCase = (): { first: Uint8Array; then: Uint8Array | null; kind: string } => {
    const kind = rng.pick(kinds);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const request = (): Uint8Array => frameOf({ kind: 'request', request: { id: BigInt(rng.range(1, 5)), body: randomBody(rng) } });
    switch (kind) {
      case 'random': return { kind, first: rng.bytes(rng.int(200)), then: null };
      case 'flip': return { kind, first: flipBytes(rng, rng.chance(0.5) ? validHello : request()), then: null };
      case 'payload': return { kind, first: mutatePayload(rng, rng.chance(0.5) ? validHello : request()), then: null };
      case 'truncate': { const f = rng.chance(0.5) ? validHello : request(); return { kind, first: f.subarray(0, rng.int(f.length)), then: null }; }
      case 'oversize': {
        const header = validHello.slice(0, FRAME_HEADER_BYTES);
        new DataView(header.buffer).setUint32(6, rng.pick([0xffff_ffff, 16 * 1024 * 1024 + 1, 64 * 1024 + 1]), false);
        return { kind, first: header, then: null };
      }
      case 'pre-auth': return { kind, first: request(), then: null };
      case 'bad-token': return { kind, first: hello(rng.chance(0.5) ? `vdb1.${mutateText(rng, 'eyJhIjoxfQ')}.AAAA` : mutateText(rng, fuzzToken)), then: null };
      case 'post-auth': return { kind, first: validHello, then: Buffer.concat(Array.from({ length: rng.range(1, 4) }, request)) };
      case 'post-auth-mutated': return { kind, first: validHello, then: rng.chance(0.5) ? mutatePayload(rng, request()) : flipBytes(rng, request()) };
      case 'eager': return { kind, first: Buffer.concat([validHello, request()]), then: null };
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CASES) {
      next++;
      const fuzzCase = makeCase();
      const outcome = fuzzCase.then === null
        ? await rawExchange(address, null, [fuzzCase.first], true, CASE_TIMEOUT_MS)
        : await rawExchange(address, fuzzCase.first, [fuzzCase.then], true, CASE_TIMEOUT_MS);
      if (!outcome.closed) unclosed++;
      const decoder = new FrameDecoder();
      const { frames, error } = decoder.push(outcome.received);
      const tail = decoder.finish();
      const messages = frames.map((f) => decodeServerMessage(f.payload));
      if (error !== null || tail !== null || messages.some((m) => !m.ok)) {
        malformedReplies++;
        t.fail(`${fuzzCase.kind}: the server sent bytes that are not valid frames`);
      }
      if (fuzzCase.kind === 'post-auth' && messages.some((m) => m.ok && m.value.kind === 'response' && m.value.response.requestId !== 0n)) {
        answeredAfterHalfClose++;
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  stop = true;
  await goodLoop;
  t.comment(`${CASES} cases in ${Date.now() - started} ms: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}; good client: ${goodWrites} writes`);

  t.equal(malformedReplies, 0, 'every reply was well-formed frames');
  t.equal(unclosed, 0, 'every fuzzed connection was closed by the server');
  t.ok(answeredAfterHalfClose > (counts.get('post-auth') ?? 0) / 2, `${answeredAfterHalfClose} authenticated fuzz connections got answers after half-closing`);
  t.equal(goodFailures, 0, 'the good client never failed');
  t.ok(goodWrites > 0, 'the good client made progress');
  t.equal(server.child.exitCode, null, 'the server is still running');
  const health = await fetch(`http://${server.http}/health`);
  t.equal(health.status, 200);
  const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
  t.match(metrics, /^vdb_connections_refused_total\{reason="bad-frame"\} [1-9]\d*$/m);
  t.match(metrics, /^vdb_connections_refused_total\{reason="unauthorized"\} [1-9]\d*$/m);
  t.match(metrics, /^vdb_connections_refused_total\{reason="bad-message"\} [1-9]\d*$/m, 'mutated payloads reached the message decoder');
  t.match(metrics, /^vdb_request_errors_total\{code="Forbidden"\} [1-9]\d*$/m, 'authenticated fuzz requests reached the scope check');
  t.match(metrics, /^vdb_request_errors_total\{code="SqlError"\} [1-9]\d*$/m, 'and the engine');
  const count = await good.query(1, { sql: 'SELECT count(*) AS n FROM g', params: [] });
  t.equal((count.rows[0]?.[0] as { value: bigint }).value, BigInt(goodWrites), 'every good write is there');
  await good.close();
  server.child.kill('SIGTERM');
  t.equal((await server.exited).code, 0, 'and it still stops cleanly');
});

t.test('a client that sends without reading is not read from until it drains its answers', async (t) => {
  const dataDir = await tempDir(t.teardown);
  const server = await startServer(t.teardown, dataDir);
  const token = await adminToken(dataDir);
  const setup = await Connection.open({ address: server.listen, token });
  t.teardown(() => setup.close());
  await setup.createTenant(1, 'big');
  await setup.execute(1, [{ sql: 'CREATE TABLE b (id BIGINT PRIMARY KEY, v TEXT)', params: [] }]);
  await setup.execute(1, [{ sql: 'INSERT INTO b VALUES (1, $1)', params: [{ kind: 'text', value: 'x'.repeat(100_000) }] }]);
  const framesReceived = async (): Promise<number> => {
    const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
    return Number(/^vdb_frames_received_total (\d+)$/m.exec(metrics)?.[1]);
  };
  const before = await framesReceived();

  const REQUESTS = 600; // 600 answers of ~100 KB: far more than the 16 MiB the server queues
  const parsed = parseAddress(server.listen);
  if (!parsed.ok) throw new Error(parsed.reason);
  const socket = connect(parsed.address);
  t.teardown(() => { socket.destroy(); });
  socket.pause();
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(hello(token));
  const decoder = new FrameDecoder();
  const readFrames = async (count: number): Promise<number> => {
    let seen = 0;
    socket.resume();
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        const { frames, error } = decoder.push(chunk);
        if (error !== null) reject(new Error(error.message));
        seen += frames.length;
        if (seen >= count) { socket.off('data', onData); socket.pause(); resolve(); }
      };
      socket.on('data', onData);
    });
    return seen;
  };
  await readFrames(1); // the server hello
  const query = (id: number): Uint8Array => frameOf({ kind: 'request', request: { id: BigInt(id), body: {
    kind: 'query', tenant: 1 as TenantId, statement: { sql: 'SELECT v FROM b', params: [] },
    options: { consistency: 'eventual', position: 0 as Position, timeoutMs: 0, rowsLimit: 0 },
  } } });
  socket.write(Buffer.concat(Array.from({ length: REQUESTS }, (_, i) => query(i + 1))));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const whilePaused = (await framesReceived()) - before;
  t.ok(whilePaused < REQUESTS, `the server read ${whilePaused} of ${REQUESTS} requests while its answers were not read`);
  t.equal(await readFrames(REQUESTS), REQUESTS, 'once the client reads, every request is answered');
  t.equal((await framesReceived()) - before, REQUESTS + 1);
  t.equal((await setup.status()).replicas.length, 1, 'other clients were served meanwhile');
  t.same(server.stderr, [], 'the server wrote nothing to stderr (no listener-leak warnings)');
  socket.destroy();
  server.child.kill('SIGTERM');
  t.equal((await server.exited).code, 0);
});
