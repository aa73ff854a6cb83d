import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortedError, ClosedError, ConstraintViolation, InvalidArgument, PositionUnavailable, SqlError, TenantExists,
  TenantNotFound, Timestamp, TimeoutError, Verity, VerityError, type VerityEvent,
} from '../src/index.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'verity-sdk-'));
}

/** Opens `dir`, waiting for an abandoned open (which closes itself) to release it. */
async function openWhenUnlocked(dir: string): Promise<Verity> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await Verity.open(dir);
    } catch (error) {
      if ((error as { code?: string }).code !== 'DirectoryLocked' || attempt > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

t.test('the DESIGN §11 walk-through', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = await Verity.open(dir);
  await db.createTenant({ id: 1, name: 'clinic' });
  await t.rejects(db.createTenant({ id: 1, name: 'again' }), TenantExists);
  const tn = db.tenant(1);
  const ddl = await tn.execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, born TIMESTAMP, big BIGINT, doc JSON, photo BYTES, day DATE)');
  t.equal(ddl.rowsAffected, 0);
  const born = new Date('1990-05-17T10:20:30.123Z');
  const w = await tn.execute('INSERT INTO p (id, name, born, big, doc, photo, day) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name',
    [1, 'Ann', born, 2n ** 60n, { tags: ['a'] }, new Uint8Array([1, 2]), '2024-02-29']);
  t.same(w.rows, [{ id: 1, name: 'Ann' }], 'RETURNING rows, BIGINT as a number when safe');
  t.equal(w.rowsAffected, 1);
  t.ok(w.position > ddl.position);
  const r = await tn.query('SELECT * FROM p WHERE id = ?', [1], { consistency: 'causal' });
  t.same(r.rows, [{ id: 1, name: 'Ann', born, big: 2n ** 60n, doc: { tags: ['a'] }, photo: new Uint8Array([1, 2]), day: '2024-02-29' }]);
  t.equal(r.position, w.position);
  await tn.execute("UPDATE p SET name = 'Anne' WHERE id = 1");
  t.same((await tn.queryAt('SELECT name FROM p', w.position)).rows, [{ name: 'Ann' }], 'queryAt reads the past');
  t.same((await tn.query('SELECT name FROM p', [], { position: w.position })).rows, [{ name: 'Ann' }]);
  t.same((await tn.query(`SELECT name FROM p AS OF POSITION ${w.position}`)).rows, [{ name: 'Ann' }]);
  t.same((await tn.query('SELECT name FROM p', [], { consistency: 'linearizable' })).rows, [{ name: 'Anne' }]);
  const read = await tn.execute('SELECT count(*) AS n FROM p');
  t.same(read, { position: db.position, rowsAffected: 1, rows: [{ n: 1 }], columns: [{ name: 'n', type: 'BIGINT' }] }, 'a read through execute is not logged');
  t.same((await tn.query('SELECT id AS a, name AS b FROM p')).columns.map((c) => c.name), ['a', 'b']);

  const batch = await tn.batch([
    { sql: 'INSERT INTO p (id, name) VALUES (?, ?)', params: [2, 'Bob'] },
    { sql: 'INSERT INTO p (id, name) VALUES (?, ?)', params: [3, 'Cy'] },
    { sql: 'DELETE FROM p WHERE id = ? RETURNING name', params: [1] },
  ]);
  t.equal(batch.position, db.position);
  t.equal(batch.rowsAffected, 3);
  t.same(batch.results.map((x) => x.rows), [[], [], [{ name: 'Anne' }]]);

  const events: VerityEvent[] = [];
  for await (const e of tn.events({ stream: 'p', from: 1 }, { signal: AbortSignal.timeout(200) })) {
    events.push(e);
    if (e.position === batch.position && e.index === 2) break;
  }
  t.same(events.map((e) => [e.event_type, e.key]), [
    ['ddl', null], ['insert', [1]], ['update', [1]], ['insert', [2]], ['insert', [3]], ['delete', [1]],
  ]);
  t.ok(events.every((e) => e.actor === 'embedded' && e.timestamp instanceof Date && /^[0-9a-f]{64}$/.test(e.hash)));
  t.same(events[5]?.data, { id: 1, name: 'Anne', born: '1990-05-17 10:20:30.123', big: 1152921504606846976, doc: { tags: ['a'] }, photo: '\\x0102', day: '2024-02-29' });
  const exact = await tn.execute("INSERT INTO p (id, born) VALUES (50, '2024-01-01 12:30:45.123456') RETURNING born");
  const ts = exact.rows[0]?.['born'];
  t.ok(ts instanceof Timestamp && ts instanceof Date, 'TIMESTAMP comes back as a Timestamp, which is a Date');
  t.equal((ts as Timestamp).micros, 1704112245123456n, 'with every microsecond');
  t.equal((ts as Timestamp).toISOString(), '2024-01-01T12:30:45.123Z');
  t.equal(new Timestamp(-1n).getTime(), -1, 'before the epoch, the Date rounds down');
  const again = await tn.query('SELECT id FROM p WHERE born = $1', [ts]);
  t.same(again.rows, [{ id: 50 }], 'a Timestamp parameter keeps its microseconds');
  await db.close();
  await t.rejects(tn.query('SELECT 1'), ClosedError);
});

