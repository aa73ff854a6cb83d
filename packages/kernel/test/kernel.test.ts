import t from 'tap';
import { position, tenantId } from '@veritydb/types';
import { Kernel } from '../src/kernel.js';
import { encodeEnvelope } from '../src/codec/command.js';
import { Driver, EPOCH_MICROS, fakeHash, hex, replay } from '../testing/driver.js';

const T1 = tenantId(1);

function rows(kernel: Kernel, sql: string, params: readonly unknown[] = [], at?: number): unknown[][] {
  const r = kernel.read(T1, sql, params, at === undefined ? undefined : position(at));
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.rows.map((row) => [...row]);
}

t.test('tenant, DDL, DML and reads', async (t) => {
  const d = new Driver();
  t.match(d.createTenant(1, 'clinic').reply, { kind: 'tenant_created', tenant: 1 });
  t.match(d.createTenant(1, 'again').reply, { kind: 'rejected', error: { code: 'TenantExists' } });
  t.match(d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL)').reply, { kind: 'sql' });
  const insert = d.sql(1, 'INSERT INTO p (id, name) VALUES ($1, $2), (?, ?) RETURNING id'.replace('?, ?', '$3, $4'), [1, 'Ann', 2, 'Bob']);
  t.match(insert.reply, { kind: 'sql', statements: [{ rowsAffected: 2, rows: [[1n], [2n]] }] });
  t.same(rows(d.kernel, 'SELECT id, name FROM p ORDER BY id'), [[1n, 'Ann'], [2n, 'Bob']]);
  t.match(d.sql(2, 'SELECT 1').reply, { kind: 'rejected', error: { code: 'TenantNotFound' } });
  t.match(d.kernel.read(T1, 'DELETE FROM p', []), { ok: false, error: { code: 'ReadOnly' } });
  t.match(d.kernel.read(tenantId(9), 'SELECT 1', []), { ok: false, error: { code: 'TenantNotFound' } });
  t.match(d.kernel.read(T1, 'SELECT 1', [], position(99)), { ok: false, error: { code: 'PositionUnavailable' } });
  t.equal(d.kernel.head, 5);
});

t.test('a batch with one failing statement changes nothing and is recorded as rejected', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL)');
  d.sql(1, 'INSERT INTO p VALUES (1, $1)', ['Ann']);
  const eventsBefore = rows(d.kernel, 'SELECT count(*) FROM __events');
  const r = d.batch(1, [
    { sql: 'INSERT INTO p VALUES (2, $1)', params: ['Bob'] },
    { sql: 'CREATE TABLE q (id INTEGER PRIMARY KEY)' },
    { sql: 'UPDATE p SET name = $1 WHERE id = 1', params: ['Changed'] },
    { sql: 'INSERT INTO p VALUES (1, $1)', params: ['Duplicate'] },
  ]);
  t.match(r.reply, { kind: 'rejected', error: { code: 'UniqueViolation', sqlState: '23505', statement: 3 } });
  t.same(rows(d.kernel, 'SELECT id, name FROM p'), [[1n, 'Ann']], 'no row of the batch was kept');
  t.match(d.kernel.read(T1, 'SELECT * FROM q', []), { ok: false, error: { code: 'UndefinedTable' } }, 'nor its DDL');
  t.same(rows(d.kernel, 'SHOW TABLES'), [['p']]);
  const rejected = rows(d.kernel, "SELECT position, index, stream, event_type, key, data, actor FROM __events WHERE event_type = 'rejected'");
  t.same(rejected, [[4n, 0, 'p', 'rejected', null,
    { code: 'UniqueViolation', message: rejected[0]?.[5] && (rejected[0][5] as { message: string }).message, statement: 3, sqlState: '23505' }, 'tester']]);
  t.same(rows(d.kernel, 'SELECT count(*) FROM __events'), [[(eventsBefore[0]?.[0] as bigint) + 1n]], 'only the rejection was added');
  const parse = d.sql(1, 'SELEC oops');
  t.match(parse.reply, { kind: 'rejected', error: { code: 'SyntaxError', line: 1, column: Number } });
  t.same(rows(d.kernel, 'SELECT stream, event_type FROM __events WHERE position = 5'), [['', 'rejected']]);
});

