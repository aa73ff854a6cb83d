import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Connection, NotPrimaryError, type WireValue } from '@veritydb/client';
import { Prng, seedFrom } from '@veritydb/types';
import { IndeterminateError, Verity } from '../src/index.js';
import { startCluster, wipe, type TestCluster } from '../testing/cluster.js';

/**
 * Real `vdb-server` clusters (3 and 5 processes on 127.0.0.1) driven through the SDK: replicas
 * killed with SIGKILL, paused with SIGSTOP, wiped; after every fault the acknowledged writes are
 * checked on every replica, and the replicas' state and chain hashes are compared.
 */
const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

async function cluster(t: Test, count: 3 | 5): Promise<TestCluster> {
  const root = await mkdtemp(join(tmpdir(), `vdb-cluster-${count}-`));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return startCluster(t.teardown, root, count);
}

async function connect(t: Test, c: TestCluster): Promise<Verity> {
  const db = await Verity.connect({ addresses: [...c.addresses], token: c.token });
  t.teardown(() => db.close());
  return db;
}

/** A direct connection to one replica (no primary discovery), for reads served by that replica. */
async function direct(t: Test, c: TestCluster, index: number): Promise<Connection> {
  const connection = await Connection.open({ address: c.addresses[index] as string, token: c.token });
  t.teardown(() => connection.close());
  return connection;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every live replica at the same position has the same state hash and chain hash. */
async function sameState(t: Test, c: TestCluster): Promise<void> {
  const commit = await c.converged();
  const states = await Promise.all(c.replicas.filter((r) => r.process !== null).map((r) => c.state(r.index)));
  t.ok(states.every((s) => s !== null && s.applied === commit), `every live replica applied ${commit}`);
  t.equal(new Set(states.map((s) => s?.stateHash)).size, 1, 'state hashes are equal');
  t.equal(new Set(states.map((s) => s?.chainHash)).size, 1, 'chain hashes are equal');
}

/** Counts of `log` rows per client as replica `index` has them (read at its own head). */
async function rowsOn(t: Test, c: TestCluster, index: number): Promise<Map<number, Set<number>>> {
  const connection = await direct(t, c, index);
  const result = await connection.query(1, { sql: 'SELECT client, n FROM log', params: [] }, { consistency: 'eventual' });
  const rows = new Map<number, Set<number>>();
  for (const row of result.rows) {
    const client = Number((row[0] as { value: bigint }).value);
    const n = Number((row[1] as { value: bigint }).value);
    if (!rows.has(client)) rows.set(client, new Set());
    rows.get(client)?.add(n);
  }
  return rows;
}

t.test('3 replicas: the primary is killed under load; every acknowledged write is on every replica exactly once', async (t) => {
  const c = await cluster(t, 3);
  const db = await connect(t, c);
  await db.createTenant({ id: 1, name: 'load' });
  const tenant = db.tenant(1);
  await tenant.execute('CREATE TABLE log (client BIGINT, n BIGINT, PRIMARY KEY (client, n))');
  await tenant.execute('CREATE TABLE counters (client BIGINT PRIMARY KEY, n BIGINT NOT NULL)');
  const clients = 4;
  for (let client = 0; client < clients; client++) await tenant.execute('INSERT INTO counters VALUES ($1, 0)', [client]);

  const acknowledged = Array.from({ length: clients }, () => new Set<number>());
  const unknown = Array.from({ length: clients }, () => new Set<number>());
  const stopAt = Date.now() + 4_000;
  const load = Array.from({ length: clients }, async (_, client) => {
    const handle = await Verity.connect({ addresses: [...c.addresses], token: c.token });
    try {
      for (let n = 1; Date.now() < stopAt; n++) {
        try {
          // One atomic entry: the row, and the counter it must move with (a double apply would show).
          await handle.tenant(1).batch([
            { sql: 'INSERT INTO log VALUES ($1, $2)', params: [client, n] },
            { sql: 'UPDATE counters SET n = n + 1 WHERE client = $1', params: [client] },
          ], { timeoutMs: 15_000 });
          acknowledged[client]?.add(n);
        } catch (error) {
          unknown[client]?.add(n);
          if (!(error instanceof IndeterminateError) && !(error instanceof Error)) throw error;
        }
      }
    } finally {
      await handle.close();
    }
  });
  const first = await c.primary();
  await sleep(1_200);
  await c.kill(first);
  const second = await c.primary([first]);
  t.not(second, first, `replica ${second} took over from ${first}`);
  await Promise.all(load);
  const total = acknowledged.reduce((sum, s) => sum + s.size, 0);
  t.ok(total > 0, `${total} writes acknowledged, ${unknown.reduce((s, u) => s + u.size, 0)} not`);

  await c.start(first);
  await sameState(t, c);
  for (const replica of c.replicas) {
    const rows = await rowsOn(t, c, replica.index);
    for (let client = 0; client < clients; client++) {
      const have = rows.get(client) ?? new Set<number>();
      const missing = [...(acknowledged[client] ?? [])].filter((n) => !have.has(n));
      t.same(missing, [], `replica ${replica.index}, client ${client}: no acknowledged write is missing`);
      const extra = [...have].filter((n) => !acknowledged[client]?.has(n) && !unknown[client]?.has(n));
      t.same(extra, [], `replica ${replica.index}, client ${client}: nothing that was never sent`);
    }
  }
  const counters = await tenant.query('SELECT client, n FROM counters ORDER BY client', [], { consistency: 'linearizable' });
  const rows = await rowsOn(t, c, second);
  for (const row of counters.rows) {
    const client = Number(row['client']);
    t.equal(Number(row['n']), rows.get(client)?.size ?? 0, `client ${client}: the counter moved exactly once per logged row`);
  }
});

t.test('3 replicas: a killed backup restarts and catches up; a wiped replica rejoins and catches up', async (t) => {
  const c = await cluster(t, 3);
  const db = await connect(t, c);
  await db.createTenant({ id: 1, name: 'catch-up' });
  const tenant = db.tenant(1);
  await tenant.execute('CREATE TABLE log (client BIGINT, n BIGINT, PRIMARY KEY (client, n))');
  const primary = await c.primary();
  const backup = (primary + 1) % 3;
  await c.kill(backup);
  for (let n = 0; n < 30; n++) await tenant.execute('INSERT INTO log VALUES (0, $1)', [n]);
  await c.start(backup);
  await sameState(t, c);
  t.equal((await rowsOn(t, c, backup)).get(0)?.size, 30, 'the restarted backup has every row');

  const other = (primary + 2) % 3;
  await c.kill(other);
  await wipe(c.replicas[other] as (typeof c.replicas)[number]);
  for (let n = 30; n < 40; n++) await tenant.execute('INSERT INTO log VALUES (0, $1)', [n]);
  const rejoined = await c.start(other);
  await sleep(200);
  t.match(rejoined.output(), /rejoining in recovery mode/, 'the wiped replica found the cluster and rejoined in recovery mode');
  await sameState(t, c);
  t.equal((await rowsOn(t, c, other)).get(0)?.size, 40, 'the wiped replica rebuilt every row from its peers');
  const commit = await c.converged();
  const status = await db.status();
  t.same(status.replicas?.map((r) => [r.index, r.state, r.commit]), [0, 1, 2].map((i) => [i, 'normal', commit]),
    'status reports every replica with its own commit position');
  t.equal(status.replicas?.filter((r) => r.role === 'primary').length, 1, 'and one primary');
});

t.test('5 replicas: writes keep succeeding with two replicas killed', async (t) => {
  const c = await cluster(t, 5);
  const db = await connect(t, c);
  await db.createTenant({ id: 1, name: 'five' });
  const tenant = db.tenant(1);
  await tenant.execute('CREATE TABLE log (client BIGINT, n BIGINT, PRIMARY KEY (client, n))');
  const primary = await c.primary();
  const prng = new Prng(seed);
  const victims = [primary, (primary + 1 + prng.int(4)) % 5];
  for (const victim of victims) await c.kill(victim);
  for (let n = 0; n < 20; n++) await tenant.execute('INSERT INTO log VALUES (0, $1)', [n], { timeoutMs: 20_000 });
  const count = await tenant.query('SELECT COUNT(*) AS c FROM log', [], { consistency: 'linearizable' });
  t.equal(Number(count.rows[0]?.['c']), 20, `20 writes committed with replicas ${victims.join(' and ')} down`);
  for (const victim of victims) await c.start(victim);
  await sameState(t, c);
});

t.test('consistency modes across replicas are never weaker than promised', async (t) => {
  const c = await cluster(t, 3);
  const db = await connect(t, c);
  await db.createTenant({ id: 1, name: 'modes' });
  const tenant = db.tenant(1);
  await tenant.execute('CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)');
  await tenant.execute('INSERT INTO kv VALUES (1, 0)');
  const primary = await c.primary();
  const backup = (primary + 1) % 3;
  const kv = { sql: 'SELECT v FROM kv WHERE k = 1', params: [] };
  const valueOf = (rows: readonly (readonly WireValue[])[]): number => {
    const value = rows[0]?.[0];
    return value === undefined || value.kind === 'null' ? Number.NaN : Number(value.value);
  };

  await t.test('causal and at-position reads on a lagging backup wait for the position', async (t) => {
    const reader = await direct(t, c, backup);
    c.pause(backup);
    const write = await tenant.execute('UPDATE kv SET v = 1 WHERE k = 1');
    c.resume(backup);
    // The backup missed the write while paused: a causal read with the write's token must still see it.
    const causal = await reader.query(1, kv, { consistency: 'causal', position: write.position });
    t.equal(valueOf(causal.rows), 1, 'causal: the session sees its own write on a backup');
    t.ok(causal.position >= write.position, 'causal: the read position is at least the token');
    const at = await reader.query(1, kv, { consistency: 'atPosition', position: write.position - 1 });
    t.equal(valueOf(at.rows), 0, 'at position: exactly the state before the write');
    t.equal(at.position, write.position - 1);
  });

  await t.test('eventual reads are a consistent snapshot at the position they report', async (t) => {
    const reader = await direct(t, c, backup);
    const atPrimary = await direct(t, c, primary);
    for (let i = 0; i < 5; i++) {
      const write = tenant.execute('UPDATE kv SET v = v + 1 WHERE k = 1');
      const eventual = await reader.query(1, kv, { consistency: 'eventual' });
      const exact = await atPrimary.query(1, kv, { consistency: 'atPosition', position: eventual.position });
      t.equal(valueOf(eventual.rows), valueOf(exact.rows), `eventual read at ${eventual.position} equals the state at that position`);
      await write;
    }
  });

  await t.test('a linearizable read on a deposed primary never returns stale data', async (t) => {
    const old = await c.primary();
    const stale = await direct(t, c, old);
    c.pause(old);
    const next = await c.primary([old]);
    // Written through the new primary only (a handle on the paused one would wait for it).
    const writer = await Verity.connect({ addresses: [c.addresses[next] as string], token: c.token });
    t.teardown(() => writer.close());
    const write = await writer.tenant(1).execute('UPDATE kv SET v = 100 WHERE k = 1', [], { timeoutMs: 20_000 });
    c.resume(old);
    // The old primary has not heard of the new view yet: answering from its own state would be stale.
    try {
      const read = await stale.query(1, kv, { consistency: 'linearizable', timeoutMs: 5_000 });
      t.equal(valueOf(read.rows), 100, 'the read includes the write acknowledged before it began');
      t.ok(read.position >= write.position);
    } catch (error) {
      t.ok(error instanceof NotPrimaryError, `refused instead: ${(error as Error).message}`);
      if (error instanceof NotPrimaryError) t.equal(error.primary.index, next, 'and names the new primary');
    }
    const backupRead = await (await direct(t, c, (next + 1) % 3)).query(1, kv, { consistency: 'linearizable' }).catch((e: unknown) => e);
    t.ok(backupRead instanceof NotPrimaryError, 'a backup refuses linearizable reads with NotPrimary');
  });
});
