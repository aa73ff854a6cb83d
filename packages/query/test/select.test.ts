import t from 'tap';
import { Db } from './harness.js';

function people(): Db {
  const db = new Db();
  db.ok('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL, age INTEGER, score DOUBLE, city TEXT)');
  db.ok(`INSERT INTO p VALUES
    (1, 'ann', 30, 1.5, 'oslo'), (2, 'bob', NULL, 2.5, 'rome'), (3, 'cid', 25, NULL, 'oslo'),
    (4, 'dan', 30, 4.0, NULL), (5, 'eve', 41, 0.5, 'rome')`);
  return db;
}

t.test('projection, aliases, expressions and column metadata', async (t) => {
  const db = people();
  const r = db.ok('SELECT id, name AS who, age + 1, age * 2 AS twice, -age, name || \'!\' FROM p WHERE id = 1');
  t.same(r.columns, [
    { name: 'id', type: 'BIGINT' }, { name: 'who', type: 'TEXT' }, { name: '?column?', type: 'INTEGER' },
    { name: 'twice', type: 'INTEGER' }, { name: '?column?', type: 'INTEGER' }, { name: '?column?', type: 'TEXT' },
  ]);
  t.same(r.rows, [[1n, 'ann', 31, 60, -30, 'ann!']]);
  t.same(db.rows('SELECT * FROM p WHERE id = 2'), [[2n, 'bob', null, 2.5, 'rome']]);
  t.same(db.rows('SELECT 1 + 2, 7 / 2, 7 % 3, 7.0 / 2, \'a\' || \'b\''), [[3, 3, 1, 3.5, 'ab']]);
  t.same(db.rows('SELECT x.name FROM p AS x WHERE x.id = 3'), [['cid']]);
});

t.test('three-valued logic and NULL comparisons', async (t) => {
  const db = people();
  t.same(db.rows('SELECT id FROM p WHERE age > 26 ORDER BY id'), [[1n], [4n], [5n]]);
  t.same(db.rows('SELECT id FROM p WHERE NOT (age > 26) ORDER BY id'), [[3n]]);
  t.same(db.rows('SELECT id FROM p WHERE age IS NULL'), [[2n]]);
  t.same(db.rows('SELECT id FROM p WHERE age IS NOT NULL AND city IS NULL'), [[4n]]);
  t.same(db.rows('SELECT id FROM p WHERE age = NULL'), []);
  t.same(db.rows('SELECT id FROM p WHERE age > 26 OR city = \'rome\' ORDER BY id'), [[1n], [2n], [4n], [5n]]);
  t.same(db.rows('SELECT NULL AND false, NULL OR true, NULL AND true, NOT NULL::boolean'), [[false, true, null, null]]);
  t.same(db.rows('SELECT id FROM p WHERE age IN (25, 41) ORDER BY id'), [[3n], [5n]]);
  t.same(db.rows('SELECT id FROM p WHERE age NOT IN (25, NULL)'), [], 'NOT IN with a NULL is never true');
  t.same(db.rows('SELECT id FROM p WHERE age BETWEEN 25 AND 30 ORDER BY id'), [[1n], [3n], [4n]]);
  t.same(db.rows('SELECT id FROM p WHERE age NOT BETWEEN 25 AND 30 ORDER BY id'), [[5n]]);
  t.same(db.rows('SELECT id FROM p WHERE name LIKE \'_o%\' OR name LIKE \'%v_\' ORDER BY id'), [[2n], [5n]]);
  t.same(db.rows('SELECT id FROM p WHERE name NOT LIKE \'%n\' ORDER BY id'), [[2n], [3n], [5n]]);
  t.same(db.rows('SELECT \'a%b\' LIKE \'a\\%b\', \'axb\' LIKE \'a\\%b\', \'ABC\' ILIKE \'a%\''), [[true, false, true]]);
  t.same(db.rows('SELECT (age > 26) IS TRUE, (age > 26) IS NOT FALSE FROM p WHERE id = 2'), [[false, true]]);
});

