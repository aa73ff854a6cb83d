import t from 'tap';
import {
  Connection, EvictedError, IndeterminateError, type ExecuteResult, type Session, type WireValue,
} from '@veritydb/client';
import { clientId, Prng, seedFrom } from '@veritydb/types';
import { lossyRelay } from '../testing/lossy-relay.js';
import { adminToken, startServer, tempDir, type ServerProcess } from '../testing/process.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

const int = (value: number | bigint): WireValue => ({ kind: 'int64', value: BigInt(value) });
const insert = (id: number): { sql: string; params: WireValue[] } => ({
  sql: 'INSERT INTO t (id, note) VALUES ($1, $2) RETURNING id, note', params: [int(id), { kind: 'text', value: `row ${id}` }],
});
const session = (client: bigint, request: number): Session => ({ clientId: clientId(client), requestNumber: request });

/** How many rows of t have `id`, and the positions of their insert events (exactly-once: one row, one insert). */
async function applied(connection: Connection, id: number): Promise<{ rows: number; inserts: number[] }> {
  const rows = await connection.query(1, { sql: 'SELECT count(*) AS n FROM t WHERE id = $1', params: [int(id)] }, { consistency: 'linearizable' });
  const events = await connection.query(1, {
    sql: "SELECT position, key FROM __events WHERE stream = 't' AND event_type = 'insert' ORDER BY position", params: [],
  }, { consistency: 'linearizable' });
  const value = (v: WireValue | undefined): unknown => v === undefined || v.kind === 'null' ? null : v.value;
  const inserts = events.rows.filter((r) => JSON.stringify(value(r[1])) === JSON.stringify([id])).map((r) => Number(value(r[0])));
  return { rows: Number(value(rows.rows[0]?.[0])), inserts };
}

/** SIGKILLs the server and starts it again on the same data dir (its log is replayed after its last checkpoint). */
async function killAndRestart(teardown: (fn: () => Promise<void> | void) => void, server: ServerProcess, dataDir: string): Promise<ServerProcess> {
  server.child.kill('SIGKILL');
  const exited = await server.exited;
  if (exited.signal !== 'SIGKILL') throw new Error(`vdb-server exited with ${JSON.stringify(exited)} instead of being killed`);
  return startServer(teardown, dataDir);
}

t.test('single-node vdb-server: a write whose reply is lost is applied once and its retry gets the original reply', async (t) => {
  const dataDir = `${await tempDir(t.teardown)}/data`;
  let server = await startServer(t.teardown, dataDir);
  const token = await adminToken(dataDir);
  const admin = await Connection.open({ address: server.listen, token });
  await admin.createTenant(1, 'clinic');
  await admin.execute(1, [{ sql: 'CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT)', params: [] }]);
  const client = 0x5e55_1011n;
  const registered = await admin.register(session(client, 0));
  t.equal(registered, 3, 'register answers with the registration position');
  await admin.close();

  // 1. The reply is lost on the way back; the retry goes over a new connection.
  const relay = await lossyRelay(t.teardown, server.listen);
  const viaRelay = await Connection.open({ address: relay.address, token });
  relay.loseNextReply();
  await t.rejects(viaRelay.execute(1, [insert(1)], { session: session(client, 1) }), IndeterminateError, 'the client cannot know the outcome');
  t.equal(relay.lost(), 1, 'the reply was lost');
  let direct = await Connection.open({ address: server.listen, token });
  const retried = await direct.execute(1, [insert(1)], { session: session(client, 1) });
  t.same(await applied(direct, 1), { rows: 1, inserts: [retried.position] }, 'applied once, at the position the retry reports');
  t.same(retried.statements[0]?.rows, [[int(1), { kind: 'text', value: 'row 1' }]], 'with its RETURNING rows');
  const again = await direct.execute(1, [insert(1)], { session: session(client, 1) });
  t.same(again, retried, 'every retry gets the same reply');

  // 2. The server is SIGKILLed between a write and its retry.
  const second: ExecuteResult = await direct.execute(1, [insert(2)], { session: session(client, 2) });
  await direct.close();
  server = await killAndRestart(t.teardown, server, dataDir);
  direct = await Connection.open({ address: server.listen, token });
  t.teardown(() => direct.close());
  t.same(await direct.execute(1, [insert(2)], { session: session(client, 2) }), second, 'after SIGKILL + restart the retry gets the original reply');
  t.same(await applied(direct, 2), { rows: 1, inserts: [second.position] }, 'applied once');
  await t.rejects(direct.execute(1, [insert(1)], { session: session(client, 1) }), IndeterminateError, 'an older request is refused');
  await t.rejects(direct.execute(1, [insert(3)], { session: session(0x0bad_5e55n, 1) }), EvictedError, 'an unknown session must register');
  const third = await direct.execute(1, [insert(3)], { session: session(client, 3) });
  t.equal(third.position, second.position + 1, 'the session goes on where it was');

  // 3. A graceful stop writes a checkpoint: the cached reply comes back from it.
  server.child.kill('SIGTERM');
  t.equal((await server.exited).code, 0);
  server = await startServer(t.teardown, dataDir);
  await direct.close();
  direct = await Connection.open({ address: server.listen, token });
  t.same(await direct.execute(1, [insert(3)], { session: session(client, 3) }), third, 'after a graceful restart (from its checkpoint) too');
  server.child.kill('SIGTERM');
  await server.exited;
});