t.test('__events content', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, photo BYTES)');
  d.submit(1, { kind: 'sql', statements: [{ sql: 'INSERT INTO p VALUES (1, $1, $2)', params: ['Ann', new Uint8Array([1, 255])] }] }, 'ann@clinic');
  d.sql(1, 'UPDATE p SET name = $1 WHERE id = 1', ['Anne']);
  d.sql(1, 'DELETE FROM p WHERE id = 1');
  d.sql(1, 'DROP TABLE p');
  const events = rows(d.kernel, 'SELECT * FROM __events ORDER BY position, index');
  t.same(events.map((e) => e.slice(0, 7)), [
    [1n, 0, '', 'ddl', null, { tenant: 1, name: 't1', action: 'create' }, 'tester'],
    [2n, 0, 'p', 'ddl', null, { sql: 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, photo BYTES)', statement: 0 }, 'tester'],
    [3n, 0, 'p', 'insert', [1], { id: 1, name: 'Ann', photo: '\\x01ff' }, 'ann@clinic'],
    [4n, 0, 'p', 'update', [1], { id: 1, name: 'Anne', photo: '\\x01ff' }, 'tester'],
    [5n, 0, 'p', 'delete', [1], { id: 1, name: 'Anne', photo: '\\x01ff' }, 'tester'],
    [6n, 0, 'p', 'ddl', null, { sql: 'DROP TABLE p', statement: 0 }, 'tester'],
  ]);
  events.forEach((e, i) => {
    t.equal(e[7], BigInt(EPOCH_MICROS + (i + 1) * 1000), 'timestamp is the entry stamp');
    t.equal(e[8], hex(fakeHash(i + 1)), 'hash is the entry hash');
  });
  t.same(rows(d.kernel, "SELECT position, event_type FROM __events WHERE stream = 'p' AND event_type <> 'ddl' ORDER BY position DESC"),
    [[5n, 'delete'], [4n, 'update'], [3n, 'insert']]);
  t.match(rows(d.kernel, "EXPLAIN SELECT * FROM __events WHERE stream = 'p'").flat().join(' '), /__events_stream/);
  t.same(rows(d.kernel, 'SELECT count(*) FROM __events AS OF POSITION 3'), [[3n]], 'AS OF on __events');
  t.same(rows(d.kernel, `SELECT count(*) FROM __events AS OF TIMESTAMP '2023-11-14 22:13:20.004'`), [[4n]], 'AS OF TIMESTAMP on __events');
  t.match(d.sql(1, 'INSERT INTO __events (position) VALUES (1)').reply, { kind: 'rejected' }, '__events is read-only');
  t.match(d.sql(1, 'CREATE TABLE __events (id INT PRIMARY KEY)').reply, { kind: 'rejected', error: { code: 'InvalidTableDefinition' } });
  const multi = d.batch(1, [{ sql: 'CREATE TABLE a (id INT PRIMARY KEY)' }, { sql: 'INSERT INTO a VALUES (1), (2)' }]);
  t.same(multi.events.map((e) => [e.stream, e.eventType, e.key]), [['a', 'ddl', null], ['a', 'insert', [1]], ['a', 'insert', [2]]]);
  t.same(rows(d.kernel, `SELECT index, event_type FROM __events WHERE position = ${d.kernel.head}`), [[0, 'ddl'], [1, 'insert'], [2, 'insert']]);
  t.same([...d.kernel.events(T1, position(3), 'p')].map((r) => r[3]), ['insert', 'update', 'delete', 'ddl']);
});

t.test('AS OF reads the schema of the time and refuses positions it cannot serve', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT)');
  d.sql(1, "INSERT INTO p VALUES (1, 'Ann')");
  d.sql(1, 'ALTER TABLE p ADD COLUMN age INTEGER');
  d.sql(1, "UPDATE p SET age = 40, name = 'Anne'");
  d.sql(1, 'DROP TABLE p');
  t.same(rows(d.kernel, 'SELECT * FROM p AS OF POSITION 3'), [[1n, 'Ann']]);
  t.same(rows(d.kernel, 'SELECT * FROM p AS OF POSITION 4'), [[1n, 'Ann', null]]);
  t.same(rows(d.kernel, 'SELECT * FROM p AS OF POSITION 5'), [[1n, 'Anne', 40]]);
  t.same(rows(d.kernel, 'SELECT * FROM p', [], 5), [[1n, 'Anne', 40]], 'read at a position');
  t.match(d.kernel.read(T1, 'SELECT * FROM p', []), { ok: false, error: { code: 'UndefinedTable' } });
  t.match(d.kernel.read(T1, 'SELECT * FROM p AS OF POSITION 2', []), { ok: true, rows: [] });
  t.match(d.kernel.read(T1, 'SELECT * FROM p AS OF POSITION 1', []), { ok: false, error: { code: 'UndefinedTable' } });
  t.match(d.kernel.read(T1, 'SELECT * FROM p AS OF POSITION 99', []), { ok: false, error: { code: 'InvalidAsOf' } });
  t.match(d.kernel.read(T1, "SELECT * FROM p AS OF TIMESTAMP '2000-01-01'", []), { ok: false, error: { code: 'InvalidAsOf' } });
  t.same(rows(d.kernel, `SELECT name FROM p AS OF TIMESTAMP '2023-11-14 22:13:20.0045'`), [['Ann']], 'timestamp between entries 4 and 5');
  t.equal(d.kernel.positionAt(EPOCH_MICROS + 4500), 4);
  const inBatch = d.sql(1, 'CREATE TABLE r (id BIGINT PRIMARY KEY)');
  t.match(inBatch.reply, { kind: 'sql' });
});

