import t from 'tap';
import { Db } from './harness.js';

function accounts(): Db {
  const db = new Db();
  db.ok('CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE, balance BIGINT NOT NULL DEFAULT 0, note TEXT DEFAULT \'new\')');
  return db;
}

t.test('INSERT: multi-row, defaults, column lists, RETURNING', async (t) => {
  const db = accounts();
  const r = db.ok('INSERT INTO a (id, email) VALUES (1, \'x@a\'), (2, \'y@a\') RETURNING id, balance, note AS n');
  t.equal(r.rowsAffected, 2);
  t.same(r.columns, [{ name: 'id', type: 'INTEGER' }, { name: 'balance', type: 'BIGINT' }, { name: 'n', type: 'TEXT' }]);
  t.same(r.rows, [[1, 0n, 'new'], [2, 0n, 'new']]);
  t.same(db.ok('INSERT INTO a VALUES (3, NULL, 5, DEFAULT) RETURNING *').rows, [[3, null, 5n, 'new']]);
  t.same(db.ok('INSERT INTO a (balance, id) VALUES (7, 4)').rows, [], 'no RETURNING, no rows');
  t.same(db.rows('SELECT id, balance FROM a WHERE id = 4'), [[4, 7n]]);
  t.equal(db.err('INSERT INTO a (id, nope) VALUES (1, 2)').code, 'UndefinedColumn');
  t.equal(db.err('INSERT INTO a (id, id) VALUES (1, 2)').code, 'DuplicateColumn');
  t.equal(db.err('INSERT INTO nope VALUES (1)').code, 'UndefinedTable');
  t.equal(db.err('INSERT INTO nope VALUES (1)').sqlState, '42P01');
  t.equal(db.err('INSERT INTO a (id, email) VALUES (1)').code, 'SyntaxError');
});

t.test('constraints: primary key, unique, not null, types', async (t) => {
  const db = accounts();
  db.ok('INSERT INTO a (id, email) VALUES (1, \'x@a\')');
  const pk = db.err('INSERT INTO a (id, email) VALUES (1, \'z@a\')');
  t.equal(pk.code, 'UniqueViolation');
  t.equal(pk.sqlState, '23505');
  t.match(pk.message, /a_pkey/);
  t.match(db.err('INSERT INTO a (id, email) VALUES (2, \'x@a\')').message, /a_email_key/);
  t.equal(db.err('INSERT INTO a (id, email) VALUES (2, \'q\'), (3, \'q\')').code, 'UniqueViolation', 'conflict within one statement');
  db.ok('INSERT INTO a (id, email) VALUES (10, NULL), (11, NULL)');
  t.pass('several NULLs do not violate UNIQUE');
  const nn = db.err('INSERT INTO a (id, balance) VALUES (5, NULL)');
  t.equal(nn.code, 'NotNullViolation');
  t.equal(nn.sqlState, '23502');
  t.equal(db.err('INSERT INTO a (id) VALUES (NULL)').code, 'NotNullViolation', 'primary key columns are NOT NULL');
  t.equal(db.err('INSERT INTO a (id, balance) VALUES (6, \'lots\')').code, 'InvalidTextRepresentation');
  t.equal(db.err('INSERT INTO a (id, balance) VALUES (6, true)').code, 'TypeMismatch');
  t.equal(db.err('INSERT INTO a (id) VALUES (3000000000)').code, 'NumericOverflow');
  t.same(db.rows('INSERT INTO a (id, note) VALUES (7.6, 42) RETURNING id, note'), [[8, '42']], 'assignment casts: round, to text');
  t.equal(db.err('UPDATE a SET email = \'x@a\' WHERE id = 8').code, 'UniqueViolation');
  t.equal(db.err('UPDATE a SET balance = NULL').code, 'NotNullViolation');
});