t.test(`single-node vdb-server: SIGKILL while sessions write, retry each unanswered write after the restart (SEED=${seed})`, async (t) => {
  const rng = new Prng(seed);
  const dataDir = `${await tempDir(t.teardown)}/data`;
  let server = await startServer(t.teardown, dataDir);
  const token = await adminToken(dataDir);
  const setup = await Connection.open({ address: server.listen, token });
  await setup.createTenant(1, 'clinic');
  await setup.execute(1, [{ sql: 'CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT)', params: [] }]);
  await setup.close();

  const writers = 8;
  const clients = Array.from({ length: writers }, (_, i) => 0x1000n + BigInt(i));
  /** Per writer: the request it sent last (its id is writer * 1000 + request), and whether its reply came. */
  const last = clients.map(() => ({ request: 0, answered: true }));
  const connection = await Connection.open({ address: server.listen, token });
  for (const c of clients) await connection.register(session(c, 0));
  const killAfterMs = rng.range(20, 400);
  const running = clients.map(async (c, w) => {
    for (let request = 1; ; request++) {
      last[w] = { request, answered: false };
      try {
        await connection.execute(1, [insert(w * 1000 + request)], { session: session(c, request), timeoutMs: 5_000 });
      } catch {
        return; // the connection died with the server
      }
      last[w] = { request, answered: true };
    }
  });
  await new Promise((resolve) => setTimeout(resolve, killAfterMs));
  server.child.kill('SIGKILL');
  await server.exited;
  await Promise.all(running);
  await connection.close();

  server = await startServer(t.teardown, dataDir);
  const after = await Connection.open({ address: server.listen, token });
  t.teardown(() => after.close());
  let writes = 0;
  for (const [w, c] of clients.entries()) {
    const { request } = last[w] as { request: number };
    const id = w * 1000 + request;
    const retry = await after.execute(1, [insert(id)], { session: session(c, request) });
    const seen = await applied(after, id);
    t.same(seen, { rows: 1, inserts: [retry.position] }, `writer ${w}: request ${request} applied once, at the retry's position`);
    for (let earlier = 1; earlier < request; earlier++) {
      const count = (await applied(after, w * 1000 + earlier)).rows;
      if (count !== 1) t.fail(`writer ${w}: request ${earlier} applied ${count} times`);
    }
    writes += request;
  }
  t.comment(`${writes} session writes before the kill at ${killAfterMs} ms`);
  server.child.kill('SIGTERM');
  await server.exited;
});
