import t from 'tap';
import { LocalEngine } from '../src/index.js';
import type { EngineStatement } from '../src/engine.js';
import { tempDir } from '../testing/process.js';

const insert = (id: number): EngineStatement[] => [{ sql: 'INSERT INTO t (id) VALUES ($1) RETURNING id', params: [BigInt(id)] }];

t.test('LocalEngine sessions: the wire outcomes a cluster gives (PROTOCOL.md §5)', async (t) => {
  const dir = await tempDir(t.teardown);
  let engine = await LocalEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => engine.close());
  t.ok(engine.register !== undefined, 'the single node offers sessions');
  await engine.createTenant(1, 'one', 'tester');
  await engine.execute(1, [{ sql: 'CREATE TABLE t (id BIGINT PRIMARY KEY)', params: [] }], 'tester');

  t.same(await engine.register(5n), { ok: true, value: { position: 3 } }, 'a registration answers with its position');
  const first = await engine.execute(1, insert(1), 'tester', { client: 5n, request: 1 });
  t.match(first, { ok: true, value: { position: 4, statements: [{ rowsAffected: 1, rows: [[1n]] }] } });
  t.same(await engine.execute(1, insert(1), 'tester', { client: 5n, request: 1 }), first, 'a retry gets the original outcome');
  t.equal(engine.status().logHead, 4, 'without a second entry');

  t.match(await engine.execute(1, insert(1), 'tester', { client: 6n, request: 1 }), { ok: false, error: { code: 'Evicted' } }, 'an unknown session');
  t.match(await engine.execute(1, insert(1), 'tester', { client: 5n, request: 0 }), { ok: false, error: { code: 'BadRequest' } });
  const rejected = await engine.execute(1, insert(1), 'tester', { client: 5n, request: 2 });
  t.match(rejected, { ok: false, error: { code: 'ConstraintViolation', message: /logged at position 5/ } }, 'a rejection is the outcome of a request');
  t.same(await engine.execute(1, insert(1), 'tester', { client: 5n, request: 2 }), rejected, 'and its retry gets the same rejection');
  t.match(await engine.execute(1, insert(2), 'tester', { client: 5n, request: 1 }), {
    ok: false, error: { code: 'Indeterminate', message: /request 1 is older than this session's last committed request 2/ },
  }, 'an older request: its outcome is no longer held');
  t.match(await engine.register(5n), { ok: false, error: { code: 'Indeterminate', message: /registered once/ } }, 'a used client id registers no more');
  t.match(await engine.execute(9, insert(2), 'tester', { client: 5n, request: 3 }), { ok: false, error: { code: 'TenantNotFound' } });
  t.equal(engine.status().logHead, 5, 'neither refusal is logged');

  const third = await engine.execute(1, insert(3), 'tester', { client: 5n, request: 3 });
  t.match(third, { ok: true, value: { position: 6 } });
  await engine.dropTenant(1, 'tester');
  t.same(await engine.execute(1, insert(3), 'tester', { client: 5n, request: 3 }), third, 'a committed request is answered even after its tenant is dropped');

  await engine.close();
  engine = await LocalEngine.open({ dataDir: dir, clusterId: null });
  t.same(await engine.execute(1, insert(3), 'tester', { client: 5n, request: 3 }), third, 'and after a restart');
  t.same(await engine.register(7n), { ok: true, value: { position: 8 } }, 'new registrations continue the log');
});