t.test('ON CONFLICT DO NOTHING / DO UPDATE with EXCLUDED', async (t) => {
  const db = accounts();
  db.ok('INSERT INTO a (id, email, balance) VALUES (1, \'x@a\', 10)');
  let r = db.ok('INSERT INTO a (id, email) VALUES (1, \'other\'), (2, \'y@a\') ON CONFLICT DO NOTHING RETURNING id');
  t.equal(r.rowsAffected, 1);
  t.same(r.rows, [[2]]);
  r = db.ok('INSERT INTO a (id, email) VALUES (3, \'x@a\') ON CONFLICT (email) DO NOTHING');
  t.equal(r.rowsAffected, 0, 'conflict on the unique index target');
  t.equal(db.err('INSERT INTO a (id, email) VALUES (1, \'fresh\') ON CONFLICT (email) DO NOTHING').code, 'UniqueViolation',
    'a conflict on another constraint than the target is still an error');
  r = db.ok('INSERT INTO a (id, email, balance) VALUES (1, \'x@a\', 5), (4, \'w@a\', 1) ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance, note = \'merged\' RETURNING id, balance, note');
  t.same(r.rows, [[1, 15n, 'merged'], [4, 1n, 'new']]);
  t.equal(r.rowsAffected, 2);
  r = db.ok('INSERT INTO a (id, balance) VALUES (1, 100) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance WHERE a.balance > 1000');
  t.equal(r.rowsAffected, 0, 'DO UPDATE … WHERE false skips the row');
  t.same(db.rows('SELECT balance FROM a WHERE id = 1'), [[15n]]);
  t.equal(db.err('INSERT INTO a (id) VALUES (1), (1) ON CONFLICT (id) DO UPDATE SET note = \'x\'').code, 'CardinalityViolation');
  t.equal(db.err('INSERT INTO a (id) VALUES (1) ON CONFLICT (note) DO NOTHING').code, 'InvalidColumnReference');
  t.equal(db.err('INSERT INTO a (id) VALUES (1) ON CONFLICT DO UPDATE SET note = \'x\'').code, 'SyntaxError');
});

t.test('UPDATE and DELETE with WHERE, RETURNING and primary-key changes', async (t) => {
  const db = accounts();
  db.ok('INSERT INTO a (id, balance) VALUES (1, 10), (2, 20), (3, 30), (4, 40)');
  let r = db.ok('UPDATE a SET balance = balance * 2, note = \'x\' WHERE id >= 3 RETURNING id, balance');
  t.equal(r.rowsAffected, 2);
  t.same(r.rows, [[3, 60n], [4, 80n]]);
  r = db.ok('UPDATE a SET id = id + 100 WHERE id = 1 RETURNING id');
  t.same(r.rows, [[101]]);
  t.same(db.rows('SELECT id FROM a ORDER BY id'), [[2], [3], [4], [101]]);
  t.equal(db.err('UPDATE a SET id = 3 WHERE id = 2').code, 'UniqueViolation');
  t.equal(db.err('UPDATE a SET nope = 1').code, 'UndefinedColumn');
  t.same(db.rows('UPDATE a SET note = DEFAULT, balance = DEFAULT WHERE id = 101 RETURNING note, balance'), [['new', 0n]]);
  t.equal(db.err('UPDATE a SET balance = 1, balance = 2').code, 'DuplicateColumn');
  r = db.ok('DELETE FROM a WHERE balance > 50 OR id = 2 RETURNING id');
  t.same(r.rows, [[2], [3], [4]]);
  t.equal(r.rowsAffected, 3);
  t.equal(db.ok('DELETE FROM a').rowsAffected, 1);
  t.equal(db.ok('UPDATE a SET balance = 0').rowsAffected, 0);
  t.equal(db.err('UPDATE a SET balance = 1 WHERE 1 / 0 = 1').code, 'DivisionByZero');
});

t.test('writes need a writer; __events is read-only', async (t) => {
  const db = accounts();
  db.extra = { writer: undefined as never };
  t.equal(db.err('INSERT INTO a (id) VALUES (1)').code, 'Unsupported');
  db.extra = {};
  const e = db.err('DELETE FROM __events');
  t.equal(e.code, 'Unsupported');
  t.match(e.message, /read-only/);
});

