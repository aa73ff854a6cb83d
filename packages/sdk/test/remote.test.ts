import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng, seedFrom } from '@veritydb/types';
import {
  AbortedError, ClosedError, ConstraintViolation, InvalidArgument, NotSupported, RemoteError, SqlError, TenantExists,
  TenantNotFound, Timestamp, TimeoutError, Unauthorized, Verity, type VerityEvent,
} from '../src/index.js';
import { startServer, type RunningServer } from '../testing/vdb-server.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

let server: RunningServer;
t.before(async () => { server = await startServer(); });
t.teardown(async () => { await server?.stop(); });

async function connect(extra: { position?: number } = {}): Promise<Verity> {
  return Verity.connect({ addresses: [server.address], token: server.token, ...extra });
}

t.test('the DESIGN §11 walk-through against a real server', async (t) => {
  const db = await connect();
  t.teardown(() => db.close());
  const created = await db.createTenant({ id: 1, name: 'clinic' });
  t.ok(created.position >= 1);
  await t.rejects(db.createTenant({ id: 1, name: 'again' }), TenantExists);
  const tn = db.tenant(1);
  const ddl = await tn.execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, born TIMESTAMP, big BIGINT, doc JSON, photo BYTES, day DATE, n INTEGER, x DOUBLE, ok BOOLEAN)');
  t.equal(ddl.rowsAffected, 0);
  const born = new Date('1990-05-17T10:20:30.123Z');
  const w = await tn.execute('INSERT INTO p (id, name, born, big, doc, photo, day, n, x, ok) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, name',
    [1, 'Ann', born, 2n ** 60n, { tags: ['a'] }, new Uint8Array([1, 2]), '2024-02-29', 7, 1.5, true]);
  t.same(w.rows, [{ id: 1, name: 'Ann' }], 'RETURNING rows, BIGINT as a number when safe');
  t.equal(w.rowsAffected, 1);
  t.ok(w.position > ddl.position);
  t.equal(db.position, w.position, 'the handle remembers the highest position it has seen');
  const r = await tn.query('SELECT * FROM p WHERE id = ?', [1]);
  t.same(r.rows, [{ id: 1, name: 'Ann', born, big: 2n ** 60n, doc: { tags: ['a'] }, photo: new Uint8Array([1, 2]), day: '2024-02-29', n: 7, x: 1.5, ok: true }]);
  t.ok((r.rows[0]?.['born'] as Timestamp) instanceof Timestamp, 'TIMESTAMP as a Timestamp');
  t.equal(r.position, w.position);
  t.same(r.columns.map((c) => c.type), ['BIGINT', 'TEXT', 'TIMESTAMP', 'BIGINT', 'JSON', 'BYTES', 'DATE', 'INTEGER', 'DOUBLE', 'BOOLEAN']);
  await tn.execute("UPDATE p SET name = 'Anne' WHERE id = 1");
  t.same((await tn.queryAt('SELECT name FROM p', w.position)).rows, [{ name: 'Ann' }], 'queryAt reads the past');
  t.same((await tn.query('SELECT name FROM p', [], { position: w.position })).rows, [{ name: 'Ann' }]);
  await t.rejects(tn.query('SELECT 1', [], { position: 0 }), TenantNotFound, 'nothing exists at position 0 (as embedded)');
  t.same((await tn.query('SELECT name FROM p', [], { consistency: 'linearizable' })).rows, [{ name: 'Anne' }]);
  t.same((await tn.query('SELECT name FROM p', [], { consistency: 'eventual' })).rows, [{ name: 'Anne' }]);
  const read = await tn.execute('SELECT count(*) AS n FROM p');
  t.same(read, { position: db.position, rowsAffected: 1, rows: [{ n: 1 }], columns: [{ name: 'n', type: 'BIGINT' }] }, 'a read through execute is not logged');

  const batch = await tn.batch([
    { sql: 'INSERT INTO p (id, name) VALUES (?, ?)', params: [2, 'Bob'] },
    { sql: 'INSERT INTO p (id, name) VALUES (?, ?)', params: [3, 'Cy'] },
    { sql: 'DELETE FROM p WHERE id = ? RETURNING name', params: [1] },
  ]);
  t.equal(batch.position, db.position);
  t.equal(batch.rowsAffected, 3);
  t.same(batch.results.map((x) => x.rows), [[], [], [{ name: 'Anne' }]]);
  t.same((await tn.query('SELECT id FROM p ORDER BY id')).rows, [{ id: 2 }, { id: 3 }]);

  const events: VerityEvent[] = [];
  for await (const e of tn.events({ stream: 'p', from: 1 }, { timeoutMs: 2_000 })) {
    events.push(e);
    if (e.position === batch.position && e.index === 2) break;
  }
  t.same(events.map((e) => [e.position, e.event_type]), [
    [ddl.position, 'ddl'], [w.position, 'insert'], [w.position + 1, 'update'], [batch.position, 'insert'], [batch.position, 'insert'], [batch.position, 'delete'],
  ]);
  t.equal(events[1]?.stream, 'p');
  t.ok(events[1]?.timestamp instanceof Timestamp);
  t.match(events[1]?.data, { id: 1, name: 'Ann', day: '2024-02-29' });
  t.same(events[1]?.key, [1]);

  t.same(await db.listTenants(), [{ id: 1, name: 'clinic' }]);
  const status = await db.status();
  t.match(status, { mode: 'remote', view: 0, primary: server.address, connectedTo: server.address });
  t.match(status.clusterId, /^0x[0-9a-f]+$/);
  t.equal(status.replicas.length, 1);
  t.match(status.replicas[0], { index: 0, role: 'primary', state: 'normal' });
  t.ok((status.replicas[0]?.applied ?? 0) >= batch.position);
});

