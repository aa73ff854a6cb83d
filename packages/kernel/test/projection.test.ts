import t from 'tap';
import { position, tenantId } from '@veritydb/types';
import { Kernel } from '../src/kernel.js';
import { Driver, EPOCH_MICROS, hex, replay } from '../testing/driver.js';

/** Scenario tests of custom projections (DESIGN §8): the patients/visits summary of docs/SQL.md. */

const SUMMARY = `CREATE PROJECTION patient_summary AS
  SELECT p.id, p.name, COUNT(v.id) AS visits, SUM(v.cost) AS total, MIN(v.day) AS first_visit, MAX(v.cost) AS max_cost, AVG(v.cost) AS mean_cost
  FROM patients p LEFT JOIN visits v ON v.patient_id = p.id
  GROUP BY p.id, p.name`;

function clinic(): Driver {
  const d = new Driver();
  d.createTenant(1);
  d.batch(1, [
    { sql: 'CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT)' },
    { sql: 'CREATE TABLE visits (id INTEGER PRIMARY KEY, patient_id INTEGER, day DATE, cost BIGINT)' },
  ]);
  d.sql(1, "INSERT INTO patients VALUES (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome'), (3, 'Cy', 'Oslo')");
  d.sql(1, "INSERT INTO visits VALUES (10, 1, '2024-01-03', 50), (11, 1, '2024-02-01', 80), (12, 2, '2024-01-09', 20)");
  return d;
}

function rows(d: Driver | Kernel, sql: string, at?: number): unknown[] {
  const kernel = d instanceof Driver ? d.kernel : d;
  const r = kernel.read(tenantId(1), sql, [], at === undefined ? undefined : position(at));
  if (!r.ok) throw new Error(`${sql}: ${r.error.message}`);
  return JSON.parse(JSON.stringify(r.rows, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))) as unknown[];
}

function error(d: Driver, sql: string): { code: string; message: string } {
  const r = d.sql(1, sql);
  if (r.reply.kind !== 'rejected') throw new Error(`expected ${sql} to be refused`);
  return r.reply.error;
}

t.test('a LEFT JOIN + GROUP BY projection is back-filled, maintained and read like a table', async (t) => {
  const d = clinic();
  t.equal(d.sql(1, SUMMARY).reply.kind, 'sql');
  const created = d.kernel.head;
  t.same(rows(d, 'SELECT * FROM patient_summary ORDER BY id'), [
    [1, 'Ann', 2, 130, '2024-01-03', 80, 65],
    [2, 'Bob', 1, 20, '2024-01-09', 20, 20],
    [3, 'Cy', 0, null, null, null, null],
  ], 'back-filled at creation; a patient without visits has a NULL-extended row');
  d.sql(1, 'DELETE FROM visits WHERE id = 11');
  t.same(rows(d, 'SELECT visits, max_cost FROM patient_summary WHERE id = 1'), [[1, 50]], 'deleting the current MAX finds the next one');
  d.sql(1, 'UPDATE visits SET patient_id = 3 WHERE id = 12');
  t.same(rows(d, 'SELECT id, visits, total FROM patient_summary ORDER BY id'), [[1, 1, 50], [2, 0, null], [3, 1, 20]], 'moving a visit (join-key update) moves it between groups');
  d.sql(1, "UPDATE patients SET name = 'Bo' WHERE id = 2");
  t.same(rows(d, 'SELECT id, name FROM patient_summary ORDER BY id'), [[1, 'Ann'], [2, 'Bo'], [3, 'Cy']], 'a group-key update replaces the row');
  d.sql(1, 'DELETE FROM patients WHERE id = 3');
  t.same(rows(d, 'SELECT id FROM patient_summary ORDER BY id'), [[1], [2]], 'deleting the left row removes its group');
  t.same(rows(d, 'SELECT id, total FROM patient_summary WHERE total > 10 ORDER BY total DESC LIMIT 1'), [[1, 50]]);
  t.same(rows(d, `SELECT id, visits FROM patient_summary AS OF POSITION ${created} ORDER BY id`), [[1, 2], [2, 1], [3, 0]], 'AS OF POSITION');
  t.same(rows(d, `SELECT id, visits FROM patient_summary AS OF TIMESTAMP '${new Date((EPOCH_MICROS + created * 1000) / 1000).toISOString()}' ORDER BY id`), [[1, 2], [2, 1], [3, 0]], 'AS OF TIMESTAMP');
  t.equal(d.sql(1, 'CREATE INDEX summary_total ON patient_summary (total)').reply.kind, 'sql');
  const plan = rows(d, 'EXPLAIN SELECT id FROM patient_summary WHERE total = 50') as unknown[][];
  t.match(JSON.stringify(plan), /summary_total/, 'an index on a projection column is used');
  t.same(rows(d, 'SELECT id FROM patient_summary WHERE total = 50'), [[1]]);
  d.sql(1, 'INSERT INTO visits VALUES (13, 2, \'2024-03-01\', 50)');
  t.same(rows(d, 'SELECT id FROM patient_summary WHERE total = 50 ORDER BY id'), [[1], [2]], 'the index follows maintenance');
});

