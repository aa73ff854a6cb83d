import t from 'tap';
import { prepareUncached, StatementCache } from '../src/index.js';
import { Db } from './harness.js';

t.test('syntax errors carry line and column in the original text', async (t) => {
  const r = prepareUncached('SELECT id\nFROM p\nWHERE id = = 3');
  t.notOk(r.ok);
  if (!r.ok) {
    t.equal(r.error.code, 'SyntaxError');
    t.equal(r.error.sqlState, '42601');
    t.equal(r.error.line, 3);
    t.equal(r.error.column, 12);
  }
  // Rewrites before the error (? → $1, AS OF removed) must not shift the reported position.
  const shifted = prepareUncached('SELECT ?, ?, ? FROM p AS OF POSITION 7 WHERE id = = 3');
  t.notOk(shifted.ok);
  if (!shifted.ok) t.same([shifted.error.line, shifted.error.column], [1, 51]);
  const unterminated = prepareUncached("SELECT 'abc");
  if (!unterminated.ok) t.same([unterminated.error.code, unterminated.error.column], ['SyntaxError', 8]);
  const empty = prepareUncached('  ');
  t.notOk(empty.ok);
});

t.test('? placeholders become $n, skipping strings, quoted names and comments', async (t) => {
  const db = new Db();
  db.ok('CREATE TABLE "q" (id INTEGER PRIMARY KEY, "what?" TEXT)');
  db.ok("INSERT INTO q VALUES (?, '?'), (?, ?) -- a comment with ?\n", [1, 2, 'x?']);
  t.same(db.rows('SELECT id, "what?" FROM q /* ? */ WHERE "what?" = ? OR id = ? ORDER BY id', ['?', 2]), [[1, '?'], [2, 'x?']]);
  const p = prepareUncached("SELECT ? /* ? */, '?''?', ?");
  t.ok(p.ok);
  if (p.ok) t.equal(p.value.paramCount, 2);
  const d = prepareUncached('SELECT $3, $1');
  if (d.ok) t.equal(d.value.paramCount, 3);
  t.equal(db.err('SELECT $1, $2', [1]).code, 'InvalidParameter');
});

t.test('projection statements parse, with precise refusals and positions', async (t) => {
  const create = prepareUncached('CREATE PROJECTION totals AS SELECT a, COUNT(*) FROM t GROUP BY a');
  t.ok(create.ok);
  if (create.ok && create.value.statement.kind === 'createProjection') {
    t.equal(create.value.statement.name, 'totals');
    t.equal(create.value.statement.from.length, 1);
    t.equal(create.value.readOnly, false);
  } else t.fail('a createProjection statement');
  const joined = prepareUncached('create projection x as select a.k, sum(b.v) from a left join b on b.k = a.k inner join c on c.k = b.k group by a.k');
  t.ok(joined.ok);
  if (joined.ok && joined.value.statement.kind === 'createProjection') t.same(joined.value.statement.from.map((f) => f.join), [null, 'left', 'inner']);
  const drop = prepareUncached('DROP PROJECTION IF EXISTS totals');
  t.ok(drop.ok && drop.value.statement.kind === 'dropProjection' && drop.value.statement.ifExists);
  const show = prepareUncached('SHOW PROJECTIONS');
  t.ok(show.ok && show.value.readOnly);
  const refusals: [string, RegExp][] = [
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t GROUP BY a HAVING COUNT(*) > 1', /HAVING/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t RIGHT JOIN u ON u.a = t.a GROUP BY a', /RIGHT JOIN/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t JOIN u USING (a) GROUP BY a', /USING/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t, u GROUP BY a', /commas/],
    ['CREATE PROJECTION x AS SELECT DISTINCT a FROM t', /DISTINCT/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t WHERE a = $1 GROUP BY a', /parameters/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t AS OF POSITION 3 GROUP BY a', /AS OF/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t GROUP BY a ORDER BY a', /ORDER BY/],
    ['CREATE PROJECTION x AS SELECT a, COUNT(*) FROM t WHERE a IN (SELECT 1) GROUP BY a', /subqueries/],
    ['CREATE MATERIALIZED VIEW x AS SELECT 1', /use CREATE PROJECTION/],
  ];
  for (const [sql, message] of refusals) {
    const r = prepareUncached(sql);
    t.notOk(r.ok, sql);
    if (!r.ok) t.match(r.error.message, message, sql);
  }
  const bad = prepareUncached('CREATE PROJECTION x AS\nSELECT a FROMM t');
  t.notOk(bad.ok);
  if (!bad.ok) t.equal(bad.error.line, 2, 'syntax errors point into the original text');
  const multi = prepareUncached('SELECT 1; SELECT 2');
  t.notOk(multi.ok);
  if (!multi.ok) t.match(multi.error.message, /batch/);
  t.ok(prepareUncached('SELECT 1;').ok, 'a trailing semicolon is fine');
});

t.test('prepared statements are immutable values with their kind and history', async (t) => {
  const p = prepareUncached('SELECT * FROM t AS OF TIMESTAMP \'2024-01-01T00:00:00Z\' WHERE a = $1');
  t.ok(p.ok);
  if (p.ok) {
    t.equal(p.value.statement.kind, 'select');
    t.equal(p.value.readOnly, true);
    t.same(p.value.asOf, { kind: 'timestamp', timestampMicros: 1704067200000000n });
  }
  const w = prepareUncached('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING');
  t.ok(w.ok);
  if (w.ok) {
    t.equal(w.value.readOnly, false);
    t.equal(w.value.statement.kind, 'insert');
  }
});

t.test('statement cache: bounded, least recently used evicted first, parse failures cached too', async (t) => {
  const cache = new StatementCache(3);
  const a = cache.prepare('SELECT 1');
  cache.prepare('SELECT 2');
  cache.prepare('SELECT 3');
  t.equal(cache.size, 3);
  const again = cache.prepare('SELECT 1');
  t.ok(a.ok && again.ok && a.value === again.value, 'a hit returns the same prepared value');
  cache.prepare('SELECT 4');
  t.equal(cache.size, 3);
  const two = cache.prepare('SELECT 2');
  const one = cache.prepare('SELECT 1');
  t.ok(one.ok && a.ok && one.value === a.value, 'recently used entry survived');
  t.ok(two.ok, 'SELECT 2 was evicted and parsed again');
  const bad = cache.prepare('SELEC 1');
  t.notOk(bad.ok);
  t.equal(cache.size, 3, 'a failure takes a slot within the bound');
  t.equal(cache.prepare('SELEC 1'), bad, 'a repeated bad statement is answered from the cache, not parsed again');
  t.throws(() => new StatementCache(0));
});
