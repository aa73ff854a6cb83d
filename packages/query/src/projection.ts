import {
  assert, compareValues, limits, type IndexLayout, type Key, type Row, type ScanOptions, type TableLayout,
  type TableReader, type TableWriter, type Value,
} from '@veritydb/types';
import type { CreateProjectionStatement, Expr } from './ast.js';
import {
  bindExpr, coerce, newAccumulator, rowKey, type AggregateSpec, type BindEnv, type Bound, type GroupContext, type ScopeColumn,
} from './bind.js';
import { columnIndex, findProjection, findTable, projectionsOn, type Catalog, type ProjectionDef, type TableDef } from './catalog.js';
import { fail } from './errors.js';
import { prepareUncached } from './prepare.js';
import { typeName } from './values.js';

/**
 * Projections (DESIGN §8): `CREATE PROJECTION name AS SELECT … FROM a [LEFT] JOIN b ON … GROUP BY …`
 * maintained incrementally at apply time.
 *
 * State, all in the store (so it is versioned, checkpointed and covered by the state hash):
 *   - the projection's own table, named like the projection, one row per group, primary key =
 *     the GROUP BY columns; SQL reads its catalog columns, and each stored row carries after
 *     them the group's state: the number of joined rows and, per aggregate, a running sum, a
 *     count of non-NULL inputs and the current MIN/MAX;
 *   - `__proj/<name>/extremes`: per MIN/MAX aggregate and group, an ordered multiset
 *     (value → count) of its non-NULL inputs, so deleting the current extreme finds the next;
 *   - `__proj/<name>/by/<table>/<column>`: an index of each join column that is not its table's
 *     one-column primary key: (value, primary key…), to find the rows a change joins with.
 *
 * Maintenance of a change to row r of the k-th table: the joined rows that contain r are
 * (prefix of the tables before k that r's ON condition matches) × r × (expansion through the
 * tables after k). For a LEFT join, when r is the first match of a prefix the NULL-extended
 * row goes away, and when r was the last one it comes back. A delete is computed before the
 * write, an insert after it; an update is both, and the groups they touch are written once.
 */

/** Prefix of every table that holds a projection's internal state; user names may not start with `__`. */
export const PROJECTION_STATE_PREFIX = '__proj/';
/** The most tables one projection may join. */
export const PROJECTION_TABLES_MAX = 3;

/** A change of a projection's row, reported so the kernel can record it in `__events`. */
export interface DerivedChange {
  readonly projection: TableDef;
  readonly eventType: 'insert' | 'update' | 'delete';
  readonly key: Key;
  /** The row after an insert or update, before a delete. */
  readonly row: Row;
  /** The base-table row whose change caused it; null for the back-fill at creation. */
  readonly cause: { readonly table: TableDef; readonly key: Key } | null;
}

export type DerivedSink = (change: DerivedChange) => void;

interface SourceTable {
  readonly def: TableDef;
  /** First slot of its columns in a joined row. */
  readonly offset: number;
  readonly pkColumns: readonly number[];
}

/** Join of table k (k ≥ 1): `tables[k].column = tables[other].otherColumn`. */
interface Edge {
  readonly column: number;
  readonly other: number;
  readonly otherColumn: number;
  readonly left: boolean;
}

type Output = { readonly kind: 'key'; readonly index: number } | { readonly kind: 'aggregate'; readonly index: number };

export interface CompiledProjection {
  readonly def: ProjectionDef;
  readonly tables: readonly SourceTable[];
  readonly edges: readonly (Edge | null)[];
  readonly width: number;
  readonly where: Bound | null;
  readonly keys: readonly Bound[];
  readonly specs: readonly AggregateSpec[];
  readonly outputs: readonly Output[];
  /** The projection's table: columns in select-list order, primary key = GROUP BY columns. */
  readonly visible: TableDef;
  readonly extremesTable: string;
  /** `${table index}.${column}` → index table name. */
  readonly indexTables: ReadonlyMap<string, string>;
  /** The same, as a list. */
  readonly indexes: readonly { readonly table: number; readonly column: number; readonly name: string }[];
}

function stateName(projection: string, part: string): string {
  return `${PROJECTION_STATE_PREFIX}${projection}/${part}`;
}

// ---------------------------------------------------------------------------------------------
// Compiling (and validating) a definition

/** Checks a CREATE PROJECTION against the catalog and compiles it; user errors are `fail`ed
 * with the construct they name. */