t.test('introspection: SHOW PROJECTIONS, DESCRIBE', async (t) => {
  const d = clinic();
  d.sql(1, SUMMARY);
  t.same(rows(d, 'SHOW PROJECTIONS'), [['patient_summary', 'patients, visits', SUMMARY]]);
  t.same(rows(d, 'DESCRIBE patient_summary'), [
    ['id', 'integer', true, true, null], ['name', 'text', true, true, null], ['visits', 'bigint', false, false, null],
    ['total', 'bigint', true, false, null], ['first_visit', 'date', true, false, null], ['max_cost', 'bigint', true, false, null],
    ['mean_cost', 'double precision', true, false, null],
  ]);
});

t.test('__events shows each projection row change with its cause', async (t) => {
  const d = clinic();
  d.sql(1, SUMMARY);
  const at = d.sql(1, 'DELETE FROM visits WHERE id = 12').position;
  const events = rows(d, `SELECT index, stream, event_type, key, data FROM __events WHERE position = ${at} ORDER BY index`);
  t.same(events, [
    [0, 'visits', 'delete', [12], { id: 12, patient_id: 2, day: '2024-01-09', cost: 20 }],
    [1, 'patient_summary', 'update', [2, 'Bob'], {
      row: { id: 2, name: 'Bob', visits: 0, total: null, first_visit: null, max_cost: null, mean_cost: null },
      cause: { stream: 'visits', key: [12], position: at },
    }],
  ]);
  const creation = rows(d, "SELECT event_type, data FROM __events WHERE stream = 'patient_summary' AND event_type = 'ddl'") as unknown[][];
  t.equal(creation.length, 1, 'the creation is a ddl event of the projection stream');
  const backfill = rows(d, "SELECT key FROM __events WHERE stream = 'patient_summary' AND event_type = 'insert'");
  t.same(backfill, [[[1, 'Ann']], [[2, 'Bob']], [[3, 'Cy']]], 'the back-fill is recorded as inserts');
  t.same(rows(d, "SELECT COUNT(*) FROM __events WHERE stream LIKE '\\_\\_proj%'"), [[0]], 'internal state writes are not events');
});

t.test('what cannot be maintained incrementally is refused at CREATE, naming the construct', async (t) => {
  const d = clinic();
  const cases: [string, RegExp][] = [
    ['SELECT p.id, COUNT(*) FROM patients p JOIN visits v ON v.patient_id > p.id GROUP BY p.id', /non-equi join condition of "visits"/],
    ['SELECT p.id, COUNT(*) FROM patients p JOIN visits v ON v.patient_id = p.id AND v.cost > 1 GROUP BY p.id', /several conditions in the ON clause/],
    ['SELECT p.id, COUNT(DISTINCT v.cost) FROM patients p JOIN visits v ON v.patient_id = p.id GROUP BY p.id', /DISTINCT aggregates/],
    ['SELECT p.id, COUNT(*) FROM patients p GROUP BY p.id HAVING COUNT(*) > 1', /HAVING/],
    ['SELECT p.id, COUNT(*) FROM patients p WHERE p.id IN (SELECT 1) GROUP BY p.id', /subqueries/],
    ['SELECT p.id, string_agg(p.name, \',\') FROM patients p GROUP BY p.id', /string_agg/],
    ['SELECT p.id, p.name FROM patients p JOIN visits v ON v.patient_id = p.id', /leaves out primary-key column "v.id"/],
    ['SELECT p.id, v.id AS visit, v.cost + 1 AS c FROM patients p JOIN visits v ON v.patient_id = p.id', /expression "c" in the select list: select plain columns/],
    ['SELECT p.id, COUNT(*) FROM patients p', /column "patients.id" must appear in the GROUP BY clause/],
    ['SELECT * FROM patients', /SELECT \*/],
    ['SELECT p.id, COUNT(*) + 1 AS n FROM patients p GROUP BY p.id', /expression "n"/],
    ['SELECT p.city, COUNT(*) FROM patients p GROUP BY p.city, p.name', /GROUP BY column "name" missing/],
    ['SELECT p.id, COUNT(*) FROM patients p JOIN patients q ON q.id = p.id GROUP BY p.id', /self-join/],
    ['SELECT p.id, COUNT(*) FROM patients p RIGHT JOIN visits v ON v.patient_id = p.id GROUP BY p.id', /RIGHT JOIN/],
    ['SELECT p.id, COUNT(*) FROM patients p JOIN visits v ON p.id = p.id GROUP BY p.id', /ON clause of "visits"/],
    ['SELECT p.id, COUNT(*) FROM nowhere p GROUP BY p.id', /"nowhere" does not exist/],
  ];
  for (const [select, message] of cases) t.match(error(d, `CREATE PROJECTION x AS ${select}`).message, message, select);
  t.same(rows(d, 'SHOW PROJECTIONS'), [], 'nothing was created');
});

