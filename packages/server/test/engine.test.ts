import t from 'tap';
import { Connection, UnauthorizedError } from '@veritydb/client';
import { position } from '@veritydb/types';
import { LocalEngine, VerityServer, loadConfig, silentLogger, createToken, ensureAdminKeys } from '../src/index.js';
import { engineLimits, readWaitMs } from '../src/local-engine.js';
import { tempDir } from '../testing/process.js';

const read = (consistency: 'causal' | 'eventual' | 'linearizable' | 'atPosition', at = 0, timeoutMs = 0) => ({ consistency, position: position(at), timeoutMs });

t.test('LocalEngine: writes, reads at positions, waits, timeouts, replay on reopen', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await LocalEngine.open({ dataDir: dir, clusterId: null });
  let open = true;
  t.teardown(() => open ? engine.close() : undefined);
  t.match(await engine.createTenant(1, 'one', 'tester'), { ok: true, value: { position: 1 } });
  t.match(await engine.createTenant(1, 'again', 'tester'), { ok: false, error: { code: 'TenantExists' } });
  t.match(await engine.execute(2, [{ sql: 'SELECT 1', params: [] }], 'tester'), { ok: false, error: { code: 'TenantNotFound' } }, 'not logged');
  t.equal(engine.status().logHead, 1);
  const ddl = await engine.execute(1, [{ sql: 'CREATE TABLE t (id BIGINT PRIMARY KEY)', params: [] }], 'tester');
  t.ok(ddl.ok);
  const writes = await Promise.all([1, 2, 3].map((id) => engine.execute(1, [{ sql: 'INSERT INTO t VALUES ($1)', params: [id] }], 'tester')));
  t.same(writes.map((w) => w.ok && w.value.position), [3, 4, 5], 'concurrent writes get consecutive positions');

  const count = async (options: ReturnType<typeof read>): Promise<unknown> => {
    const outcome = await engine.query(1, { sql: 'SELECT count(*) AS n FROM t', params: [] }, options);
    return outcome.ok ? outcome.value.rows[0]?.[0] : outcome.error.code;
  };
  t.equal(await count(read('linearizable')), 3n);
  t.equal(await count(read('atPosition', 3)), 1n, 'the state after position 3');
  t.equal(await count(read('causal', 5)), 3n);

  // A causal read for a position not yet written waits for it, and sees it.
  const waiting = count(read('causal', 6, 5000));
  const sixth = engine.execute(1, [{ sql: 'INSERT INTO t VALUES (4)', params: [] }], 'tester');
  t.equal(await waiting, 4n);
  t.match(await sixth, { ok: true, value: { position: 6 } });
  t.equal(await count(read('atPosition', 100, 50)), 'Timeout', 'a position that never comes times out');
  const abort = new AbortController();
  const aborted = engine.query(1, { sql: 'SELECT 1', params: [] }, { ...read('causal', 100, 5000), signal: abort.signal });
  abort.abort();
  t.match(await aborted, { ok: false, error: { code: 'Cancelled' } });

  const rejected = await engine.execute(1, [{ sql: 'INSERT INTO t VALUES (1)', params: [] }], 'tester');
  t.match(rejected, { ok: false, error: { code: 'ConstraintViolation', constraint: 't_pkey', message: /logged at position 7/ } });
  const events = engine.events(1, position(1), 't');
  t.ok(events.ok && events.value.some((row) => row[3] === 'rejected' && row[0] === 7n), 'the rejected attempt is in __events');
  t.same(engine.listTenants(), [{ id: 1, name: 'one' }]);
  t.same(engine.status(), { logHead: 7, durable: 7, applied: 7, tenants: 1, writesInFlight: 0, failure: null });
  const clusterId = engine.clusterId;
  await engine.close();
  open = false;

  const reopened = await LocalEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => reopened.close());
  t.equal(reopened.clusterId, clusterId, 'the data dir keeps its cluster id');
  t.same(reopened.status(), { logHead: 7, durable: 7, applied: 7, tenants: 1, writesInFlight: 0, failure: null }, 'replayed');
  const after = await reopened.query(1, { sql: 'SELECT id FROM t AS OF POSITION 4 ORDER BY id', params: [] }, read('eventual'));
  t.same(after.ok && after.value.rows, [[1n], [2n]]);
  t.match(await reopened.dropTenant(1, 'tester'), { ok: true, value: { position: 8 } });
  t.same(reopened.listTenants(), []);
  t.match(await reopened.query(1, { sql: 'SELECT 1', params: [] }, read('eventual')), { ok: false, error: { code: 'TenantNotFound' } });
});

t.test('a token that expires while connected is refused at its next request', async (t) => {
  const dir = await tempDir(t.teardown);
  let now = 1_900_000_000;
  const outcome = loadConfig({ argv: ['--data-dir', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], env: {}, readFile: () => '' });
  if (outcome.kind !== 'config') throw new Error('config');
  const server = await VerityServer.start(outcome.config, silentLogger(), { nowSeconds: () => now });
  t.teardown(() => server.stop());
  const keys = await ensureAdminKeys(dir, now);
  const token = createToken(keys.secretKey, keys.publicKey, { subject: 'brief', scopes: [{ kind: 'admin' }], issuedAtSeconds: now, expiresAtSeconds: now + 60 });
  const connection = await Connection.open({ address: `127.0.0.1:${server.listen.port}`, token });
  t.teardown(() => connection.close());
  t.ok((await connection.listTenants()).length === 0);
  now += 61;
  await t.rejects(connection.listTenants(), UnauthorizedError);
  t.equal(connection.closedBy?.code, 'Unauthorized', 'the connection is closed');
  await t.rejects(Connection.open({ address: `127.0.0.1:${server.listen.port}`, token }), { code: 'Unauthorized', message: /expired/ });
});


t.test('a read waits at most readWaitMsMax, whatever timeout the request names', async (t) => {
  t.equal(readWaitMs(0), engineLimits.readWaitMsDefault, '0 means the default');
  t.equal(readWaitMs(250), 250, 'a short timeout is kept');
  t.equal(readWaitMs(0xffff_ffff), engineLimits.readWaitMsMax, 'a huge one is capped');
  const dataDir = await tempDir(t.teardown);
  const engine = await LocalEngine.open({ dataDir, clusterId: null });
  t.teardown(() => engine.close());
  await engine.createTenant(1, 'one', 'tester');
  const outcome = await engine.query(1, { sql: 'SELECT 1', params: [] }, { consistency: 'causal', position: position(1e9), timeoutMs: 200 });
  t.match(outcome, { ok: false, error: { code: 'Timeout' } }, 'a position never reached times out with a typed error');
});