t.test('a batch is atomic: one failing statement and nothing is applied', async (t) => {
  const db = await connect();
  t.teardown(() => db.close());
  await db.createTenant({ id: 2, name: 'atomic' });
  const tn = db.tenant(2);
  await tn.execute('CREATE TABLE a (id BIGINT PRIMARY KEY, v TEXT NOT NULL)');
  await tn.execute("INSERT INTO a VALUES (1, 'one')");
  const before = db.position;
  const failed = await tn.batch([
    { sql: "INSERT INTO a VALUES (2, 'two')" },
    { sql: "INSERT INTO a VALUES (1, 'dup')" },
  ]).catch((e: unknown) => e);
  t.ok(failed instanceof ConstraintViolation, 'a duplicate key is a ConstraintViolation');
  t.match(failed, { code: 'UniqueViolation', sqlState: '23505', statement: 1 });
  const logged = (failed as ConstraintViolation).position;
  t.ok(logged !== undefined && logged > before, 'the rejected attempt is logged, and its position reported');
  t.equal(db.position, logged, 'the causal token covers the logged rejection');
  t.same((await tn.query('SELECT id, v FROM a ORDER BY id')).rows, [{ id: 1, v: 'one' }], 'nothing of the batch was applied');
  const notNull = await tn.execute('INSERT INTO a (id) VALUES (5)').catch((e: unknown) => e);
  t.match(notNull, { code: 'NotNullViolation', sqlState: '23502' });
});

