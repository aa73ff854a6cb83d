import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClusterEngine, clusterEngineLimits } from '../src/cluster-engine.js';

/**
 * The server's cluster engine in one process: three replicas over an in-memory transport that
 * can cut one off. A write handed to a primary that has lost its quorum (it abdicates: still the
 * primary of its normal view, but refusing writes) must wait for the view change without
 * starving the event loop, and answer within its bound: earlier, the wait returned at once
 * whenever the replica was "the primary", and the write looped in microtasks — no tick, no
 * message, the whole server frozen — until its 10 s budget ran out.
 */
const CLUSTER = 0xe9_61_9e_01n;
const ADDRESSES = ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'];

t.test('a write to a cut-off primary waits for the view change without freezing the server', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'vdb-cluster-engine-'));
  const engines: ClusterEngine[] = [];
  const isolated = new Set<number>();
  t.teardown(async () => {
    for (const engine of engines) await engine.close();
    await rm(root, { recursive: true, force: true });
  });
  for (let index = 0; index < 3; index++) {
    engines.push(await ClusterEngine.open({ dataDir: join(root, `r${index}`), clusterId: CLUSTER, replicaIndex: index, addresses: ADDRESSES, tickMs: 5 }));
  }
  engines.forEach((engine, index) => engine.node.start({
    send(to, bytes) {
      if (isolated.has(index) || isolated.has(to)) return;
      setImmediate(() => engines[to]?.replicaFrame(index, bytes));
    },
  }));
  const primary = async (): Promise<ClusterEngine> => {
    for (let attempt = 0; attempt < 2000; attempt++) {
      const found = engines.find((e, i) => !isolated.has(i) && e.node.acceptsWrites && e.ready);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error('no primary within 10 s');
  };

  const first = await primary();
  t.match(await first.createTenant(1, 'one', 'tester'), { ok: true }, 'the first primary takes writes');
  isolated.add(first.node.replicaIndex);
  // Until it abdicates (it stops hearing a quorum), it still looks like a primary.
  for (let attempt = 0; attempt < 2000 && first.node.acceptsWrites; attempt++) await new Promise((resolve) => setTimeout(resolve, 5));
  t.notOk(first.node.acceptsWrites, 'the cut-off primary abdicates');

  let ticks = 0;
  const counter = setInterval(() => { ticks += 1; }, 10);
  const started = Date.now();
  const outcome = await first.execute(1, [{ sql: 'CREATE TABLE x (id BIGINT PRIMARY KEY)', params: [] }], 'tester');
  const elapsedMs = Date.now() - started;
  clearInterval(counter);
  t.notOk(outcome.ok, 'the write is not taken by a replica that cannot commit');
  t.ok(!outcome.ok && (outcome.error.code === 'NotPrimary' || outcome.error.code === 'Unavailable'), `a typed answer: ${outcome.ok ? '' : outcome.error.code}`);
  t.ok(elapsedMs <= clusterEngineLimits.viewChangeWaitMs + 2_000, `answered within the view-change wait (${elapsedMs} ms)`);
  // A frozen event loop runs no timers: the counter would stay near 0 for the whole wait.
  t.ok(ticks >= elapsedMs / 10 / 4, `the event loop kept running while the write waited (${ticks} timer runs in ${elapsedMs} ms)`);

  const second = await primary();
  t.not(second.node.replicaIndex, first.node.replicaIndex, 'another replica leads');
  t.match(await second.execute(1, [{ sql: 'CREATE TABLE x (id BIGINT PRIMARY KEY)', params: [] }], 'tester'), { ok: true }, 'and takes the write');
});
