import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { processAlive } from '@veritydb/storage';
import { EXIT_OK } from '../src/index.js';
import { readCluster } from '../src/cluster-files.js';
import { stopCluster } from '../src/cluster.js';
import { run } from './run.js';

/**
 * End to end: `cluster init`, `start`, `status`, `stop` and `up` with three real `vdb-server`
 * processes on loopback (free ports found first), and writes through the SDK in between.
 */
const root = await mkdtemp(join(tmpdir(), 'vdb-admin-cluster-e2e-'));
const dirs: string[] = [];
t.teardown(async () => {
  // Whatever happened, nothing this test started keeps running.
  for (const dir of dirs) await stopCluster(dir, await readCluster(dir), 30_000).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port with `count` consecutive free ports after it. */
async function freeBase(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), where port-0 listeners of other tests land.
    const base = 20_000 + Math.floor(Math.random() * 6_000) * 2;
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await portFree(p);
    if (free) return base;
  }
  throw new Error('no free port range found');
}

interface Status { clusterId: string; replicas: { index: number; address: string; pid: number | null; ready: boolean; status: string; role: string | null; view: number | null; commit: number | null; applied: number | null }[] }

async function status(dir: string): Promise<Status> {
  const r = await run(['cluster', 'status', '--dir', dir, '--json']);
  if (r.code !== EXIT_OK) throw new Error(r.err);
  return JSON.parse(r.out) as Status;
}

t.test('init, start, status, write through the SDK, stop', async (t) => {
  const dir = join(root, 'three');
  dirs.push(dir);
  let r = await run(['cluster', 'init', '--nodes', '3', '--dir', dir, '--base-port', String(await freeBase(6)), '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  const init = JSON.parse(r.out) as { clusterId: string; addresses: string[]; token: string };
  r = await run(['cluster', 'start', '--dir', dir, '--timeout', '60s']);
  t.equal(r.code, EXIT_OK, r.err);
  t.equal(r.out, `3 replica(s) ready: ${init.addresses.join(',')}\n`);

  // Replicas that started a moment apart may still settle into one view: poll (bounded).
  let before = await status(dir);
  for (let i = 0; i < 100; i++) {
    const primaries = before.replicas.filter((s) => s.role === 'primary').length;
    if (primaries === 1 && new Set(before.replicas.map((s) => s.view)).size === 1 && before.replicas.every((s) => s.ready)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
    before = await status(dir);
  }
  t.equal(before.clusterId, init.clusterId);
  t.same(before.replicas.map((s) => [s.index, s.address, s.ready]), init.addresses.map((a, i) => [i, a, true]));
  t.ok(before.replicas.every((s) => s.pid !== null && processAlive(s.pid)), 'every replica has a live pid');
  t.equal(before.replicas.filter((s) => s.role === 'primary').length, 1, 'one primary');
  t.equal(new Set(before.replicas.map((s) => s.view)).size, 1, 'one view');

  const db = await Verity.connect({ addresses: init.addresses, token: init.token });
  let written: number;
  try {
    await db.createTenant({ id: 1, name: 'clinic' });
    await db.tenant(1).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL)');
    written = (await db.tenant(1).execute("INSERT INTO p VALUES (1, 'Ann')")).position;
    t.same((await db.tenant(1).query('SELECT name FROM p', [], { consistency: 'linearizable' })).rows, [{ name: 'Ann' }]);
  } finally {
    await db.close();
  }
  r = await run(['status', '--addresses', init.addresses.join(','), '--token', init.token, '--json']);
  t.equal(r.code, EXIT_OK, `vdb-admin status against the cluster: ${r.err}`);
  const primary = (await status(dir)).replicas.find((s) => s.role === 'primary');
  t.ok(primary !== undefined && (primary.commit ?? 0) >= written, 'the primary\'s commit position covers the write');

  r = await run(['cluster', 'start', '--dir', dir]);
  t.equal(r.code, EXIT_OK, 'start on a running cluster starts nothing new');
  t.match(r.out, /\(3 were already running\)/);

  r = await run(['cluster', 'stop', '--dir', dir, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  const stopped = (JSON.parse(r.out) as { stopped: { index: number; pid: number }[] }).stopped;
  t.same(stopped.map((s) => s.index), [0, 1, 2]);
  t.ok(stopped.every((s) => !processAlive(s.pid)), 'every process exited');
  t.same((await status(dir)).replicas.map((s) => s.status), ['stopped', 'stopped', 'stopped']);
  const log = await readFile(join(dir, 'replica-0.log'), 'utf8');
  t.match(log, /"msg":"stopped"/, 'the replica logged its graceful stop');

  r = await run(['cluster', 'start', '--dir', dir, '--timeout', '60s']);
  t.equal(r.code, EXIT_OK, `restart: ${r.err}`);
  const again = await Verity.connect({ addresses: init.addresses, token: init.token });
  try {
    t.same((await again.tenant(1).query('SELECT name FROM p', [], { consistency: 'linearizable' })).rows, [{ name: 'Ann' }], 'the write survived the restart');
  } finally {
    await again.close();
  }
  t.equal((await run(['cluster', 'stop', '--dir', dir])).code, EXIT_OK);
});

t.test('cluster up: init, start, serve until stopped, then stop', async (t) => {
  const dir = join(root, 'up');
  dirs.push(dir);
  let stop: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  const up = run(['cluster', 'up', '--nodes', '3', '--dir', dir, '--base-port', String(await freeBase(6)), '--json'], { untilStopped: () => stopped });
  let ready = false;
  for (let attempt = 0; attempt < 600 && !ready; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const replicas = await readCluster(dir).catch(() => []);
    ready = replicas.length === 3 && (await status(dir)).replicas.every((s) => s.ready);
  }
  t.ok(ready, 'every replica became ready');
  const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
  const addresses = (await readCluster(dir)).map((r) => r.listen);
  const db = await Verity.connect({ addresses, token });
  try {
    await db.createTenant({ id: 5, name: 'up' });
    t.same((await db.listTenants()).map((x) => x.id), [5]);
  } finally {
    await db.close();
  }
  stop('SIGINT');
  const r = await up;
  t.equal(r.code, EXIT_OK, r.err);
  const lines = r.out.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.match(lines[0], { addresses, token });
  t.match(lines[1], { signal: 'SIGINT', stopped: [{ index: 0 }, { index: 1 }, { index: 2 }] });
  t.same((await status(dir)).replicas.map((s) => s.status), ['stopped', 'stopped', 'stopped']);
});