t.test('typed errors match embedded mode', async (t) => {
  const db = await connect();
  t.teardown(() => db.close());
  await db.createTenant({ id: 3, name: 'errors' });
  const tn = db.tenant(3);
  const syntax = await tn.query('SELEC 1').catch((e: unknown) => e);
  t.ok(syntax instanceof SqlError);
  t.match(syntax, { code: 'SyntaxError', sqlState: '42601', line: 1 });
  const missing = await tn.query('SELECT * FROM nowhere').catch((e: unknown) => e);
  t.match(missing, { code: 'UndefinedTable', sqlState: '42P01' });
  t.ok(missing instanceof SqlError);
  await t.rejects(db.tenant(999).query('SELECT 1'), TenantNotFound);
  await t.rejects(db.tenant(999).execute('CREATE TABLE x (id BIGINT PRIMARY KEY)'), TenantNotFound);
  await t.rejects(db.createTenant({ id: 0, name: 'zero' }), InvalidArgument);
  await t.rejects(tn.query('SELECT 1', [], { consistency: 'strong' as 'causal' }), InvalidArgument);
  await t.rejects(tn.execute('SELECT $1', [Symbol('x')]), InvalidArgument);
  t.match(await db.verify(), { ok: true }, 'a remote verify checks the server\'s log');
  await t.rejects(db.verify({ from: 2 }), NotSupported, 'ranges are embedded only');
  await t.rejects((async () => { for await (const _ of tn.events({ from: 1 })) break; })(), InvalidArgument, 'remote events need a stream');
  const aborted = new AbortController();
  aborted.abort();
  await t.rejects(tn.query('SELECT 1', [], { signal: aborted.signal }), AbortedError);

  await t.rejects(Verity.connect({ addresses: [server.address], token: 'vdb1.bad.token' }), Unauthorized);
  await t.rejects(Verity.connect({ addresses: [server.address], token: '' }), InvalidArgument);
  await t.rejects(Verity.connect({ addresses: ['not an address'], token: server.token }), InvalidArgument);
  await t.rejects(Verity.connect({ addresses: [], token: server.token }), InvalidArgument);
  const unreachable = await Verity.connect({ addresses: ['127.0.0.1:1'], token: server.token }).catch((e: unknown) => e);
  t.ok(unreachable instanceof RemoteError);
  t.match(unreachable, { code: 'Unavailable' });

  const saved = process.env['VDB_TOKEN'];
  process.env['VDB_TOKEN'] = server.token;
  try {
    const fromEnv = await Verity.connect({ addresses: [server.address] });
    t.same((await fromEnv.tenant(3).query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the token comes from VDB_TOKEN');
    await fromEnv.close();
  } finally {
    if (saved === undefined) delete process.env['VDB_TOKEN'];
    else process.env['VDB_TOKEN'] = saved;
  }

  await db.close();
  await t.rejects(tn.query('SELECT 1'), ClosedError);
  await t.rejects(db.createTenant({ id: 4, name: 'late' }), ClosedError);
});

t.test('causal: the handle sends the highest position it has seen', async (t) => {
  const writer = await connect();
  t.teardown(() => writer.close());
  await writer.createTenant({ id: 5, name: 'causal' });
  const tn = writer.tenant(5);
  await tn.execute('CREATE TABLE c (id BIGINT PRIMARY KEY)');
  const w = await tn.execute('INSERT INTO c VALUES (1)');

  const reader = await connect({ position: w.position });
  t.teardown(() => reader.close());
  t.equal(reader.position, w.position, 'a handle can start from another handle\'s token');
  const r = await reader.tenant(5).query('SELECT id FROM c');
  t.ok(r.position >= w.position, 'the causal read saw at least the token');
  t.same(r.rows, [{ id: 1 }]);

  // A token ahead of everything the server applied: a causal read waits for it (and times
  // out), which shows the token travels with the request; eventual reads do not wait.
  const ahead = await connect({ position: w.position + 1_000 });
  t.teardown(() => ahead.close());
  await t.rejects(ahead.tenant(5).query('SELECT id FROM c', [], { timeoutMs: 300 }), TimeoutError);
  t.same((await ahead.tenant(5).query('SELECT id FROM c', [], { consistency: 'eventual' })).rows, [{ id: 1 }]);
  t.equal(ahead.position, w.position + 1_000, 'the token never moves backwards');
});

t.test('pipelined writes from one handle each get their own position (seeded)', async (t) => {
  const prng = new Prng(seed);
  const db = await connect();
  t.teardown(() => db.close());
  await db.createTenant({ id: 6, name: 'load' });
  const tn = db.tenant(6);
  await tn.execute('CREATE TABLE l (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)');
  const count = 40;
  const values = Array.from({ length: count }, () => prng.int(1_000_000));
  const writes = await Promise.all(values.map((v, id) => tn.execute('INSERT INTO l VALUES ($1, $2)', [id, v])));
  t.equal(new Set(writes.map((w) => w.position)).size, count);
  t.equal(db.position, Math.max(...writes.map((w) => w.position)));
  const r = await tn.query('SELECT sum(v) AS s, count(*) AS n FROM l');
  t.same(r.rows, [{ s: values.reduce((a, b) => a + b, 0), n: count }], `SEED=${seed}`);
});

t.test('embedded and remote give the same results for the same statements', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'verity-parity-'));
  const embedded = await Verity.open(dir);
  const remote = await connect();
  t.teardown(async () => {
    await embedded.close();
    await remote.close();
    await rm(dir, { recursive: true, force: true });
  });
  const script: [string, unknown[]][] = [
    ['CREATE TABLE q (id BIGINT PRIMARY KEY, t TEXT, ts TIMESTAMP, j JSON, d DATE, b BYTES)', []],
    ['INSERT INTO q VALUES ($1, $2, $3, $4, $5, $6) RETURNING *', [1, 'x', new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 6)), [1, { a: null }], '2020-01-02', new Uint8Array([9])]],
    ['INSERT INTO q (id, ts) VALUES ($1, $2) RETURNING ts', [2, '2021-06-01 12:00:00.123456']],
    ['SELECT id, t, ts, j, d, b FROM q ORDER BY id', []],
    ['SELECT count(*) AS n, max(id) AS m FROM q', []],
  ];
  for (const db of [embedded, remote]) await db.createTenant({ id: 7, name: 'parity' });
  for (const [sql, params] of script) {
    const [e, r] = [await embedded.tenant(7).execute(sql, params), await remote.tenant(7).execute(sql, params)];
    t.same(r.rows, e.rows, sql);
    t.same(r.columns, e.columns);
    t.equal(r.rowsAffected, e.rowsAffected);
  }
  const at = (await remote.tenant(7).query("SELECT ts FROM q WHERE id = 2")).rows[0]?.["ts"] as Timestamp;
  t.equal(at.micros, 1_622_548_800_123_456n, 'TIMESTAMP keeps its microseconds over the wire');
  const errors = await Promise.all([embedded, remote].map((db) => db.tenant(7).execute('INSERT INTO q (id) VALUES (1)').catch((e: unknown) => e)));
  t.same(errors.map((e) => [(e as ConstraintViolation).constructor.name, (e as ConstraintViolation).code, (e as ConstraintViolation).message]),
    [['ConstraintViolation', 'UniqueViolation', (errors[0] as Error).message], ['ConstraintViolation', 'UniqueViolation', (errors[0] as Error).message]]);
});