t.test('tenants are isolated; drop forgets a tenant for good', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.createTenant(2);
  d.sql(1, 'CREATE TABLE p (id INT PRIMARY KEY)');
  d.sql(2, 'CREATE TABLE q (id INT PRIMARY KEY)');
  t.same(rows(d.kernel, 'SHOW TABLES'), [['p']]);
  t.match(d.kernel.read(tenantId(2), 'SELECT * FROM p', []), { ok: false, error: { code: 'UndefinedTable' } });
  t.same(rows(d.kernel, 'SELECT DISTINCT stream FROM __events ORDER BY stream'), [[''], ['p']]);
  t.match(d.submit(1, { kind: 'tenant_drop', id: tenantId(2) }).reply, { kind: 'rejected', error: { code: 'InvalidTenant' } });
  const beforeDrop = d.kernel.head;
  t.match(d.submit(2, { kind: 'tenant_drop', id: tenantId(2) }).reply, { kind: 'tenant_dropped' });
  t.match(d.kernel.read(tenantId(2), 'SELECT * FROM q', [], position(beforeDrop)), { ok: false, error: { code: 'TenantNotFound' } },
    'a dropped tenant\'s past is erased too');
  t.match(d.kernel.read(T1, 'SELECT * FROM q AS OF POSITION 4', []), { ok: false, error: { code: 'UndefinedTable' } }, 'and never visible to another tenant');
  t.notOk(d.kernel.hasTenant(tenantId(2)));
  t.match(d.sql(2, 'SELECT 1').reply, { kind: 'rejected', error: { code: 'TenantNotFound' } });
  t.match(d.createTenant(2).reply, { kind: 'rejected', error: { code: 'TenantExists' } }, 'ids are not reused');
  t.match(d.submit(0, { kind: 'tenant_create', id: tenantId(0), name: 'sys' }).reply, { kind: 'rejected', error: { code: 'InvalidTenant' } });
  t.match(d.submit(0, { kind: 'noop' }).reply, { kind: 'noop' });
  t.match(d.submit(0, { kind: 'client_register', client: 7n as never }).reply, { kind: 'registered', client: 7n, evicted: null });
  const bad = d.kernel.apply({ position: position(d.kernel.head + 1), timestampMicros: EPOCH_MICROS * 2, tenant: T1, hash: fakeHash(0) }, new Uint8Array([7]));
  t.match(bad.reply, { kind: 'rejected', error: { code: 'InvalidEntry' } });
  const mismatch = d.kernel.apply({ position: position(d.kernel.head + 1), timestampMicros: EPOCH_MICROS * 2 + 1, tenant: T1, hash: fakeHash(0) },
    encodeEnvelope({ tenant: tenantId(5), actor: 'x', command: { kind: 'tenant_create', id: tenantId(5), name: 'sneaky' } }));
  t.match(mismatch.reply, { kind: 'rejected', error: { code: 'InvalidEntry', message: /names tenant 5/ } }, 'body and header must agree on the tenant');
  t.notOk(d.kernel.hasTenant(tenantId(5)));
  t.same(rows(d.kernel, `SELECT stream, event_type, actor FROM __events WHERE position >= ${bad.position}`), [['', 'rejected', ''], ['', 'rejected', '']],
    'an undecodable entry is still part of its tenant\'s audit trail');
});

t.test('checkpoints restore to the same state and refuse damage', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT)');
  d.sql(1, "INSERT INTO p VALUES (1, 'x')");
  d.submit(0, { kind: 'client_register', client: 5n as never });
  const image = d.kernel.checkpoint();
  const restored = Kernel.restore(image);
  if (!restored.ok) throw new Error(restored.reason);
  t.equal(hex(restored.kernel.stateHash()), hex(d.kernel.stateHash()));
  t.equal(restored.kernel.head, d.kernel.head);
  t.same(restored.kernel.read(T1, 'SELECT * FROM p AS OF POSITION 2', []), d.kernel.read(T1, 'SELECT * FROM p AS OF POSITION 2', []));
  const damaged = image.slice();
  damaged[20] = (damaged[20] as number) ^ 1;
  t.match(Kernel.restore(damaged), { ok: false });
  t.throws(() => replay(d.log, d.log.length, restored.kernel).apply(
    { position: position(1), timestampMicros: 1, tenant: T1, hash: fakeHash(1) }, new Uint8Array()), /apply expects position/);
});