t.test('errors are classes with stable codes; a failed batch changes nothing', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = await Verity.open(dir);
  t.teardown(() => db.close());
  await db.createTenant({ id: 7, name: 'x' });
  const tn = db.tenant(7);
  await tn.execute('CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
  await tn.execute("INSERT INTO p VALUES (1, 'a')");
  const before = db.stateHash();
  const failed = await tn.batch([
    { sql: "INSERT INTO p VALUES (2, 'b')" },
    { sql: "INSERT INTO p VALUES (1, 'dup')" },
  ]).catch((e: unknown) => e);
  t.ok(failed instanceof ConstraintViolation);
  t.match(failed, { code: 'UniqueViolation', sqlState: '23505', statement: 1, position: db.position });
  t.not(db.stateHash(), before, 'the rejection itself is recorded');
  t.same((await tn.query('SELECT id FROM p ORDER BY id')).rows, [{ id: 1 }]);
  const rejected = await tn.query("SELECT stream, event_type, data FROM __events WHERE event_type = 'rejected'");
  t.match(rejected.rows, [{ stream: 'p', event_type: 'rejected', data: { code: 'UniqueViolation', statement: 1 } }]);
  await t.rejects(tn.execute('SELEC 1'), { code: 'SyntaxError', line: 1 });
  await t.rejects(tn.query('SELECT * FROM missing'), SqlError);
  await t.rejects(tn.query('SELECT * FROM missing'), { code: 'UndefinedTable', sqlState: '42P01' });
  await t.rejects(tn.query('DELETE FROM p'), { code: 'ReadOnly' });
  await t.rejects(db.tenant(8).execute('CREATE TABLE q (id INT PRIMARY KEY)'), TenantNotFound);
  await t.rejects(db.tenant(8).query('SELECT 1'), TenantNotFound);
  t.throws(() => db.tenant(0), InvalidArgument);
  await t.rejects(tn.execute('SELECT $1', [Symbol('x')]), InvalidArgument);
  await t.rejects(tn.query('SELECT 1', [], { position: db.position + 5 }), PositionUnavailable);
  const controller = new AbortController();
  controller.abort();
  await t.rejects(tn.execute("INSERT INTO p VALUES (9, 'z')", [], { signal: controller.signal }), AbortedError);
  await t.rejects(tn.query('SELECT 1', [], { timeoutMs: -1 }), InvalidArgument);
  t.same((await tn.query('SELECT count(*) AS n FROM p')).rows, [{ n: 1 }], 'aborted before submission: nothing written');
  const beforeLate = db.position;
  const late = new AbortController();
  const submitted = tn.execute("INSERT INTO p VALUES (10, 'late')", [], { signal: late.signal });
  late.abort();
  await t.rejects(submitted, { code: 'Indeterminate' }, 'aborted after submission: the outcome is unknown to the caller');
  t.same((await tn.query('SELECT name FROM p WHERE id = 10', [], { position: beforeLate + 1 })).rows, [{ name: 'late' }],
    '…and the write still happened (a read at its position waits for it)');
  const e = await tn.query('SELECT * FROM nope').catch((x: unknown) => x);
  t.ok(e instanceof VerityError && e.name === 'SqlError' && typeof e.code === 'string');
  t.equal(TimeoutError.name, 'TimeoutError');
});

t.test('restart keeps every acknowledged write, with and without checkpoints', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let db = await Verity.open(dir, { checkpointIntervalEntries: 10 });
  await db.createTenant({ id: 1, name: 'a' });
  const tn = db.tenant(1);
  await tn.execute('CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)');
  const writes = await Promise.all(Array.from({ length: 45 }, (_, i) => tn.execute('INSERT INTO r VALUES (?, ?)', [i, `v${i}`])));
  t.equal(new Set(writes.map((w) => w.position)).size, 45, 'each write has its own position');
  const hash = db.stateHash();
  const at = db.position;
  const middle = writes[20]?.position as number;
  const pastRows = (await tn.queryAt('SELECT count(*) AS n FROM r', middle)).rows;
  t.same(await db.verify(), { ok: true, checked: at }, 'the whole chain verifies');
  t.same(await db.verify({ tenant: 1 }), { ok: true, checked: at }, 'so does the tenant\'s own chain (its only tenant)');
  await db.close();
  await t.rejects(db.checkpoint(), ClosedError);

  db = await Verity.open(dir, { checkpointIntervalEntries: 10 });
  t.equal(db.position, at);
  t.equal(db.stateHash(), hash, 'same state after reopen');
  t.same((await db.tenant(1).query('SELECT count(*) AS n FROM r')).rows, [{ n: 45 }]);
  t.same((await db.tenant(1).queryAt('SELECT count(*) AS n FROM r', middle)).rows, pastRows, 'history survives');
  await db.tenant(1).execute("INSERT INTO r VALUES (100, 'after')");
  await db.close();

  // Without the checkpoint file: a full replay of the log gives the same state.
  db = await Verity.open(dir);
  const viaCheckpoint = db.stateHash();
  await db.close();
  await rm(join(dir, 'checkpoint'));
  db = await Verity.open(dir);
  t.equal(db.stateHash(), viaCheckpoint, 'full replay equals checkpoint + tail');
  await db.close();
});