t.test('INSERT … VALUES without a column list accepts ON CONFLICT … DO UPDATE (as PostgreSQL)', async (t) => {
  const db = accounts();
  db.ok("INSERT INTO a VALUES (1, 'x@a', 5, 'n')");
  const r = db.ok("INSERT INTO a VALUES (1, 'y@a', 7, 'm'), (2, 'z@a', 3, DEFAULT) ON CONFLICT (id) DO UPDATE SET balance = a.balance + excluded.balance RETURNING *");
  t.same(r.rows, [[1, 'x@a', 12n, 'n'], [2, 'z@a', 3n, 'new']]);
  t.same(db.rows('INSERT INTO a VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET note = excluded.note WHERE a.id = 2 RETURNING id, note', [2, 'q', 0, 'w']), [[2, 'w']]);
  // Errors still point into the original text.
  const bad = db.err('INSERT INTO a VALUES (3, NULL, 1, NULL) ON CONFLICT (id) DO UPDATE SET = 1');
  t.same([bad.code, bad.line, bad.column], ['SyntaxError', 1, 72]);
  const ragged = db.err('INSERT INTO a VALUES (3, NULL, 1, NULL), (4) ON CONFLICT (id) DO UPDATE SET note = 1');
  t.same([ragged.code, ragged.message, ragged.column], ['SyntaxError', 'VALUES lists must all be the same length', 43]);
  t.equal(db.err("INSERT INTO a VALUES (3, 'x@a', 1, NULL) ON CONFLICT (id) DO UPDATE SET note = 'n'").code, 'UniqueViolation');
});

t.test('DELETE without WHERE accepts RETURNING (as PostgreSQL)', async (t) => {
  const db = accounts();
  db.ok("INSERT INTO a (id, email) VALUES (1, 'x@a'), (2, 'y@a')");
  const r = db.ok('DELETE FROM a RETURNING id, email AS e');
  t.equal(r.rowsAffected, 2);
  t.same(r.rows, [[1, 'x@a'], [2, 'y@a']]);
  t.same(db.rows('SELECT COUNT(*) FROM a'), [[0n]]);
  const bad = db.err('DELETE FROM a RETURNING id id id');
  t.same([bad.code, bad.line, bad.column], ['SyntaxError', 1, 31]);
});

t.test('negative integer literals are exact: BIGINT beyond 2^53 and the BIGINT minimum', async (t) => {
  const db = new Db();
  db.ok('CREATE TABLE n (k INTEGER PRIMARY KEY, b BIGINT)');
  db.ok('INSERT INTO n VALUES (1, -9223372036854775807), (2, -9223372036854775808), (3, -9007199254740993)');
  t.same(db.rows('SELECT k, b FROM n ORDER BY k'), [[1, -9223372036854775807n], [2, -9223372036854775808n], [3, -9007199254740993n]]);
  t.same(db.rows('SELECT k FROM n WHERE b = -9007199254740993'), [[3]]);
  t.same(db.ok('SELECT -9223372036854775808, -9007199254740993').columns.map((c) => c.type), ['BIGINT', 'BIGINT']);
  t.same(db.rows('SELECT -9223372036854775808, -9007199254740993, 1 -9007199254740993, -(9007199254740993)'),
    [[-9223372036854775808n, -9007199254740993n, -9007199254740992n, -9007199254740993n]]);
  t.same(db.rows('SELECT -2147483648, -2147483649, -5'), [[-2147483648, -2147483649n, -5]]);
  // A double negation of a literal beyond 2^53 stays exact (found by the differential test).
  t.same(db.rows('SELECT -(-9007199254740993), (- (- 9223372036854775807)), -(-5)'),
    [[9007199254740993n, 9223372036854775807n, 5]]);
  t.equal(db.err('SELECT -9223372036854775808 - 1').code, 'NumericOverflow');
});