t.test('ORDER BY with PostgreSQL NULL placement, LIMIT and OFFSET, DISTINCT', async (t) => {
  const db = people();
  t.same(db.rows('SELECT id FROM p ORDER BY age, id'), [[3n], [1n], [4n], [5n], [2n]], 'ASC: NULLS LAST');
  t.same(db.rows('SELECT id FROM p ORDER BY age DESC, id'), [[2n], [5n], [1n], [4n], [3n]], 'DESC: NULLS FIRST');
  t.same(db.rows('SELECT id FROM p ORDER BY age ASC NULLS FIRST, id DESC'), [[2n], [3n], [4n], [1n], [5n]]);
  t.same(db.rows('SELECT id FROM p ORDER BY city DESC NULLS LAST, 1 DESC'), [[5n], [2n], [3n], [1n], [4n]]);
  t.same(db.rows('SELECT name AS n FROM p ORDER BY n DESC LIMIT 2'), [['eve'], ['dan']]);
  t.same(db.rows('SELECT id FROM p ORDER BY id LIMIT 2 OFFSET 3'), [[4n], [5n]]);
  t.same(db.rows('SELECT id FROM p ORDER BY id OFFSET 4'), [[5n]]);
  t.same(db.rows('SELECT id FROM p ORDER BY id LIMIT $1', [1]), [[1n]]);
  t.same(db.rows('SELECT id FROM p ORDER BY score * 2 DESC LIMIT 1'), [[3n]], 'expression keys, NULLs first on DESC');
  t.same(db.rows('SELECT DISTINCT city FROM p ORDER BY city'), [['oslo'], ['rome'], [null]]);
  t.same(db.rows('SELECT DISTINCT age FROM p WHERE age = 30'), [[30]]);
  t.equal(db.err('SELECT DISTINCT city FROM p ORDER BY age').code, 'InvalidColumnReference');
  t.equal(db.err('SELECT id FROM p LIMIT -1').code, 'InvalidRowCount');
  t.equal(db.err('SELECT id FROM p OFFSET $1', [-1]).sqlState, '2201X');
  t.equal(db.err('SELECT id FROM p ORDER BY 9').code, 'InvalidColumnReference');
});

t.test('aggregates and GROUP BY', async (t) => {
  const db = people();
  const all = db.ok('SELECT COUNT(*), COUNT(age), SUM(age), MIN(age), MAX(name), AVG(age), SUM(score) FROM p');
  t.same(all.columns.map((c) => [c.name, c.type]), [
    ['count', 'BIGINT'], ['count', 'BIGINT'], ['sum', 'BIGINT'], ['min', 'INTEGER'], ['max', 'TEXT'], ['avg', 'DOUBLE'], ['sum', 'DOUBLE'],
  ]);
  t.same(all.rows, [[5n, 4n, 126n, 25, 'eve', 31.5, 8.5]]);
  t.same(db.rows('SELECT city, COUNT(*) AS n, SUM(age) FROM p GROUP BY city ORDER BY city'),
    [['oslo', 2n, 55n], ['rome', 2n, 41n], [null, 1n, 30n]]);
  t.same(db.rows('SELECT city, COUNT(*) FROM p GROUP BY city ORDER BY COUNT(*) DESC, city LIMIT 1'), [['oslo', 2n]]);
  t.same(db.rows('SELECT COUNT(*), SUM(age), MAX(age) FROM p WHERE id > 100'), [[0n, null, null]], 'empty input: one row');
  t.same(db.rows('SELECT city FROM p WHERE id > 100 GROUP BY city'), [], 'empty input with GROUP BY: no rows');
  t.same(db.rows('SELECT COUNT(DISTINCT age) FROM p'), [[3n]]);
  t.same(db.rows('SELECT p.city, COUNT(*) FROM p GROUP BY city ORDER BY p.city LIMIT 1'), [['oslo', 2n]], 'qualified and bare names group alike');
  t.same(db.rows('SELECT age + 1 AS a1, COUNT(*) FROM p GROUP BY age + 1 ORDER BY a1'), [[26, 1n], [31, 2n], [42, 1n], [null, 1n]]);
  t.equal(db.err('SELECT name, COUNT(*) FROM p GROUP BY city').code, 'GroupingError');
  t.equal(db.err('SELECT id FROM p WHERE COUNT(*) > 1').code, 'GroupingError');
  t.equal(db.err('SELECT SUM(name) FROM p').code, 'UndefinedFunction');
});