t.test('a damaged or foreign checkpoint stops open (fail closed)', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let db = await Verity.open(dir);
  await db.createTenant({ id: 1, name: 'a' });
  await db.close();
  const good = await readFile(join(dir, 'checkpoint'));
  const bad = Buffer.from(good);
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  await writeFile(join(dir, 'checkpoint'), bad);
  await t.rejects(Verity.open(dir), { code: 'CorruptCheckpoint' });

  const other = await tempDir();
  t.teardown(() => rm(other, { recursive: true, force: true }));
  db = await Verity.open(other);
  await db.createTenant({ id: 2, name: 'b' });
  await db.close();
  await writeFile(join(dir, 'checkpoint'), await readFile(join(other, 'checkpoint')));
  await t.rejects(Verity.open(dir), { code: 'CheckpointMismatch' });
  await writeFile(join(dir, 'checkpoint'), good);
  await t.rejects(Verity.open(dir, { timeoutMs: 0 }), { code: 'Timeout' });
  await t.rejects(Verity.open(dir, { segmentBytes: 10 }), InvalidArgument);
  await t.rejects(Verity.open(dir, { checkpointIntervalEntries: 0 }), InvalidArgument);
  db = await openWhenUnlocked(dir);
  await t.rejects(Verity.open(dir), { code: 'DirectoryLocked' }, 'one opener at a time');
  await db.close();
});

t.test('events() follows the log and ends on close', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = await Verity.open(dir);
  await db.createTenant({ id: 1, name: 'a' });
  const tn = db.tenant(1);
  await tn.execute('CREATE TABLE p (id INTEGER PRIMARY KEY)');
  const seen: string[] = [];
  const follower = (async () => {
    for await (const e of tn.events({ stream: 'p', from: 3 })) seen.push(`${e.event_type}:${JSON.stringify(e.key)}`);
  })();
  for (let i = 0; i < 5; i++) await tn.execute('INSERT INTO p VALUES (?)', [i]);
  await tn.execute('DELETE FROM p WHERE id < 2');
  await new Promise((resolve) => setImmediate(resolve));
  await db.close();
  await follower;
  t.same(seen, ['insert:[0]', 'insert:[1]', 'insert:[2]', 'insert:[3]', 'insert:[4]', 'delete:[0]', 'delete:[1]']);
  const db2 = await Verity.open(dir);
  const bounded: number[] = [];
  for await (const e of db2.tenant(1).events({ from: 1 }, { timeoutMs: 50 })) bounded.push(e.position);
  t.equal(bounded.length, 9, 'timeoutMs bounds how long events() follows (after delivering the backlog)');
  t.teardown(() => db2.close());
  const iterator = db2.tenant(9).events()[Symbol.asyncIterator]();
  await t.rejects(iterator.next(), TenantNotFound);
});

t.test('close waits for writes in flight; later calls fail with ClosedError', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let db = await Verity.open(dir);
  await db.createTenant({ id: 1, name: 'a' });
  const tn = db.tenant(1);
  await tn.execute('CREATE TABLE p (id INTEGER PRIMARY KEY)');
  const inFlight = Array.from({ length: 50 }, (_, i) => tn.execute('INSERT INTO p VALUES (?)', [i]));
  const closing = db.close();
  await t.rejects(tn.execute('INSERT INTO p VALUES (999)'), ClosedError, 'a write after close began is refused');
  const results = await Promise.all(inFlight);
  await closing;
  t.equal(results.length, 50, 'every write issued before close was acknowledged');
  await t.rejects(db.createTenant({ id: 2, name: 'b' }), ClosedError);
  await db.close();
  db = await Verity.open(dir);
  t.teardown(() => db.close());
  t.same((await db.tenant(1).query('SELECT count(*) AS n, max(id) AS m FROM p')).rows, [{ n: 50, m: 49 }]);
});
