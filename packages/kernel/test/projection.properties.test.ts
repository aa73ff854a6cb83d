import t from 'tap';
import fc from 'fast-check';
import { PGlite } from '@electric-sql/pglite';
import { position, seedFrom, tenantId, type Value } from '@veritydb/types';
import { Kernel } from '../src/kernel.js';
import type { Param } from '../src/codec/value.js';
import { Driver, hex, replay } from '../testing/driver.js';

/**
 * Custom projections (DESIGN §8) against two oracles, after every entry of random histories:
 * (a) the same SELECT recomputed from scratch on our engine (`Kernel.recomputeProjection`) and
 * (b) the same SELECT run by PostgreSQL (PGlite) over the same base rows. Then `AS OF POSITION
 * p` of the projection equals the recomputation at p for every p, and a restart from a
 * checkpoint plus replay gives the same state hash and rows.
 *
 * Projections are grouped (GROUP BY with aggregates), global (aggregates without GROUP BY: one
 * row, also over an empty input) or plain (a join/filter view keyed by the base primary keys).
 *
 * Schemas: two or three tables `t0…t2 (id INTEGER PRIMARY KEY, k INTEGER, g INTEGER,
 * v INTEGER, s TEXT)` with small value ranges, so joins match, groups collide, and the current
 * MIN/MAX is often deleted; NULLs everywhere but the key.
 */

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

const COLUMNS = ['id', 'k', 'g', 'v', 's'] as const;
const ID_MAX = 6;

interface Projection {
  readonly name: string;
  readonly shape: 'grouped' | 'global' | 'plain';
  /** The SELECT, as both engines run it. */
  readonly select: string;
}

interface Case {
  readonly tables: number;
  readonly projections: readonly Projection[];
  /** Entries before the projections are created (back-fill), then after. */
  readonly before: readonly Batch[];
  readonly after: readonly Batch[];
}

type Batch = readonly { readonly sql: string; readonly params: readonly Param[] }[];

const small = fc.option(fc.integer({ min: 0, max: 3 }), { freq: 5 });
const value = fc.option(fc.integer({ min: -4, max: 4 }), { freq: 5 });
const text = fc.option(fc.constantFrom('a', 'ab', 'b', 'ba', 'c'), { freq: 5 });

function projectionArb(tables: number, name: string): fc.Arbitrary<Projection> {
  const table = fc.integer({ min: 0, max: tables - 1 });
  const joins = fc.tuple(
    ...Array.from({ length: tables - 1 }, (_x, i) => fc.tuple(
      fc.constantFrom('JOIN', 'LEFT JOIN'),
      fc.integer({ min: 0, max: i }),
      fc.constantFrom('id', 'k', 'g'),
      fc.constantFrom('k', 'g'),
    )),
  );
  // Grouping by a table's primary key too: with t1 joined on t0.id, a MIN/MAX of t1 is then
  // read from t1's join index (the group is one t0 row), not from extremes rows.
  const groupColumn = fc.tuple(table, fc.constantFrom('g', 'k', 's', 'id'));
  const aggregate = fc.oneof(
    fc.constant('COUNT(*)'),
    table.map((i) => `COUNT(t${i}.v)`),
    table.map((i) => `SUM(t${i}.v)`),
    table.map((i) => `AVG(t${i}.v)`),
    fc.tuple(fc.constantFrom('MIN', 'MAX'), table, fc.constantFrom('v', 's')).map(([f, i, c]) => `${f}(t${i}.${c})`),
  );
  const where = fc.option(fc.oneof(
    table.map((i) => `t${i}.v > -2`),
    table.map((i) => `t${i}.s IS NOT NULL`),
    fc.tuple(table, table).map(([i, j]) => `(t${i}.g <> 1 OR t${j}.v IS NULL)`),
  ), { freq: 2 });
  // Grouped (GROUP BY + aggregates), global (aggregates without GROUP BY: one row) or plain
  // (columns, every table's primary key among them: a maintained join/filter view).
  const shape = fc.constantFrom('grouped', 'grouped', 'global', 'plain', 'plain', ...(tables === 1 ? [] : ['perParent' as const]));
  // The bench's shape: per row of t0 (grouped by its key), aggregates of its t1 rows. Its
  // MIN/MAX are read from t1's join index; a WHERE sends them back to extremes rows.
  const perParent = fc.tuple(
    fc.constantFrom('JOIN', 'LEFT JOIN'), fc.constantFrom('k', 'g'), fc.constantFrom([], ['k'], ['s', 'g']),
    fc.array(fc.tuple(fc.constantFrom('MIN', 'MAX'), fc.constantFrom('v', 's', 'k')).map(([f, c]) => `${f}(t1.${c})`), { minLength: 1, maxLength: 2 }),
    fc.option(fc.constant('t1.v > -2'), { freq: 4 }),
  ).map(([join, column, more, extremes, condition]) => {
    const keys = ['t0.id', ...more.map((c) => `t0.${c}`)];
    const items = [...keys.map((k) => `${k} AS g${k.slice(3)}`), 'COUNT(t1.id) AS n', ...extremes.map((e, i) => `${e} AS a${i}`)];
    const filter = condition === null ? '' : ` WHERE ${condition}`;
    return `SELECT ${items.join(', ')} FROM t0 ${join} t1 ON t1.${column} = t0.id${filter} GROUP BY ${keys.join(', ')}`;
  });
  const plainColumn = fc.tuple(table, fc.constantFrom('k', 'g', 'v', 's'));
  return fc.tuple(
    shape, joins, fc.uniqueArray(groupColumn, { minLength: 1, maxLength: 2, selector: ([i, c]) => `${i}.${c}` }),
    fc.array(aggregate, { minLength: 1, maxLength: 4 }), fc.uniqueArray(plainColumn, { maxLength: 4, selector: ([i, c]) => `${i}.${c}` }), where, perParent,
  ).map(([kind, joinList, groups, aggregates, columns, condition, perParentSelect]): Projection => {
    if (kind === 'perParent') return { name, shape: 'grouped', select: perParentSelect };
    const from = ['t0', ...joinList.map(([join, other, otherColumn, column], i) => `${join} t${i + 1} ON t${i + 1}.${column} = t${other}.${otherColumn}`)].join(' ');
    const filter = condition === null ? '' : ` WHERE ${condition}`;
    const aggregateItems = aggregates.map((a, i) => `${a} AS a${i}`);
    if (kind === 'global') return { name, shape: kind, select: `SELECT ${aggregateItems.join(', ')} FROM ${from}${filter}` };
    if (kind === 'plain') {
      const items = [...Array.from({ length: tables }, (_x, i) => `t${i}.id AS id${i}`), ...columns.map(([i, c]) => `t${i}.${c} AS c${i}${c}`)];
      return { name, shape: kind, select: `SELECT ${items.join(', ')} FROM ${from}${filter}` };
    }
    const keys = groups.map(([i, c]) => `t${i}.${c}`);
    const items = [...groups.map(([i, c]) => `t${i}.${c} AS g${i}${c}`), ...aggregateItems];
    return { name, shape: kind, select: `SELECT ${items.join(', ')} FROM ${from}${filter} GROUP BY ${keys.join(', ')}` };
  });
}

