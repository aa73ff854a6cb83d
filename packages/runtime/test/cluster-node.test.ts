import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { blake3, crc32 } from '@veritydb/crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Envelope } from '@veritydb/kernel';
import { Log } from '@veritydb/storage';
import { clusterId, position, tenantId } from '@veritydb/types';
import { ClusterNode, InvalidArgument, SingleNodeEngine, type WriteOutcome } from '../src/index.js';

/**
 * Three (or five) ClusterNodes in one process on real disks, wired by an in-memory transport
 * that can cut a replica off: the driver end to end (journal, group commit, ticks, sessions,
 * failover, restart from the journal) without sockets. The socket transport is tested with real
 * `vdb-server` processes in packages/server.
 */
const CLUSTER = 0xc1_05_7e_12n;

interface Harness {
  readonly dirs: string[];
  readonly nodes: (ClusterNode | null)[];
  readonly isolated: Set<number>;
  open(index: number): Promise<ClusterNode>;
  stop(index: number): Promise<void>;
  primary(): Promise<ClusterNode>;
}

async function harness(t: Test, count: number): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'vdb-cluster-node-'));
  const dirs = Array.from({ length: count }, (_, i) => join(root, `r${i}`));
  const nodes: (ClusterNode | null)[] = Array.from({ length: count }, () => null);
  const isolated = new Set<number>();
  const h: Harness = {
    dirs, nodes, isolated,
    async open(index) {
      const node = await ClusterNode.open({ dataDir: dirs[index] as string, clusterId: CLUSTER, replica: index, replicaCount: count, tickMs: 5 });
      nodes[index] = node;
      node.start({
        send(to, bytes) {
          if (isolated.has(index) || isolated.has(to)) return;
          setImmediate(() => nodes[to]?.onPeerMessage(bytes));
        },
      });
      return node;
    },
    async stop(index) {
      const node = nodes[index];
      nodes[index] = null;
      await node?.close();
    },
    async primary() {
      for (let attempt = 0; attempt < 2000; attempt++) {
        const found = nodes.find((n) => n !== null && !isolated.has(n.replicaIndex) && n.status().isPrimary && n.ready);
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      throw new Error('no primary within 10 s');
    },
  };
  for (let i = 0; i < count; i++) await h.open(i);
  t.teardown(async () => {
    for (let i = 0; i < count; i++) await h.stop(i);
    await rm(root, { recursive: true, force: true });
  });
  return h;
}

const create = (id: number): Envelope => ({ tenant: tenantId(id), actor: 'tester', command: { kind: 'tenant_create', id: tenantId(id), name: `t${id}` } });
const sql = (id: number, text: string, params: readonly bigint[] = []): Envelope => ({
  tenant: tenantId(id), actor: 'tester', command: { kind: 'sql', statements: [{ sql: text, params }] },
});