export function compileProjection(s: CreateProjectionStatement, catalog: Catalog): CompiledProjection {
  const refuse = (what: string): never => fail('Unsupported', `CREATE PROJECTION does not support ${what}`);
  if (s.from.length > PROJECTION_TABLES_MAX) refuse(`joins of more than ${PROJECTION_TABLES_MAX} tables`);
  const tables: SourceTable[] = [];
  const scope: ScopeColumn[] = [];
  let width = 0;
  for (const source of s.from) {
    const def = findTable(catalog, source.ref.name);
    if (def === undefined) fail('UndefinedTable', `relation "${source.ref.name}" does not exist`);
    if (findProjection(catalog, def.name) !== undefined) refuse(`reading another projection ("${def.name}")`);
    if (tables.some((t) => t.def.name === def.name)) refuse(`the same table twice (self-join of "${def.name}")`);
    const label = source.ref.alias ?? def.name;
    if (s.from.some((o) => o !== source && (o.ref.alias ?? o.ref.name) === label)) fail('DuplicateTable', `table name "${label}" specified more than once`);
    tables.push({ def, offset: width, pkColumns: def.primaryKey.map((c) => columnIndex(def, c)) });
    for (const [i, c] of def.columns.entries()) scope.push({ table: def.name, alias: source.ref.alias, name: c.name, type: c.type, slot: width + i });
    width += def.columns.length;
  }
  const env: BindEnv = { columns: scope, params: [], group: null, noAggregates: null };
  const edges = s.from.map((source, k) => (source.on === null ? null : { ...compileEdge(source.on, k, tables, scope, env), left: source.join === 'left' }));
  const where = s.where === null ? null : bindWhere(s.where, { ...env, noAggregates: 'WHERE' });
  if (s.groupBy.length === 0) {
    refuse(s.items.some((i) => i.expr?.kind === 'aggregate')
      ? 'aggregates without GROUP BY (a single global row): add GROUP BY'
      : 'a SELECT without GROUP BY (plain joins): add GROUP BY and aggregates');
  }
  const keySlots = s.groupBy.map((g) => {
    if (g.kind !== 'column') refuse('GROUP BY of an expression: group by columns');
    return resolveSlot(g as Expr & { kind: 'column' }, scope, env);
  });
  const keys = keySlots.map((slot) => {
    const column = scope[slot] as ScopeColumn;
    if (column.type === 'JSON') refuse(`GROUP BY of JSON column "${column.name}"`);
    return bindExpr({ kind: 'column', table: column.alias ?? column.table, name: column.name }, env);
  });
  const specs: AggregateSpec[] = [];
  const outputs: Output[] = [];
  const columns: TableDef['columns'][number][] = [];
  const primaryKey: string[] = [];
  for (const item of s.items) {
    if (item.kind === 'star') refuse('SELECT * (list the GROUP BY columns and aggregates)');
    const expr = item.expr as Expr;
    const name = item.alias ?? item.defaultName;
    if (name.startsWith('__')) fail('InvalidTableDefinition', `names starting with "__" are reserved ("${name}")`);
    if (columns.some((c) => c.name === name)) fail('DuplicateColumn', `column "${name}" appears twice in the projection: give it an alias`);
    if (expr.kind === 'column') {
      const slot = resolveSlot(expr, scope, env);
      const index = keySlots.indexOf(slot);
      const column = scope[slot] as ScopeColumn;
      if (index < 0) fail('GroupingError', `column "${column.table}.${column.name}" must appear in the GROUP BY clause or be used in an aggregate function`);
      if (outputs.some((o) => o.kind === 'key' && o.index === index)) refuse(`selecting GROUP BY column "${column.name}" twice`);
      outputs.push({ kind: 'key', index });
      columns.push({ name, type: column.type, notNull: false, default: null });
      primaryKey.push(name);
      continue;
    }
    if (expr.kind !== 'aggregate') refuse(`the expression "${name}" in the select list: select GROUP BY columns and bare aggregates (compute expressions when you read)`);
    const aggregate = expr as Expr & { kind: 'aggregate' };
    if (aggregate.distinct) refuse(`DISTINCT aggregates (${aggregate.fn}(DISTINCT …)): they cannot be maintained incrementally`);
    const group: GroupContext = { keys: [], keyTypes: [], aggregates: [], aggregateKeys: [], inner: env };
    bindExpr(aggregate, { ...env, group });
    const spec = group.aggregates[0];
    assert(spec !== undefined && group.aggregates.length === 1, 'a bare aggregate binds one aggregate');
    outputs.push({ kind: 'aggregate', index: specs.length });
    specs.push(spec);
    columns.push({ name, type: spec.type, notNull: spec.fn === 'COUNT', default: null });
  }
  for (const [i, slot] of keySlots.entries()) {
    if (!outputs.some((o) => o.kind === 'key' && o.index === i)) {
      refuse(`GROUP BY column "${(scope[slot] as ScopeColumn).name}" missing from the select list (it keys the projection's rows)`);
    }
  }
  if (new Set(keySlots).size !== keySlots.length) refuse('the same GROUP BY column twice');
  if (columns.length > limits.tableColumnsMax) refuse(`more than ${limits.tableColumnsMax} columns`);
  const indexTables = new Map<string, string>();
  const needIndex = (t: number, column: number): void => {
    const table = tables[t] as SourceTable;
    if (table.pkColumns.length === 1 && table.pkColumns[0] === column) return;
    indexTables.set(`${t}.${column}`, stateName(s.name, `by/${table.def.name}/${(table.def.columns[column] as { name: string }).name}`));
  };
  edges.forEach((edge, k) => {
    if (edge === null) return;
    needIndex(k, edge.column);
    needIndex(edge.other, edge.otherColumn);
  });
  return {
    def: { name: s.name, sql: s.sql, tables: tables.map((t) => t.def.name) },
    tables, edges, width, where, keys, specs, outputs,
    visible: { name: s.name, columns, primaryKey, indexes: [] },
    extremesTable: stateName(s.name, 'extremes'),
    indexTables,
    indexes: [...indexTables].map(([key, name]) => {
      const [table, column] = key.split('.').map(Number) as [number, number];
      return { table, column, name };
    }),
  };
}

