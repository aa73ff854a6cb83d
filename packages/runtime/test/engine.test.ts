import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Envelope } from '@veritydb/kernel';
import { position, tenantId } from '@veritydb/types';
import {
  CHECKPOINT_FILE, CLUSTER_ID_FILE, ClosedError, EMBEDDED_CLUSTER, InvalidArgument, Overloaded, runtimeLimits, SingleNodeEngine,
} from '../src/index.js';
import { rewriteCheckpoint } from './checkpoint-bytes.js';

async function tempDir(teardown: (fn: () => Promise<void>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vdb-runtime-'));
  teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const create = (id: number, name: string): Envelope => ({ tenant: tenantId(id), actor: 'tester', command: { kind: 'tenant_create', id: tenantId(id), name } });
const drop = (id: number): Envelope => ({ tenant: tenantId(id), actor: 'tester', command: { kind: 'tenant_drop', id: tenantId(id) } });
const sql = (id: number, text: string, params: readonly (bigint | number | string)[] = []): Envelope => ({
  tenant: tenantId(id), actor: 'tester', command: { kind: 'sql', statements: [{ sql: text, params: params.map((p) => typeof p === 'number' ? BigInt(p) : p) }] },
});

t.test('writes get consecutive positions, are applied in order once durable, and survive a reopen', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  const applied: number[] = [];
  engine.onApplied((_tenant, at) => applied.push(at));
  t.match(await engine.submit(create(1, 'one')), { position: 1, reply: { kind: 'tenant_created' } });
  await engine.submit(sql(1, 'CREATE TABLE t (id BIGINT PRIMARY KEY)'));
  const writes = await Promise.all([1, 2, 3].map((id) => engine.submit(sql(1, 'INSERT INTO t VALUES ($1)', [id]))));
  t.same(writes.map((w) => w.position), [3, 4, 5], 'concurrent writes get consecutive positions');
  t.same(applied, [1, 2, 3, 4, 5], 'listeners see every apply, in order');
  const rejected = await engine.submit(sql(1, 'INSERT INTO t VALUES (1)'));
  t.match(rejected, { position: 6, reply: { kind: 'rejected', error: { sqlState: '23505' } } }, 'a rejected write is logged and applied as a rejection');
  t.same(engine.status(), { logHead: 6, durable: 6, applied: 6, tenants: 1, writesInFlight: 0, failure: null });
  const hash = engine.kernel.stateHash();
  await engine.close();
  t.throws(() => engine.submit(create(2, 'two')), ClosedError, 'a closed engine refuses writes');

  const reopened = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => reopened.close());
  t.same(reopened.kernel.stateHash(), hash, 'checkpoint (written on close) gives the same state');
  t.same(reopened.listTenants(), [{ id: 1, name: 'one' }], 'the tenant directory comes back from the checkpoint');
  const read = reopened.kernel.read(tenantId(1), 'SELECT count(*) FROM t', [], position(4));
  t.match(read, { ok: true, rows: [[2n]] }, 'reads at a past position');
});

t.test('waitApplied: applied, timeout, aborted, closed', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.equal(await engine.waitApplied(position(0), 10), 'applied');
  const waiting = engine.waitApplied(position(2), 5000);
  await engine.submit(create(1, 'one'));
  await engine.submit(sql(1, 'CREATE TABLE t (id BIGINT)'));
  t.equal(await waiting, 'applied', 'a waiter wakes when its position is applied');
  t.equal(await engine.waitApplied(position(100), 20), 'timeout');
  const abort = new AbortController();
  const aborted = engine.waitApplied(position(100), 5000, abort.signal);
  abort.abort();
  t.equal(await aborted, 'aborted');
  const closing = engine.waitApplied(position(100), 5000);
  await engine.close();
  t.equal(await closing, 'closed', 'close wakes every waiter');
});

t.test('tenants: listed by name, pending creates and drops tracked, refusals before the log', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null, checkpointIntervalEntries: 2 });
  t.teardown(() => engine.close());
  const first = engine.submit(create(2, 'two'));
  t.ok(engine.tenantIsTaken(2) && engine.tenantMayExist(2), 'a create in flight reserves the id');
  await first;
  await engine.submit(create(1, 'one'));
  await engine.submit(create(3, 'three'));
  await engine.submit(drop(2));
  t.same(engine.listTenants(), [{ id: 1, name: 'one' }, { id: 3, name: 'three' }]);
  t.notOk(engine.tenantMayExist(2));
  t.throws(() => engine.submit({ tenant: tenantId(1), actor: 'tester', command: { kind: 'sql', statements: [] } }), InvalidArgument, 'an invalid command is refused before the log');
  t.equal(engine.logHead, 4, 'nothing logged for it');
  await engine.checkpoint();
  await engine.submit(create(4, 'four'));
  await engine.close();
  const reopened = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => reopened.close());
  t.same(reopened.listTenants(), [{ id: 1, name: 'one' }, { id: 3, name: 'three' }, { id: 4, name: 'four' }]);
});

t.test('writes in flight are bounded: beyond the bound, Overloaded', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => engine.close());
  await engine.submit(create(1, 'one'));
  await engine.submit(sql(1, 'CREATE TABLE t (id BIGINT)'));
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < runtimeLimits.writesInFlightMax; i++) inFlight.push(engine.submit(sql(1, 'INSERT INTO t VALUES ($1)', [i])));
  t.throws(() => engine.submit(sql(1, 'INSERT INTO t VALUES (0)')), Overloaded);
  await Promise.all(inFlight);
  t.equal(engine.status().writesInFlight, 0);
  t.match(await engine.submit(sql(1, 'INSERT INTO t VALUES (0)')), { position: runtimeLimits.writesInFlightMax + 3 }, 'accepted again once they are applied');
});

t.test('the data dir: one cluster for life, one process at a time', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null, freshClusterId: EMBEDDED_CLUSTER });
  t.equal(engine.clusterId, EMBEDDED_CLUSTER, 'a fresh dir takes the fresh id');
  await t.rejects(SingleNodeEngine.open({ dataDir: dir, clusterId: null }), { code: 'DirectoryLocked' });
  await engine.close();
  const again = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.equal(again.clusterId, EMBEDDED_CLUSTER, 'an existing dir keeps its id');
  await again.close();
  await t.rejects(SingleNodeEngine.open({ dataDir: dir, clusterId: 78n }), { code: 'ClusterMismatch' });
  const configured = await SingleNodeEngine.open({ dataDir: join(dir, 'configured'), clusterId: 77n });
  t.equal(configured.clusterId, 77n, 'a fresh dir takes the configured id');
  await configured.close();
  await writeFile(join(dir, CLUSTER_ID_FILE), 'not hex\n');
  await t.rejects(SingleNodeEngine.open({ dataDir: dir, clusterId: null }), { code: 'CorruptIdentity' });
});

t.test('a version 1 checkpoint (no tenant directory) is read; the directory comes from the log', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  await engine.submit(create(1, 'one'));
  await engine.submit(create(2, 'two'));
  await engine.submit(drop(1));
  await engine.close();
  await writeFile(join(dir, CHECKPOINT_FILE), await rewriteCheckpoint(await readFile(join(dir, CHECKPOINT_FILE)), 1));
  const reopened = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => reopened.close());
  t.equal(reopened.head, 3);
  t.same(reopened.listTenants(), [{ id: 2, name: 'two' }]);
});