function ok(t: Test, outcome: WriteOutcome, what: string): number {
  if (outcome.kind !== 'ok') {
    t.fail(`${what}: ${JSON.stringify(outcome)}`);
    return 0;
  }
  return outcome.result.position;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('three replicas: writes commit on the primary, every replica applies the same state, backups refuse writes', async (t) => {
  const h = await harness(t, 3);
  const primary = await h.primary();
  ok(t, await primary.submit(create(1), 5_000), 'create tenant');
  ok(t, await primary.submit(sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, n BIGINT)'), 5_000), 'create table');
  const writes = await Promise.all(Array.from({ length: 40 }, (_, i) => primary.submit(sql(1, 'INSERT INTO p VALUES ($1, $2)', [BigInt(i), BigInt(i * i)]), 5_000)));
  const positions = writes.map((w, i) => ok(t, w, `insert ${i}`));
  t.equal(new Set(positions).size, 40, 'every write has its own position');
  const last = Math.max(...positions);
  const backup = h.nodes.find((n) => n !== null && n !== primary) as ClusterNode;
  t.match(await backup.submit(create(2), 1_000), { kind: 'not_primary', primary: primary.replicaIndex }, 'a backup names the primary');
  for (const node of h.nodes) await node?.waitApplied(position(last), 5_000);
  const hashes = h.nodes.map((n) => Buffer.from((n as ClusterNode).kernel.stateHash()).toString('hex'));
  t.equal(new Set(hashes).size, 1, 'state hashes are equal on every replica');
  const rows = backup.kernel.read(tenantId(1), 'SELECT COUNT(*) AS c FROM p', [], backup.head);
  t.match(rows, { ok: true, rows: [[40n]] }, 'a backup serves the committed rows');

  // Every replica's ledger (<data>/log, the storage format verify and export read) holds the
  // same committed entries with the same chain.
  for (let i = 0; i < 3; i++) await h.stop(i);
  const heads: string[] = [];
  for (const dir of h.dirs) {
    const log = await Log.open(dir, { cluster: clusterId(CLUSTER) });
    const verified = await log.verify({});
    t.match(verified, { ok: true }, `the ledger in ${dir} verifies`);
    t.ok(log.head().position >= last, 'the ledger holds every committed op');
    const record = await log.read(position(last));
    heads.push(Buffer.from(record?.hash ?? new Uint8Array(0)).toString('hex'));
    await log.close();
  }
  t.equal(new Set(heads).size, 1, 'the ledgers agree on the hash chain up to the last write');

  // Opened offline (what vdb-admin verify/export/backup do), a replica's dir reads but refuses writes.
  const offline = await SingleNodeEngine.open({ dataDir: h.dirs[0] as string, clusterId: CLUSTER });
  t.match(offline.kernel.read(tenantId(1), 'SELECT COUNT(*) FROM p', []), { ok: true, rows: [[40n]] }, 'offline reads see the committed rows');
  t.throws(() => offline.submit(create(9)), InvalidArgument, 'offline writes to a replica dir are refused');
  await offline.close();
});

t.test('exactly once: a session request retried after commit gets the cached reply, not a second execution', async (t) => {
  const h = await harness(t, 3);
  const primary = await h.primary();
  ok(t, await primary.submit(create(1), 5_000), 'create tenant');
  ok(t, await primary.submit(sql(1, 'CREATE TABLE c (id BIGINT PRIMARY KEY, n BIGINT)'), 5_000), 'create table');
  ok(t, await primary.submit(sql(1, 'INSERT INTO c VALUES (1, 0)'), 5_000), 'seed row');
  const client = 0xabcdefn;
  t.match(await primary.register(client, 5_000), { kind: 'ok' });
  const bump = sql(1, 'UPDATE c SET n = n + 1 WHERE id = 1');
  const first = await primary.submitInSession(client, 1, bump, 5_000);
  const again = await primary.submitInSession(client, 1, bump, 5_000);
  t.equal(ok(t, again, 'retry'), ok(t, first, 'first'), 'the retry answers with the first position');
  t.match(primary.kernel.read(tenantId(1), 'SELECT n FROM c', [], primary.head), { ok: true, rows: [[1n]] }, 'executed once');
  t.match(await primary.submitInSession(0x999n, 1, bump, 1_000), { kind: 'evicted' }, 'an unregistered session must register');
});

t.test('the primary is cut off: a new primary takes over, nothing acknowledged is lost, the old one catches up', async (t) => {
  const h = await harness(t, 3);
  const first = await h.primary();
  ok(t, await first.submit(create(1), 5_000), 'create tenant');
  ok(t, await first.submit(sql(1, 'CREATE TABLE k (id BIGINT PRIMARY KEY)'), 5_000), 'create table');
  const acknowledged: number[] = [];
  for (let i = 0; i < 10; i++) if ((await first.submit(sql(1, 'INSERT INTO k VALUES ($1)', [BigInt(i)]), 5_000)).kind === 'ok') acknowledged.push(i);
  h.isolated.add(first.replicaIndex);
  const second = await h.primary();
  t.not(second.replicaIndex, first.replicaIndex, 'another replica leads');
  for (let i = 10; i < 20; i++) if (ok(t, await second.submit(sql(1, 'INSERT INTO k VALUES ($1)', [BigInt(i)]), 5_000), `insert ${i}`) > 0) acknowledged.push(i);
  h.isolated.delete(first.replicaIndex);
  await until(() => first.ready && h.nodes.every((n) => n !== null && n.head >= second.head), 'every replica, the old primary too, to catch up');
  for (const node of h.nodes) {
    const read = (node as ClusterNode).kernel.read(tenantId(1), 'SELECT id FROM k ORDER BY id', [], (node as ClusterNode).head);
    t.same(read.ok ? read.rows.map((r) => Number(r[0])) : read, acknowledged, `replica ${(node as ClusterNode).replicaIndex} holds every acknowledged row once`);
  }
});

t.test('a replica restarts from its journal and catches up with what it missed', async (t) => {
  const h = await harness(t, 3);
  const primary = await h.primary();
  ok(t, await primary.submit(create(1), 5_000), 'create tenant');
  ok(t, await primary.submit(sql(1, 'CREATE TABLE r (id BIGINT PRIMARY KEY)'), 5_000), 'create table');
  const victim = (primary.replicaIndex + 1) % 3;
  await h.stop(victim);
  for (let i = 0; i < 15; i++) ok(t, await primary.submit(sql(1, 'INSERT INTO r VALUES ($1)', [BigInt(i)]), 5_000), `insert ${i} with one replica down`);
  const restarted = await h.open(victim);
  await until(() => restarted.head >= primary.head, 'the restarted replica to catch up');
  t.equal(Buffer.from(restarted.kernel.stateHash()).toString('hex'), Buffer.from(primary.kernel.stateHash()).toString('hex'), 'same state as the primary');
});

t.test('five replicas survive two stopped replicas', async (t) => {
  const h = await harness(t, 5);
  let primary = await h.primary();
  ok(t, await primary.submit(create(1), 5_000), 'create tenant');
  const others = [1, 2, 3, 4].map((d) => (primary.replicaIndex + d) % 5);
  await h.stop(others[0] as number);
  await h.stop(primary.replicaIndex);
  primary = await h.primary();
  ok(t, await primary.submit(sql(1, 'CREATE TABLE f (id BIGINT PRIMARY KEY)'), 10_000), 'a write commits with three of five');
});

t.test('a replica refuses to start on a data dir of another replica or cluster, or of an unknown superblock format', async (t) => {
  const h = await harness(t, 3);
  await h.primary();
  await h.stop(1);
  const dir = h.dirs[1] as string;
  await t.rejects(ClusterNode.open({ dataDir: dir, clusterId: CLUSTER, replica: 2, replicaCount: 3 }), { code: 'SuperblockMismatch', message: /holds replica 1 of 3/ },
    'another replica index');
  await t.rejects(ClusterNode.open({ dataDir: dir, clusterId: CLUSTER + 1n, replica: 1, replicaCount: 3 }), { code: 'ClusterMismatch' }, 'another cluster');
  await t.rejects(ClusterNode.open({ dataDir: dir, clusterId: CLUSTER, replica: 1, replicaCount: 5 }), { code: 'SuperblockMismatch' }, 'another cluster size');
  // A superblock copy with an intact frame but a format version this build does not know.
  for (const name of ['superblock.0', 'superblock.1']) {
    const path = join(dir, 'vsr', name);
    const bytes = Buffer.from(await readFile(path));
    if (bytes.length < 16 + 34) continue;
    bytes.writeUInt16LE(99, 16 + 32);
    bytes.set(blake3(bytes.subarray(16 + 32, 16 + bytes.readUInt32LE(4))), 16);
    bytes.writeUInt32LE(crc32(bytes.subarray(4, 16 + bytes.readUInt32LE(4))), 0);
    await writeFile(path, bytes);
  }
  await t.rejects(ClusterNode.open({ dataDir: dir, clusterId: CLUSTER, replica: 1, replicaCount: 3 }), { code: 'SuperblockUnreadable', message: /format version 99/ },
    'an unknown superblock format');
});