function resolveSlot(expr: Expr & { kind: 'column' }, scope: readonly ScopeColumn[], env: BindEnv): number {
  bindExpr(expr, env);
  const match = scope.find((c) => c.name === expr.name && (expr.table === null || expr.table === c.alias || (c.alias === null && expr.table === c.table)));
  assert(match !== undefined, 'a bound column is in scope');
  return match.slot;
}

function bindWhere(where: Expr, env: BindEnv): Bound {
  const b = bindExpr(where, env);
  const c = b.type === 'BOOLEAN' ? b : coerce(b, 'BOOLEAN');
  if (c === null || c.type !== 'BOOLEAN') fail('TypeMismatch', `argument of WHERE must be type boolean, not type ${typeName(b.type)}`);
  return c;
}

function compileEdge(on: Expr, k: number, tables: readonly SourceTable[], scope: readonly ScopeColumn[], env: BindEnv): Edge {
  const refuse = (what: string): never => fail('Unsupported', `CREATE PROJECTION does not support ${what}`);
  const joined = (tables[k] as SourceTable).def.name;
  if (on.kind === 'binary' && on.op === 'AND') refuse(`several conditions in the ON clause of "${joined}": join on one column equality`);
  if (on.kind !== 'binary' || on.op !== '=' || on.left.kind !== 'column' || on.right.kind !== 'column') {
    refuse(`the non-equi join condition of "${joined}": ON must be <column> = <column>`);
  }
  const equality = on as Expr & { kind: 'binary' };
  bindExpr(equality, env);
  const slots = [resolveSlot(equality.left as Expr & { kind: 'column' }, scope, env), resolveSlot(equality.right as Expr & { kind: 'column' }, scope, env)];
  const tableOf = (slot: number): number => tables.findIndex((t, i) => slot >= t.offset && slot < t.offset + (tables[i] as SourceTable).def.columns.length);
  const sides = slots.map(tableOf);
  const mine = sides.indexOf(k);
  const theirs = 1 - mine;
  const other = sides[theirs] as number;
  if (mine < 0 || other >= k) {
    refuse(`the ON clause of "${joined}": it must equate a column of "${joined}" with a column of a table joined before it`);
  }
  const column = (slots[mine] as number) - (tables[k] as SourceTable).offset;
  const otherColumn = (slots[theirs] as number) - (tables[other] as SourceTable).offset;
  for (const [t, c] of [[k, column], [other, otherColumn]] as const) {
    if ((tables[t] as SourceTable).def.columns[c]?.type === 'JSON') refuse('joins on JSON columns');
  }
  return { column, other, otherColumn, left: false };
}

const compiledCache = new Map<string, CompiledProjection>();
const COMPILED_CACHE_MAX = 256;