t.test('writes to a projection and DDL under it are refused; DROP PROJECTION frees the tables', async (t) => {
  const d = clinic();
  d.sql(1, SUMMARY);
  t.match(error(d, "INSERT INTO patient_summary (id, name) VALUES (9, 'x')").message, /is a projection/);
  t.match(error(d, 'UPDATE patient_summary SET visits = 0').message, /is a projection/);
  t.match(error(d, 'DELETE FROM patient_summary').message, /is a projection/);
  t.match(error(d, 'DROP TABLE patient_summary').message, /use DROP PROJECTION/);
  t.match(error(d, 'DROP TABLE visits'), { code: 'DependentObjects', message: /projection "patient_summary" depends on it/ });
  t.match(error(d, 'ALTER TABLE visits DROP COLUMN cost'), { code: 'DependentObjects' });
  t.match(error(d, `${SUMMARY.replace('patient_summary', 'patients')}`), { code: 'DuplicateTable' });
  t.equal(d.sql(1, 'ALTER TABLE patients ADD COLUMN phone TEXT').reply.kind, 'sql', 'adding a column to a base table is fine');
  d.sql(1, "INSERT INTO visits VALUES (20, 3, '2024-05-05', 5)");
  t.same(rows(d, 'SELECT visits FROM patient_summary WHERE id = 3'), [[1]], 'maintenance continues after ADD COLUMN');
  t.equal(d.sql(1, 'DROP PROJECTION patient_summary').reply.kind, 'sql');
  t.match(error(d, 'SELECT * FROM patient_summary').message, /does not exist/);
  t.equal(d.sql(1, 'DROP PROJECTION IF EXISTS patient_summary').reply.kind, 'sql');
  t.equal(d.sql(1, 'DROP TABLE visits').reply.kind, 'sql', 'the base table can go once the projection has');
});

t.test('a failed entry leaves projections untouched; a three-table projection survives restart', async (t) => {
  const d = clinic();
  d.batch(1, [
    { sql: 'CREATE TABLE cities (name TEXT PRIMARY KEY, country TEXT)' },
    { sql: "INSERT INTO cities VALUES ('Oslo', 'NO'), ('Rome', 'IT')" },
    { sql: SUMMARY },
    {
      sql: `CREATE PROJECTION by_country AS SELECT c.country, COUNT(*) AS n, SUM(v.cost) AS total, MIN(v.cost) AS lo
        FROM visits v JOIN patients p ON p.id = v.patient_id JOIN cities c ON c.name = p.city GROUP BY c.country`,
    },
  ]);
  t.same(rows(d, 'SELECT * FROM by_country ORDER BY country'), [['IT', 1, 20, 20], ['NO', 2, 130, 50]]);
  const before = rows(d, 'SELECT * FROM patient_summary ORDER BY id');
  const r = d.batch(1, [{ sql: "INSERT INTO visits VALUES (30, 1, '2024-06-01', 1)" }, { sql: "INSERT INTO patients VALUES (1, 'dup', NULL)" }]);
  t.equal(r.reply.kind, 'rejected');
  t.same(rows(d, 'SELECT * FROM patient_summary ORDER BY id'), before, 'the aborted entry changed no projection');
  d.sql(1, "UPDATE patients SET city = 'Rome' WHERE id = 1");
  t.same(rows(d, 'SELECT * FROM by_country ORDER BY country'), [['IT', 3, 150, 20]], 'a middle-table update moves rows between groups');
  d.sql(1, "UPDATE cities SET country = 'XX' WHERE name = 'Rome'");
  t.same(rows(d, 'SELECT country, n FROM by_country ORDER BY country'), [['XX', 3]]);
  const restored = Kernel.restore(replay(d.log, 4).checkpoint());
  t.ok(restored.ok);
  if (restored.ok) {
    const again = replay(d.log, d.log.length, restored.kernel);
    t.equal(hex(again.stateHash()), hex(d.kernel.stateHash()), 'checkpoint + replay gives the same state hash');
    t.same(rows(again, 'SELECT * FROM by_country'), rows(d, 'SELECT * FROM by_country'));
  }
  const image = Kernel.restore(d.kernel.checkpoint());
  t.ok(image.ok && hex(image.kernel.stateHash()) === hex(d.kernel.stateHash()), 'a checkpoint carries projections');
});

