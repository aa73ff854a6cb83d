import t from 'tap';
import type { Row, TableReader } from '@veritydb/types';
import { EVENTS_TABLE, execute, prepare, type AsOf, type QueryResult } from '../src/index.js';
import { Db } from './harness.js';
import { MemoryStore } from './memory-store.js';

function orders(): Db {
  const db = new Db();
  db.ok('CREATE TABLE o (id BIGINT PRIMARY KEY, customer INTEGER NOT NULL, placed DATE NOT NULL, total INTEGER, status TEXT)');
  db.ok('CREATE INDEX o_customer_placed ON o (customer, placed)');
  db.ok('CREATE UNIQUE INDEX o_status ON o (status)');
  const values: string[] = [];
  for (let i = 1; i <= 100; i++) {
    values.push(`(${i}, ${i % 10}, '2024-01-${String((i % 28) + 1).padStart(2, '0')}', ${i * 3 % 17}, ${i % 3 === 0 ? `'s${i}'` : 'NULL'})`);
  }
  db.ok(`INSERT INTO o VALUES ${values.join(', ')}`);
  return db;
}

/** Operation and index of every step of EXPLAIN. */
function steps(r: QueryResult): string[] {
  return r.rows.map((row) => `${String(row[1])}${row[3] === null ? '' : `:${String(row[3])}`}`);
}

t.test('EXPLAIN shows each access path and the index chosen', async (t) => {
  const db = orders();
  const explain = (sql: string): string[] => steps(db.ok(`EXPLAIN ${sql}`));
  t.same(explain('SELECT * FROM o WHERE id = 5'), ['Point Lookup:PRIMARY KEY', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE status = \'s3\''), ['Point Lookup:o_status', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE id > 90'), ['Range Scan:PRIMARY KEY', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE id BETWEEN 10 AND 20'), ['Range Scan:PRIMARY KEY', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE id IN (3, 1, 2)'), ['Multi Lookup:PRIMARY KEY', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE customer = 3'), ['Prefix Scan:o_customer_placed', 'Filter'], 'composite index prefix');
  t.same(explain('SELECT * FROM o WHERE customer = 3 AND placed >= \'2024-01-10\' AND total > 2'),
    ['Range Scan:o_customer_placed', 'Filter'], 'equality prefix then a range on the next column');
  t.same(explain('SELECT * FROM o WHERE customer = 3 AND placed = \'2024-01-04\''), ['Index Lookup:o_customer_placed', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE id = 1 OR customer = 2 OR status = \'s9\''),
    ['Union', 'Point Lookup:PRIMARY KEY', 'Prefix Scan:o_customer_placed', 'Point Lookup:o_status', 'Filter']);
  t.same(explain('SELECT * FROM o WHERE id = 1 OR total = 2'), ['Full Scan', 'Filter'], 'one unindexable branch: scan');
  t.same(explain('SELECT * FROM o WHERE total = 4'), ['Full Scan', 'Filter']);
  t.same(explain('SELECT * FROM o ORDER BY id DESC LIMIT 3'), ['Index Order Scan:PRIMARY KEY', 'Index Order', 'Limit']);
  t.same(explain('SELECT * FROM o WHERE customer = 4 ORDER BY placed'), ['Prefix Scan:o_customer_placed', 'Filter', 'Index Order']);
  t.same(explain('SELECT * FROM o ORDER BY customer, placed'), ['Index Order Scan:o_customer_placed', 'Index Order']);
  t.same(explain('SELECT * FROM o ORDER BY status'), ['Full Scan', 'Sort'], 'nullable column: NULLS LAST differs from key order');
  t.same(explain('SELECT * FROM o ORDER BY status NULLS FIRST'), ['Index Order Scan:o_status', 'Index Order']);
  t.same(explain('SELECT * FROM o ORDER BY total'), ['Full Scan', 'Sort']);
  t.same(explain('SELECT customer, COUNT(*) FROM o GROUP BY customer'), ['Full Scan', 'Aggregate']);
  const limit = db.ok('EXPLAIN SELECT * FROM o LIMIT 5');
  t.match(String(limit.rows.at(-1)?.[4]), /stops the scan early/);
  const point = db.ok('EXPLAIN SELECT * FROM o WHERE id = 5');
  t.same(point.columns.map((c) => c.name), ['step', 'operation', 'table_name', 'index_name', 'detail']);
  t.match(String(point.rows[0]?.[4]), /id = 5/);
});

t.test('access paths return the same rows as a full scan, and read fewer', async (t) => {
  const db = orders();
  const queries = [
    'SELECT id FROM o WHERE id = 5', 'SELECT id FROM o WHERE id > 90 ORDER BY id', 'SELECT id FROM o WHERE id IN (3, 1, 2, 1000) ORDER BY id',
    'SELECT id FROM o WHERE customer = 3 AND placed >= \'2024-01-10\' ORDER BY id', 'SELECT id FROM o WHERE id = 1 OR customer = 2 OR status = \'s9\' ORDER BY id',
    'SELECT id FROM o ORDER BY id DESC LIMIT 3', 'SELECT id FROM o WHERE customer = 4 ORDER BY placed, id',
    'SELECT id FROM o ORDER BY status NULLS FIRST, id LIMIT 7', 'SELECT id FROM o WHERE id < 3 OR id > 98 ORDER BY id',
  ];
  for (const sql of queries) {
    db.store.rowsRead = 0;
    const planned = db.rows(sql);
    const plannedReads = db.store.rowsRead;
    db.forceFullScan = true;
    db.store.rowsRead = 0;
    t.same(planned, db.rows(sql), sql);
    t.ok(plannedReads < db.store.rowsRead, `${sql}: ${plannedReads} < ${db.store.rowsRead} rows read`);
    db.forceFullScan = false;
  }
  db.store.rowsRead = 0;
  t.same(db.rows('SELECT id FROM o LIMIT 2'), [[1n], [2n]]);
  t.equal(db.store.rowsRead, 2, 'LIMIT stops the scan after two rows');
});