/** The compiled form of a projection in `catalog` (cached by its text and the shapes of its tables). */
export function compiledProjection(catalog: Catalog, def: ProjectionDef): CompiledProjection {
  const shapes = def.tables.map((t) => {
    const table = findTable(catalog, t);
    assert(table !== undefined, `projection ${def.name} reads existing table ${t}`);
    return `${t}:${table.columns.map((c) => `${c.name} ${c.type}`).join(',')}`;
  });
  const cacheKey = `${def.sql}\u0000${shapes.join(';')}`;
  const hit = compiledCache.get(cacheKey);
  if (hit !== undefined) return hit;
  const prepared = prepareUncached(def.sql);
  assert(prepared.ok && prepared.value.statement.kind === 'createProjection', `projection ${def.name} parses`);
  const compiled = compileProjection(prepared.value.statement as CreateProjectionStatement, catalog);
  if (compiledCache.size >= COMPILED_CACHE_MAX) compiledCache.delete(compiledCache.keys().next().value as string);
  compiledCache.set(cacheKey, compiled);
  return compiled;
}

// ---------------------------------------------------------------------------------------------
// Reading the joined rows a change touches

function* lookup(reader: TableReader, p: CompiledProjection, t: number, column: number, value: Value): Generator<Row> {
  if (value === null) return;
  const table = p.tables[t] as SourceTable;
  if (table.pkColumns.length === 1 && table.pkColumns[0] === column) {
    const row = reader.get(table.def.name, [value]);
    if (row !== undefined) yield row;
    return;
  }
  const index = p.indexTables.get(`${t}.${column}`);
  assert(index !== undefined, `projection ${p.def.name} indexes ${table.def.name} column ${column}`);
  const bound = { key: [value], inclusive: true };
  for (const entry of reader.scan(index, { range: { lower: bound, upper: bound } })) {
    const row = reader.get(table.def.name, entry.slice(1));
    assert(row !== undefined, `index ${index} points at a live row`);
    yield row;
  }
}

type Parts = readonly (Row | null)[];

function joinValue(parts: Parts, t: number, column: number): Value {
  const row = parts[t];
  return row === null || row === undefined ? null : (row[column] as Value);
}

/** Joined rows (as parts, one per table, null when NULL-extended) that extend `parts` with
 * the tables from `k` on. */
function* expand(reader: TableReader, p: CompiledProjection, parts: Parts, k: number): Generator<Parts> {
  if (k === p.tables.length) {
    yield parts;
    return;
  }
  const edge = p.edges[k] as Edge;
  let matched = false;
  for (const row of lookup(reader, p, k, edge.column, joinValue(parts, edge.other, edge.otherColumn))) {
    matched = true;
    yield* expand(reader, p, [...parts, row], k + 1);
  }
  if (!matched && edge.left) yield* expand(reader, p, [...parts, null], k + 1);
}

/** Prefixes (tables 0..k-1) that row `row` of table k joins with by its ON condition. */
function* prefixes(reader: TableReader, p: CompiledProjection, k: number, row: Row): Generator<Parts> {
  const edge = p.edges[k] as Edge;
  const value = row[edge.column] as Value;
  if (edge.other === 0) {
    for (const first of lookup(reader, p, 0, edge.otherColumn, value)) yield* expandTo(reader, p, [first], k);
    return;
  }
  assert(edge.other === 1 && k === 2, 'three tables at most');
  const firstEdge = p.edges[1] as Edge;
  for (const second of lookup(reader, p, 1, edge.otherColumn, value)) {
    for (const first of lookup(reader, p, 0, firstEdge.otherColumn, second[firstEdge.column] as Value)) yield [first, second];
  }
}

function* expandTo(reader: TableReader, p: CompiledProjection, parts: Parts, k: number): Generator<Parts> {
  if (parts.length === k) {
    yield parts;
    return;
  }
  const t = parts.length;
  const edge = p.edges[t] as Edge;
  let matched = false;
  for (const row of lookup(reader, p, t, edge.column, joinValue(parts, edge.other, edge.otherColumn))) {
    matched = true;
    yield* expandTo(reader, p, [...parts, row], k);
  }
  if (!matched && edge.left) yield* expandTo(reader, p, [...parts, null], k);
}

/** Whether table k has at least `n` rows matching `prefix` (counts stop early). */
function matchCount(reader: TableReader, p: CompiledProjection, k: number, prefix: Parts, limit: number): number {
  const edge = p.edges[k] as Edge;
  const value = joinValue(prefix, edge.other, edge.otherColumn);
  if (value === null) return 0;
  const table = p.tables[k] as SourceTable;
  if (table.pkColumns.length === 1 && table.pkColumns[0] === edge.column) return reader.get(table.def.name, [value]) === undefined ? 0 : 1;
  const index = p.indexTables.get(`${k}.${edge.column}`) as string;
  const bound = { key: [value], inclusive: true };
  let n = 0;
  // The index alone says how many rows match: no need to read them.
  for (const _entry of reader.scan(index, { range: { lower: bound, upper: bound } })) {
    if (++n >= limit) break;
  }
  return n;
}