t.test('a projection without GROUP BY: a maintained LEFT JOIN view keyed by the base primary keys', async (t) => {
  const d = clinic();
  t.equal(d.sql(1, `CREATE PROJECTION visit_list AS SELECT p.id, p.name, v.id AS visit, v.cost
    FROM patients p LEFT JOIN visits v ON v.patient_id = p.id WHERE p.city = 'Oslo'`).reply.kind, 'sql');
  const all = (): unknown[] => rows(d, 'SELECT * FROM visit_list ORDER BY id, visit');
  t.same(all(), [[1, 'Ann', 10, 50], [1, 'Ann', 11, 80], [3, 'Cy', null, null]], 'back-filled; Cy NULL-extended');
  t.same(rows(d, 'DESCRIBE visit_list').map((r) => (r as unknown[]).slice(0, 4)),
    [['id', 'integer', true, true], ['name', 'text', true, false], ['visit', 'integer', true, true], ['cost', 'bigint', true, false]],
    'the base primary keys key it (NULL on the missing side of the LEFT JOIN)');
  d.sql(1, "INSERT INTO visits VALUES (13, 3, '2024-03-01', 7)");
  t.same(all(), [[1, 'Ann', 10, 50], [1, 'Ann', 11, 80], [3, 'Cy', 13, 7]], 'the first match replaces the NULL-extended row');
  d.sql(1, 'UPDATE visits SET cost = 9 WHERE id = 13');
  d.sql(1, "UPDATE patients SET city = 'Rome' WHERE id = 1");
  t.same(all(), [[3, 'Cy', 13, 9]], 'updates flow through; rows leave when WHERE stops holding');
  d.sql(1, 'DELETE FROM visits WHERE id = 13');
  t.same(all(), [[3, 'Cy', null, null]], 'the last match gone, the NULL-extended row is back');
  const events = [...d.kernel.events(tenantId(1), position(1), 'visit_list')].map((e) => [e[3], e[4], (e[5] as { cause: unknown }).cause]);
  t.same(events.slice(-2), [['delete', [3, 13], { stream: 'visits', key: [13], position: d.log.length }], ['insert', [3, null], { stream: 'visits', key: [13], position: d.log.length }]],
    'each row change is an event of the projection keyed by the base keys, with its cause');
  t.same(d.kernel.recomputeProjection(tenantId(1), 'visit_list'), [[3, 'Cy', null, null]]);
  t.equal(d.sql(1, 'DROP PROJECTION visit_list').reply.kind, 'sql');
  t.equal(d.sql(1, 'DROP TABLE visits').reply.kind, 'sql', 'the projection took its join index on visits with it');
});

t.test('aggregates without GROUP BY: exactly one row, also over an empty input', async (t) => {
  const d = clinic();
  t.equal(d.sql(1, `CREATE PROJECTION totals AS SELECT COUNT(*) AS n, SUM(v.cost) AS total, MAX(v.cost) AS hi
    FROM visits v JOIN patients p ON p.id = v.patient_id WHERE p.city = 'Rome'`).reply.kind, 'sql');
  t.same(rows(d, 'SELECT * FROM totals'), [[1, 20, 20]]);
  d.sql(1, 'DELETE FROM visits WHERE id = 12');
  t.same(rows(d, 'SELECT * FROM totals'), [[0, null, null]], 'an empty input still has its row (PostgreSQL semantics)');
  d.sql(1, "INSERT INTO visits VALUES (14, 2, '2024-04-01', 3), (15, 2, '2024-04-02', 4)");
  t.same(rows(d, 'SELECT n, total, hi FROM totals WHERE n > 1'), [[2, 7, 4]]);
  t.same(rows(d, 'DESCRIBE totals').map((r) => (r as unknown[])[3]), [false, false, false], 'no primary-key column');
  t.equal(d.sql(1, 'CREATE PROJECTION empty_totals AS SELECT COUNT(*) AS n, MIN(cost) AS lo FROM visits WHERE cost > 1000').reply.kind, 'sql');
  t.same(rows(d, 'SELECT * FROM empty_totals'), [[0, null]], 'created over an empty input');
  const image = Kernel.restore(d.kernel.checkpoint());
  t.ok(image.ok && hex(image.kernel.stateHash()) === hex(d.kernel.stateHash()), 'survives a checkpoint');
  if (image.ok) t.same(rows(image.kernel, 'SELECT * FROM totals'), [[2, 7, 4]]);
});