t.test('type rules: integer division, overflow, division by zero, literal coercion, mismatches', async (t) => {
  const db = people();
  t.same(db.rows('SELECT -7 / 2, -7 % 2'), [[-3, -1]], 'integer division truncates toward zero');
  t.equal(db.err('SELECT 2147483647 + 1').code, 'NumericOverflow');
  t.equal(db.err('SELECT 2147483647 + 1').sqlState, '22003');
  t.same(db.rows('SELECT 2147483647 + 1::bigint'), [[2147483648n]]);
  t.equal(db.err('SELECT 9223372036854775807 + 1').code, 'NumericOverflow');
  t.equal(db.err('SELECT 1 / 0').code, 'DivisionByZero');
  t.equal(db.err('SELECT 1.0 / 0').sqlState, '22012');
  t.equal(db.err('SELECT id FROM p WHERE age / (age - 30) = 1').code, 'DivisionByZero');
  t.same(db.rows('SELECT id FROM p WHERE age = \'30\' ORDER BY id'), [[1n], [4n]], 'untyped literal takes the column type');
  t.equal(db.err('SELECT id FROM p WHERE age = \'x\'').code, 'InvalidTextRepresentation');
  t.equal(db.err('SELECT id FROM p WHERE name = 1').code, 'UndefinedFunction');
  t.equal(db.err('SELECT id FROM p WHERE name = 1').sqlState, '42883');
  t.equal(db.err('SELECT id FROM p WHERE age').code, 'TypeMismatch');
  t.same(db.rows('SELECT CAST(\'12\' AS INTEGER) + 1, \'2024-02-29\'::date, 3.7::integer, 2.5::integer, true::integer, \'t\'::boolean'),
    [[13, '2024-02-29', 4, 2, 1, true]]);
  t.equal(db.err('SELECT \'2023-02-29\'::date').code, 'InvalidDatetimeFormat');
  t.same(db.rows('SELECT TIMESTAMP \'1970-01-01 00:00:01.5\', \'2000-01-01\'::timestamp::date'), [[1_500_000n, '2000-01-01']]);
  t.same(db.rows('SELECT 1::text, 1.5::text, true::text'), [['1', '1.5', 'true']]);
  t.same(db.rows('SELECT age::bigint FROM p WHERE id = 1'), [[30n]]);
  t.equal(db.err('SELECT true::date').code, 'TypeMismatch');
  t.same(db.rows("SELECT DATE '2024-02-28' + 2, '2024-03-01'::date - 1, DATE '2024-03-01' - DATE '2023-03-01', 1 + DATE '1999-12-31'"),
    [['2024-03-01', '2024-02-29', 366, '2000-01-01']]);
  t.equal(db.err("SELECT DATE '2024-01-01' + 1.5").code, 'UndefinedFunction');
});

t.test('parameters of every SDK value type', async (t) => {
  const db = new Db();
  db.ok('CREATE TABLE v (id BIGINT PRIMARY KEY, i INTEGER, d DOUBLE, s TEXT, b BOOLEAN, dt DATE, ts TIMESTAMP, bt BYTES, j JSON)');
  const when = new Date('2024-05-06T07:08:09.123Z');
  db.ok('INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [1, 2, 2.5, 'x', true, when, when, new Uint8Array([1, 2]), { a: [1, 'b'] }]);
  db.ok('INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [2n, '3', '4.5', 5, 'false', '2024-01-02', '2024-01-02 03:04:05', '\\x0a', 'null']);
  t.same(db.rows('SELECT * FROM v ORDER BY id'), [
    [1n, 2, 2.5, 'x', true, '2024-05-06', 1714979289123000n, new Uint8Array([1, 2]), { a: [1, 'b'] }],
    [2n, 3, 4.5, '5', false, '2024-01-02', 1704164645000000n, new Uint8Array([10]), null],
  ]);
  t.same(db.rows('SELECT id FROM v WHERE ts > ? ORDER BY id', [new Date('2024-01-01T00:00:00Z')]), [[1n], [2n]]);
  t.same(db.rows('SELECT id FROM v WHERE i = ?', [2n]), [[1n]]);
  t.same(db.rows('SELECT id FROM v WHERE id = ?', [2]), [[2n]]);
  t.same(db.rows('SELECT $1::text, $2', ['a', null]), [['a', null]]);
  t.same(db.rows('SELECT id FROM v WHERE id = 9007199254740993'), []);
  t.equal(db.err('SELECT $2', [1]).code, 'InvalidParameter');
  t.equal(db.err('SELECT $1', [1, 2]).code, 'InvalidParameter', 'as many parameters as placeholders, like PostgreSQL');
  t.equal(db.err('SELECT ?', [() => 1]).code, 'InvalidParameter');
  t.equal(db.err('SELECT id FROM v WHERE i = ?', [1.5]).code, 'InvalidTextRepresentation');
  t.equal(db.err('INSERT INTO v (id, i) VALUES (3, ?)', [2 ** 40]).code, 'NumericOverflow');
  t.equal(db.err('SELECT ? + $1', [1]).code, 'InvalidParameter', 'mixing ? and $n');
});

t.test('unsupported constructs are named', async (t) => {
  const db = people();
  const cases: [string, RegExp][] = [
    ['SELECT * FROM p JOIN p AS q ON p.id = q.id', /JOIN/],
    ['SELECT * FROM p, p AS q', /joins/],
    ['SELECT id FROM p WHERE id IN (SELECT id FROM p)', /subquer/],
    ['SELECT * FROM (SELECT 1) x', /subquer/],
    ['SELECT id FROM p UNION SELECT id FROM p', /UNION/],
    ['WITH x AS (SELECT 1) SELECT * FROM x', /WITH/],
    ['SELECT COUNT(*) OVER () FROM p', /window/],
    ['SELECT city FROM p GROUP BY city HAVING COUNT(*) > 1', /HAVING/],
    ['SELECT lower(name) FROM p', /lower/],
    ['SELECT CASE WHEN true THEN 1 END', /CASE/],
  ];
  for (const [sql, pattern] of cases) {
    const e = db.err(sql);
    t.ok(e.code === 'Unsupported' || e.code === 'UndefinedFunction', `${sql}: ${e.code}`);
    t.match(e.message, pattern, sql);
  }
});