function joinedRow(p: CompiledProjection, parts: Parts): Row {
  const out: Value[] = new Array<Value>(p.width).fill(null);
  parts.forEach((row, t) => {
    if (row === null) return;
    const offset = (p.tables[t] as SourceTable).offset;
    for (let i = 0; i < row.length; i++) out[offset + i] = row[i] as Value;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Group deltas

interface GroupDelta {
  readonly keys: readonly Value[];
  rows: number;
  readonly sums: (number | bigint)[];
  readonly counts: number[];
  /** Per MIN/MAX aggregate: value key → value and count change. */
  readonly extremes: Map<string, { value: Value; count: number }>[];
}

function sumIsExact(spec: AggregateSpec): boolean {
  return spec.fn === 'SUM' ? spec.type !== 'DOUBLE' : spec.arg !== null && (spec.arg.type === 'INTEGER' || spec.arg.type === 'BIGINT');
}

function zeroSum(spec: AggregateSpec): number | bigint {
  return sumIsExact(spec) ? 0n : 0;
}

class Delta {
  readonly groups = new Map<string, GroupDelta>();

  constructor(readonly p: CompiledProjection) {}

  add(parts: Parts, sign: 1 | -1): void {
    const p = this.p;
    const row = joinedRow(p, parts);
    if (p.where !== null && p.where.eval(row) !== true) return;
    const keys = p.keys.map((k) => k.eval(row));
    const id = rowKey(keys);
    const found = this.groups.get(id);
    const group: GroupDelta = found ?? { keys, rows: 0, sums: p.specs.map(zeroSum), counts: p.specs.map(() => 0), extremes: p.specs.map(() => new Map()) };
    if (found === undefined) this.groups.set(id, group);
    group.rows += sign;
    p.specs.forEach((spec, i) => {
      const value = spec.arg === null ? true : spec.arg.eval(row);
      if (value === null) return;
      group.counts[i] = (group.counts[i] as number) + sign;
      if (spec.fn === 'SUM' || spec.fn === 'AVG') {
        const sum = group.sums[i] as number | bigint;
        group.sums[i] = typeof sum === 'bigint' ? sum + BigInt(sign) * BigInt(value as number | bigint) : sum + sign * Number(value);
      } else if (spec.fn === 'MIN' || spec.fn === 'MAX') {
        const map = group.extremes[i] as Map<string, { value: Value; count: number }>;
        const k = rowKey([value]);
        const entry = map.get(k);
        if (entry === undefined) map.set(k, { value, count: sign });
        else entry.count += sign;
      }
    });
  }
}

/** Adds the joined rows that contain `row` of table k to `delta`, with `sign`. The reader must
 * hold `row` (a delete is computed before the write, an insert after it). */
function collect(reader: TableReader, p: CompiledProjection, k: number, row: Row, sign: 1 | -1, delta: Delta): void {
  if (k === 0) {
    for (const parts of expand(reader, p, [row], 1)) delta.add(parts, sign);
    return;
  }
  const edge = p.edges[k] as Edge;
  for (const prefix of prefixes(reader, p, k, row)) {
    if (edge.left && matchCount(reader, p, k, prefix, 2) === 1) {
      // `row` is the prefix's only match: its NULL-extended row appears (delete) or goes (insert).
      for (const parts of expand(reader, p, [...prefix, null], k + 1)) delta.add(parts, sign === 1 ? -1 : 1);
    }
    for (const parts of expand(reader, p, [...prefix, row], k + 1)) delta.add(parts, sign);
  }
}

function sameRow(a: Row, b: Row): boolean {
  return a.length === b.length && a.every((v, i) => compareValues(v, b[i] as Value) === 0 && typeof v === typeof b[i]);
}

/** The projection's stored rows carry, after the visible columns (which SQL reads), the group's
 * running state: `rows, …per aggregate (sum, count, extreme)`. The visible part is a function
 * of the state, and one row per group holds both, so maintenance reads and writes one row. */
const STATE_FIELDS = 3;

function stateRows(p: CompiledProjection, stored: Row): number {
  return stored[p.visible.columns.length] as number;
}

function stateSum(p: CompiledProjection, stored: Row, i: number): number | bigint {
  return stored[p.visible.columns.length + 1 + STATE_FIELDS * i] as number | bigint;
}

function stateCount(p: CompiledProjection, stored: Row, i: number): number {
  return stored[p.visible.columns.length + 2 + STATE_FIELDS * i] as number;
}

function stateExtreme(p: CompiledProjection, stored: Row, i: number): Value {
  return stored[p.visible.columns.length + 3 + STATE_FIELDS * i] as Value;
}

/** Writes the delta's groups (their rows and MIN/MAX multisets), reporting each visible change. */
function flush(writer: TableWriter, p: CompiledProjection, delta: Delta, cause: DerivedChange['cause'], sink: DerivedSink | undefined): void {
  const width = p.visible.columns.length;
  for (const change of delta.groups.values()) {
    const unchanged = change.rows === 0 && change.counts.every((c) => c === 0) && change.sums.every((x) => x === 0n || x === 0) &&
      change.extremes.every((m) => [...m.values()].every((e) => e.count === 0));
    if (unchanged) continue;
    const pk = p.outputs.flatMap((o) => (o.kind === 'key' ? [change.keys[o.index] as Value] : []));
    const before = writer.get(p.visible.name, pk);
    const rows = (before === undefined ? 0 : stateRows(p, before)) + change.rows;
    assert(rows >= 0, `group of ${p.def.name} keeps a non-negative row count`);
    const state: Value[] = [rows];
    p.specs.forEach((spec, i) => {
      const sum = before === undefined ? zeroSum(spec) : stateSum(p, before, i);
      const delta = change.sums[i] as number | bigint;
      const count = (before === undefined ? 0 : stateCount(p, before, i)) + (change.counts[i] as number);
      assert(count >= 0, 'aggregate input count stays non-negative');
      const extreme = spec.fn === 'MIN' || spec.fn === 'MAX'
        ? updateExtremes(writer, p, i, change, count, before === undefined ? null : stateExtreme(p, before, i))
        : null;
      state.push(typeof sum === 'bigint' ? sum + (delta as bigint) : (sum as number) + (delta as number), count, extreme);
    });
    const visibleBefore = before?.slice(0, width);
    if (rows === 0) {
      assert(before !== undefined && visibleBefore !== undefined, 'an emptied group existed');
      assert(p.specs.every((_s, i) => state[2 + STATE_FIELDS * i] === 0), 'an empty group has no inputs');
      writer.delete(p.visible.name, pk);
      sink?.({ projection: p.visible, eventType: 'delete', key: pk, row: visibleBefore, cause });
      continue;
    }
    const row = visibleRow(p, change.keys, state);
    const stored = [...row, ...state];
    if (before === undefined) {
      writer.insert(p.visible.name, stored);
      sink?.({ projection: p.visible, eventType: 'insert', key: pk, row, cause });
      continue;
    }
    if (sameRow(before, stored)) continue;
    writer.update(p.visible.name, pk, stored);
    if (!sameRow(visibleBefore as Row, row)) sink?.({ projection: p.visible, eventType: 'update', key: pk, row, cause });
  }
}

/** Applies a group's MIN/MAX input changes to its multiset and returns the new extreme. */
function updateExtremes(writer: TableWriter, p: CompiledProjection, i: number, change: GroupDelta, count: number, previous: Value): Value {
  const entries = change.extremes[i] as Map<string, { value: Value; count: number }>;
  const countAt = change.keys.length + 2;
  let removed = false;
  for (const entry of entries.values()) {
    if (entry.count === 0) continue;
    removed ||= entry.count < 0;
    const key = [i, ...change.keys, entry.value];
    const old = writer.get(p.extremesTable, key);
    const next = (old === undefined ? 0 : (old[countAt] as number)) + entry.count;
    assert(next >= 0, 'extreme multiset counts stay non-negative');
    if (old !== undefined && next === 0) writer.delete(p.extremesTable, key);
    else if (old !== undefined) writer.update(p.extremesTable, key, [...key, next]);
    else writer.insert(p.extremesTable, [...key, next]);
  }
  if (count === 0) return null;
  const max = (p.specs[i] as AggregateSpec).fn === 'MAX';
  if (!removed) {
    // Only inputs were added: the extreme is the better of the old one and the new values.
    let best = previous;
    for (const e of entries.values()) {
      if (e.count > 0 && (best === null || compareValues(e.value, best) * (max ? 1 : -1) > 0)) best = e.value;
    }
    assert(best !== null, 'a group with inputs has an extreme');
    return best;
  }
  const prefix = { key: [i, ...change.keys], inclusive: true };
  for (const entry of writer.scan(p.extremesTable, { range: { lower: prefix, upper: prefix }, reverse: max })) return entry[countAt - 1] as Value;
  return assert(false, 'a group with inputs has an extreme') as never;
}

/** The visible columns from the group's state (`rows, …(sum, count, extreme)`). */
function visibleRow(p: CompiledProjection, keys: readonly Value[], state: Row): Row {
  return p.outputs.map((o): Value => {
    if (o.kind === 'key') return keys[o.index] as Value;
    const spec = p.specs[o.index] as AggregateSpec;
    const sum = state[1 + STATE_FIELDS * o.index] as number | bigint;
    const count = state[2 + STATE_FIELDS * o.index] as number;
    switch (spec.fn) {
      case 'COUNT': return BigInt(count);
      case 'SUM': return count === 0 ? null : sum;
      case 'AVG': return count === 0 ? null : typeof sum === 'bigint' ? Number(sum) / count : sum / count;
      case 'MIN':
      case 'MAX': return state[3 + STATE_FIELDS * o.index] as Value;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Creating, dropping, maintaining


/** The store layout of the projection's own table: its columns, then the group's state. */
export function visibleLayout(p: CompiledProjection): TableLayout {
  return { primaryKey: p.visible.primaryKey.map((c) => columnIndex(p.visible, c)), columnCount: p.visible.columns.length + 1 + STATE_FIELDS * p.specs.length };
}

function indexEntry(p: CompiledProjection, t: number, column: number, row: Row): Row | null {
  const value = row[column] as Value;
  if (value === null) return null;
  return [value, ...(p.tables[t] as SourceTable).pkColumns.map((c) => row[c] as Value)];
}

function eachIndex(p: CompiledProjection, f: (t: number, column: number, name: string) => void): void {
  for (const index of p.indexes) f(index.table, index.column, index.name);
}

/**
 * Creates the projection's tables and fills them from the current rows (atomically, in the
 * creating entry). `visibleWriter` creates the projection's own table (the kernel records that
 * as DDL); `stateWriter` holds every other write.
 */
export function createProjection(p: CompiledProjection, visibleWriter: TableWriter, stateWriter: TableWriter, sink: DerivedSink | undefined): void {
  visibleWriter.createTable(p.visible.name, visibleLayout(p));
  // (aggregate index, …group key, value) → count
  const keyWidth = p.keys.length + 2;
  stateWriter.createTable(p.extremesTable, { primaryKey: [...Array(keyWidth).keys()], columnCount: keyWidth + 1 });
  eachIndex(p, (t, column, name) => {
    const table = p.tables[t] as SourceTable;
    stateWriter.createTable(name, { primaryKey: [...Array(1 + table.pkColumns.length).keys()], columnCount: 1 + table.pkColumns.length });
    for (const row of stateWriter.scan(table.def.name)) {
      const entry = indexEntry(p, t, column, row);
      if (entry !== null) stateWriter.insert(name, entry);
    }
  });
  const delta = new Delta(p);
  for (const row of stateWriter.scan((p.tables[0] as SourceTable).def.name)) collect(stateWriter, p, 0, row, 1, delta);
  flush(stateWriter, p, delta, null, sink);
}

export function dropProjection(p: CompiledProjection, visibleWriter: TableWriter, stateWriter: TableWriter): void {
  visibleWriter.dropTable(p.visible.name);
  stateWriter.dropTable(p.extremesTable);
  eachIndex(p, (_t, _column, name) => stateWriter.dropTable(name));
}

/** Catalogs are immutable values that live across many entries: compile once per catalog and table. */
const dependentsCache = new WeakMap<Catalog, Map<string, readonly CompiledProjection[]>>();

function dependents(catalog: Catalog, table: string): readonly CompiledProjection[] {
  let byTable = dependentsCache.get(catalog);
  if (byTable === undefined) {
    byTable = new Map();
    dependentsCache.set(catalog, byTable);
  }
  let found = byTable.get(table);
  if (found === undefined) {
    found = projectionsOn(catalog, table).map((def) => compiledProjection(catalog, def));
    byTable.set(table, found);
  }
  return found;
}

/**
 * A `TableWriter` over a base table's writer that keeps every projection reading the table
 * up to date, writing their state through `stateWriter`.
 */
export class MaintainingWriter implements TableWriter {
  readonly #inner: TableWriter;
  readonly #state: TableWriter;
  readonly #catalog: Catalog;
  readonly #sink: DerivedSink | undefined;

  constructor(inner: TableWriter, stateWriter: TableWriter, catalog: Catalog, sink: DerivedSink | undefined) {
    this.#inner = inner;
    this.#state = stateWriter;
    this.#catalog = catalog;
    this.#sink = sink;
  }

  hasTable(table: string): boolean { return this.#inner.hasTable(table); }
  scan(table: string, options?: ScanOptions): Iterable<Row> { return this.#inner.scan(table, options); }
  get(table: string, key: Key): Row | undefined { return this.#inner.get(table, key); }
  indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row> { return this.#inner.indexScan(table, index, options); }
  rowCount(table: string): number { return this.#inner.rowCount(table); }
  createTable(table: string, layout: TableLayout): void { this.#inner.createTable(table, layout); }
  dropTable(table: string): void { this.#inner.dropTable(table); }
  createIndex(table: string, index: string, layout: IndexLayout): void { this.#inner.createIndex(table, index, layout); }
  dropIndex(table: string, index: string): void { this.#inner.dropIndex(table, index); }
  alterTable(table: string, layout: TableLayout, migrate: (row: Row) => Row): void { this.#inner.alterTable(table, layout, migrate); }

  insert(table: string, row: Row): void {
    this.#change(table, null, row, () => this.#inner.insert(table, row));
  }

  update(table: string, key: Key, row: Row): void {
    const before = this.#inner.get(table, key);
    assert(before !== undefined, `update of a missing row in ${table}`);
    this.#change(table, before, row, () => this.#inner.update(table, key, row));
  }

  delete(table: string, key: Key): void {
    const before = this.#inner.get(table, key);
    assert(before !== undefined, `delete of a missing row in ${table}`);
    this.#change(table, before, null, () => this.#inner.delete(table, key));
  }

  #change(table: string, before: Row | null, after: Row | null, write: () => void): void {
    const affected = dependents(this.#catalog, table);
    const deltas = affected.map((p) => {
      const delta = new Delta(p);
      const k = p.tables.findIndex((t) => t.def.name === table);
      if (before !== null) collect(this.#state, p, k, before, -1, delta);
      return { p, k, delta };
    });
    write();
    for (const { p, k, delta } of deltas) {
      eachIndex(p, (t, column, name) => {
        if (t !== k) return;
        const old = before === null ? null : indexEntry(p, t, column, before);
        const next = after === null ? null : indexEntry(p, t, column, after);
        if (old !== null && next !== null && rowKey(old) === rowKey(next)) return;
        if (old !== null) this.#state.delete(name, old);
        if (next !== null) this.#state.insert(name, next);
      });
      if (after !== null) collect(this.#state, p, k, after, 1, delta);
      const tableDef = (p.tables[k] as SourceTable).def;
      const changed = (after ?? before) as Row;
      flush(this.#state, p, delta, { table: tableDef, key: (p.tables[k] as SourceTable).pkColumns.map((c) => changed[c] as Value) }, this.#sink);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Recomputation from scratch (the oracle the incremental result must equal)

/**
 * Evaluates projection `name` of `catalog` from scratch over `reader` with nested loops and
 * the engine's ordinary aggregate code, returning rows in the projection's column order (in
 * no particular order). Slow; for tests and verification.
 */
export function recomputeProjection(catalog: Catalog, name: string, reader: TableReader): Row[] {
  const def = findProjection(catalog, name);
  assert(def !== undefined, `projection ${name} exists`);
  const p = compiledProjection(catalog, def);
  const joined: Row[] = [];
  const walk = (parts: Parts): void => {
    const k = parts.length;
    if (k === p.tables.length) {
      joined.push(joinedRow(p, parts));
      return;
    }
    const edge = p.edges[k] as Edge;
    const want = joinValue(parts, edge.other, edge.otherColumn);
    let matched = false;
    for (const row of reader.scan((p.tables[k] as SourceTable).def.name)) {
      const have = row[edge.column] as Value;
      if (want === null || have === null || compareValues(want, have) !== 0) continue;
      matched = true;
      walk([...parts, row]);
    }
    if (!matched && edge.left) walk([...parts, null]);
  };
  for (const row of reader.scan((p.tables[0] as SourceTable).def.name)) walk([row]);
  const groups = new Map<string, { keys: Value[]; accumulators: ReturnType<typeof newAccumulator>[] }>();
  for (const row of joined) {
    if (p.where !== null && p.where.eval(row) !== true) continue;
    const keys = p.keys.map((k) => k.eval(row));
    const id = rowKey(keys);
    let g = groups.get(id);
    if (g === undefined) {
      g = { keys, accumulators: p.specs.map(newAccumulator) };
      groups.set(id, g);
    }
    for (const a of g.accumulators) a.add(row);
  }
  return [...groups.values()].map((g) => p.outputs.map((o) => (o.kind === 'key' ? g.keys[o.index] as Value : (g.accumulators[o.index] as { result(): Value }).result())));
}

/** Names of a projection's internal state tables (for checks and tests). */
export function projectionStateTables(p: CompiledProjection): readonly string[] {
  return [p.extremesTable, ...p.indexTables.values()];
}