function statementArb(tables: number): fc.Arbitrary<{ sql: string; params: readonly Param[] }> {
  const table = fc.integer({ min: 0, max: tables - 1 }).map((i) => `t${i}`);
  const id = fc.integer({ min: 0, max: ID_MAX });
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(table, id, small, small, value, text).map(([n, i, k, g, v, s]) => ({ sql: `INSERT INTO ${n} (id, k, g, v, s) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, params: [i, k, g, v, s] })) },
    { weight: 2, arbitrary: fc.tuple(table, fc.constantFrom('k', 'g'), small, id).map(([n, c, x, i]) => ({ sql: `UPDATE ${n} SET ${c} = $1 WHERE id = $2`, params: [x, i] })) },
    { weight: 2, arbitrary: fc.tuple(table, value, text, id).map(([n, v, s, i]) => ({ sql: `UPDATE ${n} SET v = $1, s = $2 WHERE id = $3`, params: [v, s, i] })) },
    { weight: 1, arbitrary: fc.tuple(table, id).map(([n, i]) => ({ sql: `UPDATE ${n} SET id = id + 1 WHERE id = $1`, params: [i] })) },
    { weight: 2, arbitrary: fc.tuple(table, id).map(([n, i]) => ({ sql: `DELETE FROM ${n} WHERE id = $1`, params: [i] })) },
    { weight: 1, arbitrary: fc.tuple(table, value).map(([n, v]) => ({ sql: `DELETE FROM ${n} WHERE v >= $1`, params: [v] })) },
  );
}

const caseArb: fc.Arbitrary<Case> = fc.integer({ min: 1, max: 3 }).chain((tables) => {
  const batch = fc.array(statementArb(tables), { minLength: 1, maxLength: 3 });
  return fc.record({
    tables: fc.constant(tables),
    projections: fc.tuple(projectionArb(tables, 'p1'), fc.option(projectionArb(tables, 'p2'), { freq: 2 }))
      .map(([a, b]) => (b === null ? [a] : [a, b])),
    before: fc.array(batch, { maxLength: 6 }),
    after: fc.array(batch, { minLength: 1, maxLength: 18 }),
  });
});

/** A value in one comparable form for both engines: numbers rounded (AVG is NUMERIC in
 * PostgreSQL, DOUBLE here), everything else as text. */
function norm(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v).toFixed(6);
  if (typeof v === 'string' && /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(v)) return Number(v).toFixed(6);
  return `'${String(v)}'`;
}

function canonical(rows: readonly (readonly unknown[])[]): string[] {
  return rows.map((r) => r.map(norm).join('|')).sort();
}

function kernelRows(kernel: Kernel, name: string, at?: number): string[] {
  const r = kernel.read(tenantId(1), `SELECT * FROM ${name}`, [], at === undefined ? undefined : position(at));
  if (!r.ok) throw new Error(`read of ${name}: ${r.error.message}`);
  return canonical(r.rows);
}

function recomputed(kernel: Kernel, name: string, at?: number): string[] {
  const rows = kernel.recomputeProjection(tenantId(1), name, at === undefined ? undefined : position(at));
  if (rows === undefined) throw new Error(`projection ${name} missing`);
  return canonical(rows);
}

const TABLE_DDL = (i: number): string => `CREATE TABLE t${i} (id INTEGER PRIMARY KEY, k INTEGER, g INTEGER, v INTEGER, s TEXT)`;

async function pgRows(pg: PGlite, kernel: Kernel, tables: number, select: string): Promise<string[]> {
  for (let i = 0; i < tables; i++) {
    const r = kernel.read(tenantId(1), `SELECT ${COLUMNS.join(', ')} FROM t${i}`, []);
    if (!r.ok) throw new Error(r.error.message);
    await pg.exec(`TRUNCATE t${i}`);
    for (const row of r.rows) await pg.query(`INSERT INTO t${i} VALUES ($1, $2, $3, $4, $5)`, row.map((v: Value) => (typeof v === 'bigint' ? Number(v) : v)));
  }
  const result = await pg.query<Record<string, unknown>>(select, [], { rowMode: 'array', parsers: { 20: (x: string) => x, 1700: (x: string) => x, 701: (x: string) => x } });
  return canonical(result.rows as unknown as unknown[][]);
}

t.test('projections equal recomputation and PostgreSQL after every entry; AS OF and restart agree', async (t) => {
  const pg = await PGlite.create();
  for (let i = 0; i < 3; i++) await pg.exec(TABLE_DDL(i));
  let entries = 0;
  let nonEmpty = 0;
  let leftJoins = 0;
  const shapes = { grouped: 0, global: 0, plain: 0 };
  await fc.assert(fc.asyncProperty(caseArb, async (c) => {
    const d = new Driver();
    d.createTenant(1);
    d.batch(1, Array.from({ length: c.tables }, (_x, i) => ({ sql: TABLE_DDL(i) })));
    for (const b of c.before) d.batch(1, b);
    const created = d.batch(1, c.projections.map((p) => ({ sql: `CREATE PROJECTION ${p.name} AS ${p.select}` })));
    if (created.reply.kind !== 'sql') throw new Error(`CREATE PROJECTION refused: ${JSON.stringify(created.reply)}`);
    const createdAt = d.kernel.head;
    if (c.projections.some((p) => p.select.includes('LEFT JOIN'))) leftJoins++;
    for (const p of c.projections) shapes[p.shape]++;
    const check = async (label: string): Promise<void> => {
      for (const p of c.projections) {
        const mine = kernelRows(d.kernel, p.name);
        const scratch = recomputed(d.kernel, p.name);
        if (mine.join('\n') !== scratch.join('\n')) throw new Error(`${label} ${p.name}: incremental ≠ recomputation\n${p.select}\n${mine.join('\n')}\n---\n${scratch.join('\n')}`);
        const theirs = await pgRows(pg, d.kernel, c.tables, p.select);
        if (mine.join('\n') !== theirs.join('\n')) throw new Error(`${label} ${p.name}: ours ≠ PostgreSQL\n${p.select}\n${mine.join('\n')}\n---\n${theirs.join('\n')}`);
        if (mine.length > 0) nonEmpty++;
      }
    };
    await check('after creation');
    for (const b of c.after) {
      d.batch(1, b);
      entries++;
      await check(`after entry ${d.kernel.head}`);
    }
    for (let at = createdAt; at <= d.kernel.head; at++) {
      for (const p of c.projections) {
        if (kernelRows(d.kernel, p.name, at).join('\n') !== recomputed(d.kernel, p.name, at).join('\n')) throw new Error(`AS OF POSITION ${at} of ${p.name} ≠ recomputation at ${at}`);
      }
    }
    const cut = createdAt + ((d.kernel.head * 7) % (d.kernel.head - createdAt + 1));
    const restored = Kernel.restore(replay(d.log, cut).checkpoint());
    if (!restored.ok) throw new Error(restored.reason);
    const again = replay(d.log, d.log.length, restored.kernel);
    if (hex(again.stateHash()) !== hex(d.kernel.stateHash())) throw new Error('restart changed the state hash');
    for (const p of c.projections) {
      if (kernelRows(again, p.name).join('\n') !== kernelRows(d.kernel, p.name).join('\n')) throw new Error(`restart changed ${p.name}`);
    }
  }), { seed, numRuns: 40 });
  await pg.close();
  t.ok(entries > 100, `entries checked: ${entries}`);
  t.ok(nonEmpty > 40, `non-empty projection states compared: ${nonEmpty}`);
  t.ok(leftJoins > 5, `cases with LEFT JOIN: ${leftJoins}`);
  t.ok(shapes.grouped > 5 && shapes.global > 2 && shapes.plain > 5, `projections by shape: ${JSON.stringify(shapes)}`);
});