t.test('AS OF records the snapshot per table reference; the caller supplies it', async (t) => {
  const db = orders();
  const past = new MemoryStore();
  past.createTable('o', { primaryKey: [0], columnCount: 5 });
  past.insert('o', [1n, 1, '2024-01-01', 7, null]);
  const asked: AsOf[] = [];
  db.extra = {
    historical: (asOf) => {
      asked.push(asOf);
      if (asOf.kind === 'position' && asOf.position > 1000n) return { code: 'InvalidAsOf', sqlState: '22023', message: 'position 1001 is in the future' };
      return { catalog: db.catalog, reader: past };
    },
  };
  const p = prepare('SELECT id, total FROM o AS OF POSITION 12 WHERE id >= ?');
  t.ok(p.ok);
  if (p.ok) t.same(p.value.asOf, { kind: 'position', position: 12n });
  t.same(db.rows('SELECT id, total FROM o AS OF POSITION 12 WHERE id >= ?', [1]), [[1n, 7]]);
  t.same(db.rows('SELECT COUNT(*) FROM o AS OF TIMESTAMP \'2024-01-01 00:00:00Z\''), [[1n]]);
  t.same(db.rows('SELECT x.id FROM o x AS OF POSITION 3'), [[1n]]);
  t.same(asked, [{ kind: 'position', position: 12n }, { kind: 'timestamp', timestampMicros: 1704067200000000n }, { kind: 'position', position: 3n }]);
  t.equal(db.err('SELECT * FROM o AS OF POSITION 1001').code, 'InvalidAsOf');
  past.dropTable('o');
  t.equal(db.err('SELECT * FROM o AS OF POSITION 2').code, 'UndefinedTable', 'a snapshot without the table is a user error');
  past.createTable('o', { primaryKey: [0], columnCount: 5 });
  t.same(steps(db.ok('EXPLAIN SELECT * FROM o AS OF POSITION 5 WHERE id = 1')), ['Snapshot', 'Point Lookup:PRIMARY KEY', 'Filter']);
  t.equal(db.err('SELECT * FROM o AS OF POSITION 0').code, 'InvalidAsOf');
  t.equal(db.err('SELECT * FROM o AS OF TIMESTAMP \'yesterday\'').code, 'InvalidDatetimeFormat');
  t.equal(db.err('SELECT * FROM o AS OF NOW').code, 'SyntaxError');
  t.equal(db.err('DELETE FROM o AS OF POSITION 3').code, 'InvalidAsOf');
  db.extra = {};
  t.equal(db.err('SELECT * FROM o AS OF POSITION 3').code, 'Unsupported', 'no historical reader in this context');
});

t.test('__events is a table the caller serves', async (t) => {
  const store = new MemoryStore();
  store.createTable('__events', { primaryKey: [0, 1], columnCount: EVENTS_TABLE.columns.length });
  store.createIndex('__events', '__events_stream', { columns: [2], unique: false });
  const event = (position: bigint, index: number, stream: string, type: string): Row =>
    [position, index, stream, type, [Number(position)], { id: Number(position) }, 'alice', position * 1000n, 'ab'.repeat(32)];
  store.insert('__events', event(1n, 0, 'p', 'ddl'));
  store.insert('__events', event(2n, 0, 'p', 'insert'));
  store.insert('__events', event(2n, 1, 'q', 'insert'));
  store.insert('__events', event(3n, 0, 'p', 'update'));
  const reader: TableReader = store;
  const run = (sql: string): QueryResult => {
    const p = prepare(sql);
    if (!p.ok) throw new Error(p.error.message);
    const r = execute(p.value, [], { catalog: { tables: [] }, reader });
    if (!r.ok) throw new Error(r.error.message);
    return r.result;
  };
  t.same(run('SELECT position, event_type, data, actor FROM __events WHERE stream = \'p\' AND position >= 2 ORDER BY position').rows,
    [[2n, 'insert', { id: 2 }, 'alice'], [3n, 'update', { id: 3 }, 'alice']]);
  t.same(run('SELECT stream, COUNT(*) FROM __events GROUP BY stream ORDER BY stream').rows, [['p', 3n], ['q', 1n]]);
  t.same(steps(run('EXPLAIN SELECT * FROM __events WHERE stream = \'q\'')), ['Index Lookup:__events_stream', 'Filter']);
  t.same(steps(run('EXPLAIN SELECT * FROM __events WHERE position > 2')), ['Range Scan:PRIMARY KEY', 'Filter']);
  t.same(run('DESCRIBE __events').rows.map((r) => r[0]), ['position', 'index', 'stream', 'event_type', 'key', 'data', 'actor', 'timestamp', 'hash']);
});
