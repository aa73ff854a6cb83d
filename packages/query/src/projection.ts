import {
  assert, compareValues, limits, type IndexLayout, type Key, type Row, type ScanOptions, type TableLayout,
  type TableReader, type TableWriter, type Value,
} from '@veritydb/types';
import type { CreateProjectionStatement, Expr } from './ast.js';
import {
  bindExpr, coerce, newAccumulator, rowKey, valueKey, type AggregateSpec, type BindEnv, type Bound, type GroupContext, type ScopeColumn,
} from './bind.js';
import { columnIndex, findProjection, findTable, projectionsOn, type Catalog, type ColumnDef, type ProjectionDef, type TableDef } from './catalog.js';
import { fail } from './errors.js';
import { prepareUncached } from './prepare.js';
import { typeName } from './values.js';

/**
 * Projections (DESIGN §8), maintained incrementally at apply time. Three shapes:
 *
 *   - grouped: `SELECT keys…, aggregates… FROM a [LEFT] JOIN b ON … WHERE … GROUP BY keys…`,
 *     one row per group, primary key = the GROUP BY columns;
 *   - global: `SELECT aggregates… FROM … WHERE …` without GROUP BY: exactly one row, also over
 *     an empty input (PostgreSQL semantics), with no primary-key column;
 *   - plain: `SELECT columns… FROM … WHERE …` without aggregates: a maintained join/filter
 *     view, one row per joined row, primary key = the base tables' primary keys (which the
 *     select list must include), NULL for the missing side of a LEFT join.
 *
 * State, all in the store (so it is versioned, checkpointed and covered by the state hash):
 *   - the projection's own table, named like the projection; SQL reads its catalog columns.
 *     Aggregating shapes carry after them each group's state: the number of joined rows and,
 *     per aggregate, a running sum, a count of non-NULL inputs and the current MIN/MAX (a
 *     global projection then one constant column, its store key);
 *   - `__proj/<name>/extremes` (when there is a MIN/MAX): per MIN/MAX aggregate and group, an
 *     ordered multiset of its non-NULL inputs, so deleting the current extreme finds the next.
 *     One key per input, `(aggregate, …group key, value, …joined row's base primary keys)`, and
 *     no other column: a joined row's input is written once when it comes and deleted when it
 *     goes, with no read first (a value → count map would read, then rewrite, a shared row);
 *   - on each base table whose join column is not its one-column primary key, a store index
 *     `__proj/<name>/<column>` (the store keeps it with the table's rows, and a lookup through
 *     it yields the rows themselves). Not in the catalog: SQL never sees it.
 *
 * Maintenance of a change to row r of the k-th table: the joined rows that contain r are
 * (prefix of the tables before k that r's ON condition matches) × r × (expansion through the
 * tables after k). For a LEFT join, when r is the first match of a prefix the NULL-extended
 * row goes away, and when r was the last one it comes back. A delete is computed before the
 * write, an insert after it; an update is both, and the projection rows they touch are written
 * once.
 */

/** Prefix of every table and index that holds a projection's internal state; user names may not start with `__`. */
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

type Output =
  | { readonly kind: 'key'; readonly index: number }
  | { readonly kind: 'aggregate'; readonly index: number }
  /** A plain projection's column: a slot of the joined row. */
  | { readonly kind: 'column'; readonly slot: number };

export type ProjectionShape = 'grouped' | 'global' | 'plain';

/** A store index a projection keeps on one of its base tables: on a join column, or on a
 * MIN/MAX's group columns and argument (`ExtremeIndex`), or both when the join column is the
 * one group column. */
interface JoinIndex {
  readonly table: number;
  readonly columns: readonly number[];
  readonly name: string;
}

/**
 * A MIN/MAX whose inputs of a group are, in order, the entries of one base-table index under a
 * prefix made of the group's key values: the index serves as the group's ordered multiset, and
 * no extremes rows are kept. So when the projection has no WHERE and either reads one table
 * (index: the GROUP BY columns, then the argument) or joins a second table to the first one's
 * one-column primary key, groups by columns of the first table including that key, and takes
 * the MIN/MAX of a column of the second (index: the join column, then the argument; each group
 * is one row of the first table, its inputs the matching rows of the second).
 */
interface ExtremeIndex {
  readonly table: number;
  readonly name: string;
  /** Positions in the group's key of the index prefix's values. */
  readonly prefix: readonly number[];
  /** The argument's column in `table`. */
  readonly column: number;
}

export interface CompiledProjection {
  readonly def: ProjectionDef;
  readonly shape: ProjectionShape;
  readonly tables: readonly SourceTable[];
  readonly edges: readonly (Edge | null)[];
  readonly width: number;
  readonly where: Bound | null;
  /** Slots (in the joined row) of the key values: GROUP BY columns (grouped), the base
   * tables' primary-key columns (plain), none (global). */
  readonly keySlots: readonly number[];
  /** Slots of every table's primary-key columns: they identify a joined row (NULL for the
   * missing side of a LEFT join). */
  readonly rowIdSlots: readonly number[];
  readonly specs: readonly AggregateSpec[];
  readonly outputs: readonly Output[];
  /** The projection's table as SQL sees it: columns in select-list order. */
  readonly visible: TableDef;
  /** Its store layout: the visible columns, then (aggregating shapes) the group's state. */
  readonly layout: TableLayout;
  /** Null when no aggregate is a MIN or MAX kept in extremes rows. */
  readonly extremesTable: string | null;
  /** Per aggregate: the index that orders its inputs (null: none, or not a MIN/MAX). */
  readonly extremeIndexes: readonly (ExtremeIndex | null)[];
  readonly indexes: readonly JoinIndex[];
  /** Per table, per column: the index that finds its rows by that column (undefined for a
   * one-column primary key, which is looked up directly). */
  readonly indexOf: readonly (readonly (string | undefined)[])[];
  /** Scratch joined row, reused by every maintenance step (the apply is single-threaded). */
  readonly scratch: Value[];
}

function stateName(projection: string, part: string): string {
  return `${PROJECTION_STATE_PREFIX}${projection}/${part}`;
}

/** The hidden constant column keying a global projection's one stored row. */
const GLOBAL_KEY: readonly Value[] = [0];

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
  const aggregating = s.groupBy.length > 0 || s.items.some((i) => i.kind !== 'star' && i.expr?.kind === 'aggregate');
  const shape: ProjectionShape = s.groupBy.length > 0 ? 'grouped' : aggregating ? 'global' : 'plain';
  const keySlots = s.groupBy.map((g) => {
    if (g.kind !== 'column') refuse('GROUP BY of an expression: group by columns');
    const slot = resolveSlot(g as Expr & { kind: 'column' }, scope, env);
    if ((scope[slot] as ScopeColumn).type === 'JSON') refuse(`GROUP BY of JSON column "${(scope[slot] as ScopeColumn).name}"`);
    return slot;
  });
  if (new Set(keySlots).size !== keySlots.length) refuse('the same GROUP BY column twice');
  const specs: AggregateSpec[] = [];
  /** Per aggregate: the joined-row slot of its argument when that is a bare column. */
  const argSlots: (number | null)[] = [];
  const outputs: Output[] = [];
  const columns: ColumnDef[] = [];
  for (const item of s.items) {
    if (item.kind === 'star') refuse(aggregating ? 'SELECT * (list the GROUP BY columns and aggregates)' : 'SELECT * (list the columns, including each table\'s primary key)');
    const expr = item.expr as Expr;
    const name = item.alias ?? item.defaultName;
    if (name.startsWith('__')) fail('InvalidTableDefinition', `names starting with "__" are reserved ("${name}")`);
    if (columns.some((c) => c.name === name)) fail('DuplicateColumn', `column "${name}" appears twice in the projection: give it an alias`);
    if (expr.kind === 'column') {
      const slot = resolveSlot(expr, scope, env);
      const column = scope[slot] as ScopeColumn;
      if (shape === 'plain') {
        outputs.push({ kind: 'column', slot });
        columns.push({ name, type: column.type, notNull: false, default: null });
        continue;
      }
      const index = keySlots.indexOf(slot);
      if (index < 0) fail('GroupingError', `column "${column.table}.${column.name}" must appear in the GROUP BY clause or be used in an aggregate function`);
      if (outputs.some((o) => o.kind === 'key' && o.index === index)) refuse(`selecting GROUP BY column "${column.name}" twice`);
      outputs.push({ kind: 'key', index });
      columns.push({ name, type: column.type, notNull: false, default: null });
      continue;
    }
    if (expr.kind !== 'aggregate') {
      refuse(aggregating
        ? `the expression "${name}" in the select list: select GROUP BY columns and bare aggregates (compute expressions when you read)`
        : `the expression "${name}" in the select list: select plain columns (compute expressions when you read)`);
    }
    const aggregate = expr as Expr & { kind: 'aggregate' };
    if (aggregate.distinct) refuse(`DISTINCT aggregates (${aggregate.fn}(DISTINCT …)): they cannot be maintained incrementally`);
    const group: GroupContext = { keys: [], keyTypes: [], aggregates: [], aggregateKeys: [], inner: env };
    bindExpr(aggregate, { ...env, group });
    const spec = group.aggregates[0];
    assert(spec !== undefined && group.aggregates.length === 1, 'a bare aggregate binds one aggregate');
    outputs.push({ kind: 'aggregate', index: specs.length });
    specs.push(spec);
    argSlots.push(aggregate.arg?.kind === 'column' ? resolveSlot(aggregate.arg, scope, env) : null);
    columns.push({ name, type: spec.type, notNull: spec.fn === 'COUNT', default: null });
  }
  if (columns.length > limits.tableColumnsMax) refuse(`more than ${limits.tableColumnsMax} columns`);
  let primaryKey: string[];
  let keys: readonly number[] = keySlots;
  if (shape === 'grouped') {
    for (const [i, slot] of keySlots.entries()) {
      if (!outputs.some((o) => o.kind === 'key' && o.index === i)) {
        refuse(`GROUP BY column "${(scope[slot] as ScopeColumn).name}" missing from the select list (it keys the projection's rows)`);
      }
    }
    primaryKey = outputs.flatMap((o, i) => (o.kind === 'key' ? [(columns[i] as ColumnDef).name] : []));
    // The stored key is in select-list order: renumber the key outputs to match.
    keys = outputs.flatMap((o) => (o.kind === 'key' ? [keySlots[o.index] as number] : []));
    let next = 0;
    for (const [i, o] of outputs.entries()) if (o.kind === 'key') outputs[i] = { kind: 'key', index: next++ };
  } else if (shape === 'plain') {
    // Every base row's primary key is in the select list: together they key the joined row.
    const slots = tables.flatMap((t) => t.pkColumns.map((c) => t.offset + c));
    primaryKey = slots.map((slot) => {
      const at = outputs.findIndex((o) => o.kind === 'column' && o.slot === slot);
      const column = scope[slot] as ScopeColumn;
      if (at < 0) {
        refuse(`a projection without GROUP BY that leaves out primary-key column "${column.alias ?? column.table}.${column.name}": select every table's primary key (together they key the projection's rows)`);
      }
      return (columns[at] as ColumnDef).name;
    });
    keys = slots;
  } else {
    primaryKey = [];
  }
  const indexes: JoinIndex[] = [];
  const indexOf = tables.map((t) => new Array<string | undefined>(t.def.columns.length).fill(undefined));
  const indexNamed = (t: number, columns: readonly number[]): string => {
    const same = indexes.find((i) => i.table === t && i.columns.length === columns.length && i.columns.every((c, j) => c === columns[j]));
    if (same !== undefined) return same.name;
    const table = tables[t] as SourceTable;
    // Column names may hold commas: a name already taken (by other columns) gets a number.
    const base = stateName(s.name, columns.map((c) => (table.def.columns[c] as ColumnDef).name).join(','));
    let name = base;
    for (let n = 2; indexes.some((i) => i.table === t && i.name === name); n++) name = `${base}#${n}`;
    indexes.push({ table: t, columns, name });
    return name;
  };
  const extremeIndexes = specs.map((spec, i) => (spec.fn === 'MIN' || spec.fn === 'MAX'
    ? extremeIndexOf(shape, where, tables, edges, keys, argSlots[i] as number | null, scope, indexNamed)
    : null));
  // A join lookup by one column reads any index that starts with it.
  for (const index of indexes) {
    const first = index.columns[0] as number;
    (indexOf[index.table] as (string | undefined)[])[first] ??= index.name;
  }
  const needIndex = (t: number, column: number): void => {
    const table = tables[t] as SourceTable;
    if ((table.pkColumns.length === 1 && table.pkColumns[0] === column) || (indexOf[t] as (string | undefined)[])[column] !== undefined) return;
    (indexOf[t] as (string | undefined)[])[column] = indexNamed(t, [column]);
  };
  edges.forEach((edge, k) => {
    if (edge === null) return;
    needIndex(k, edge.column);
    needIndex(edge.other, edge.otherColumn);
  });
  const visible: TableDef = { name: s.name, columns, primaryKey, indexes: [] };
  const stateWidth = shape === 'plain' ? 0 : 1 + STATE_FIELDS * specs.length;
  const layout: TableLayout = shape === 'global'
    ? { primaryKey: [columns.length + stateWidth], columnCount: columns.length + stateWidth + 1 }
    : { primaryKey: primaryKey.map((c) => columnIndex(visible, c)), columnCount: columns.length + stateWidth };
  return {
    def: { name: s.name, sql: s.sql, tables: tables.map((t) => t.def.name) },
    shape, tables, edges, width, where, keySlots: keys, rowIdSlots: tables.flatMap((t) => t.pkColumns.map((c) => t.offset + c)),
    specs, outputs, visible, layout,
    extremesTable: specs.some((spec, i) => (spec.fn === 'MIN' || spec.fn === 'MAX') && extremeIndexes[i] === null) ? stateName(s.name, 'extremes') : null,
    extremeIndexes, indexes, indexOf, scratch: new Array<Value>(width).fill(null),
  };
}

/** The index that orders a MIN/MAX's inputs per group (see `ExtremeIndex`), when the
 * projection's shape allows one; `keys` are the group's slots in key order. */
function extremeIndexOf(shape: ProjectionShape, where: Bound | null, tables: readonly SourceTable[], edges: readonly (Edge | null)[],
  keys: readonly number[], argSlot: number | null, scope: readonly ScopeColumn[], indexNamed: (t: number, columns: readonly number[]) => string): ExtremeIndex | null {
  if (shape !== 'grouped' || where !== null || argSlot === null || (scope[argSlot] as ScopeColumn).type === 'JSON') return null;
  const first = tables[0] as SourceTable;
  const inFirst = (slot: number): boolean => slot < first.def.columns.length;
  if (tables.length === 1) {
    // An index names a column once (a MIN/MAX of a GROUP BY column keeps extremes rows).
    if (keys.includes(argSlot)) return null;
    const columns = [...keys, argSlot];
    return { table: 0, name: indexNamed(0, columns), prefix: keys.map((_k, i) => i), column: argSlot };
  }
  const second = tables[1] as SourceTable;
  const edge = edges[1] as Edge;
  if (tables.length !== 2 || edge.other !== 0 || first.pkColumns.length !== 1 || edge.otherColumn !== first.pkColumns[0]) return null;
  const pkAt = keys.indexOf(first.offset + edge.otherColumn);
  if (pkAt < 0 || !keys.every(inFirst) || argSlot < second.offset) return null;
  const column = argSlot - second.offset;
  // The MIN/MAX of the join column itself keeps extremes rows (an index names a column once).
  if (column === edge.column) return null;
  return { table: 1, name: indexNamed(1, [edge.column, column]), prefix: [pkAt], column };
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
// Reading the joined rows a change touches. Callbacks rather than generators: this is the hot
// path of every write to a base table, and `parts` (one row per table, null when
// NULL-extended) is one array filled in place as the recursion goes.

type Parts = (Row | null)[];

/** Calls `f` with each row of table t whose `column` equals `value` (none for NULL). */
function eachMatch(reader: TableReader, p: CompiledProjection, t: number, column: number, value: Value, f: (row: Row) => void): void {
  if (value === null) return;
  const table = p.tables[t] as SourceTable;
  const index = (p.indexOf[t] as readonly (string | undefined)[])[column];
  if (index === undefined) {
    if (table.pkColumns.length !== 1 || table.pkColumns[0] !== column) assert(false, `projection ${p.def.name} indexes ${table.def.name} column ${column}`);
    const row = reader.get(table.def.name, [value]);
    if (row !== undefined) f(row);
    return;
  }
  const bound = { key: [value], inclusive: true };
  for (const row of reader.indexScan(table.def.name, index, { range: { lower: bound, upper: bound } })) f(row);
}

function joinValue(parts: Parts, t: number, column: number): Value {
  const row = parts[t];
  return row === null || row === undefined ? null : (row[column] as Value);
}

/** Calls `f` for every joined row that extends `parts[0..k)` through tables k…, filling `parts`. */
function expand(reader: TableReader, p: CompiledProjection, parts: Parts, k: number, f: () => void): void {
  if (k === p.tables.length) {
    f();
    return;
  }
  const edge = p.edges[k] as Edge;
  let matched = false;
  eachMatch(reader, p, k, edge.column, joinValue(parts, edge.other, edge.otherColumn), (row) => {
    matched = true;
    parts[k] = row;
    expand(reader, p, parts, k + 1, f);
  });
  if (!matched && edge.left) {
    parts[k] = null;
    expand(reader, p, parts, k + 1, f);
  }
}

/** Calls `f` for every prefix (tables 0..k-1, in `parts`) that row `row` of table k joins with
 * by its ON condition. */
function prefixes(reader: TableReader, p: CompiledProjection, k: number, row: Row, parts: Parts, f: () => void): void {
  const edge = p.edges[k] as Edge;
  const value = row[edge.column] as Value;
  if (edge.other === 0) {
    eachMatch(reader, p, 0, edge.otherColumn, value, (first) => {
      parts[0] = first;
      expandTo(reader, p, parts, 1, k, f);
    });
    return;
  }
  assert(edge.other === 1 && k === 2, 'three tables at most');
  const firstEdge = p.edges[1] as Edge;
  eachMatch(reader, p, 1, edge.otherColumn, value, (second) => {
    eachMatch(reader, p, 0, firstEdge.otherColumn, second[firstEdge.column] as Value, (first) => {
      parts[0] = first;
      parts[1] = second;
      f();
    });
  });
}

/** Like `expand`, up to (not including) table `end`. */
function expandTo(reader: TableReader, p: CompiledProjection, parts: Parts, t: number, end: number, f: () => void): void {
  if (t === end) {
    f();
    return;
  }
  const edge = p.edges[t] as Edge;
  let matched = false;
  eachMatch(reader, p, t, edge.column, joinValue(parts, edge.other, edge.otherColumn), (row) => {
    matched = true;
    parts[t] = row;
    expandTo(reader, p, parts, t + 1, end, f);
  });
  if (!matched && edge.left) {
    parts[t] = null;
    expandTo(reader, p, parts, t + 1, end, f);
  }
}

/** How many rows of table k match the prefix in `parts`, counting no further than `limit`. */
function matchCount(reader: TableReader, p: CompiledProjection, k: number, parts: Parts, limit: number): number {
  const edge = p.edges[k] as Edge;
  const value = joinValue(parts, edge.other, edge.otherColumn);
  if (value === null) return 0;
  const table = p.tables[k] as SourceTable;
  const index = (p.indexOf[k] as readonly (string | undefined)[])[edge.column];
  if (index === undefined) return reader.get(table.def.name, [value]) === undefined ? 0 : 1;
  if (isCounting(reader)) return reader.indexCount(table.def.name, index, [value], limit);
  const bound = { key: [value], inclusive: true };
  let n = 0;
  for (const _row of reader.indexScan(table.def.name, index, { range: { lower: bound, upper: bound } })) {
    if (++n >= limit) break;
  }
  return n;
}

/** A reader that can count index entries without scanning them (the store's readers can). */
interface CountingReader extends TableReader {
  indexCount(table: string, index: string, prefix: Key, limit: number): number;
}

function isCounting(reader: TableReader): reader is CountingReader {
  return typeof (reader as Partial<CountingReader>).indexCount === 'function';
}

/** The joined row of `parts`, in `p.scratch` (valid until the next call). */
function joinedRow(p: CompiledProjection, parts: Parts): Row {
  const out = p.scratch;
  for (let t = 0; t < p.tables.length; t++) {
    const table = p.tables[t] as SourceTable;
    const row = parts[t];
    const n = table.def.columns.length;
    if (row === null || row === undefined) for (let i = 0; i < n; i++) out[table.offset + i] = null;
    else for (let i = 0; i < n; i++) out[table.offset + i] = row[i] as Value;
  }
  return out;
}

function keyOf(p: CompiledProjection, joined: Row, slots: readonly number[] = p.keySlots): Value[] {
  const keys = new Array<Value>(slots.length);
  for (let i = 0; i < keys.length; i++) keys[i] = joined[slots[i] as number] as Value;
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Deltas: what one base-row change does to the projection's rows, before it is written

interface GroupDelta {
  readonly keys: readonly Value[];
  rows: number;
  readonly sums: (number | bigint)[];
  readonly counts: number[];
  /** Per MIN/MAX aggregate kept in extremes rows: the inputs that come (+1) and go (-1), by
   * value and joined row; per MIN/MAX an index orders: the best input that comes and whether
   * any goes (then the index, written by now, is read). Null for other aggregates. */
  readonly extremes: (Map<string, ExtremeInput> | IndexedExtreme | null)[];
}

interface IndexedExtreme {
  best: Value;
  removed: boolean;
}

/** One joined row's input to a MIN/MAX: `count` +1 when it comes, -1 when it goes, 0 both. */
interface ExtremeInput {
  readonly value: Value;
  readonly rowId: readonly Value[];
  count: number;
}

/** A plain projection's row: net count change (-1, 0 or +1), the image of the +1 side, and
 * the first change's sign — net 0 is an update of a stored row when the row was removed first,
 * and nothing when it was added first (a NULL-extended row that came and went in one change). */
interface RowDelta {
  readonly keys: readonly Value[];
  readonly first: 1 | -1;
  sign: number;
  row: Row | null;
}

function sumIsExact(spec: AggregateSpec): boolean {
  return spec.fn === 'SUM' ? spec.type !== 'DOUBLE' : spec.arg !== null && (spec.arg.type === 'INTEGER' || spec.arg.type === 'BIGINT');
}

function zeroSum(spec: AggregateSpec): number | bigint {
  return sumIsExact(spec) ? 0n : 0;
}

class Delta {
  readonly groups = new Map<string, GroupDelta>();
  readonly rows = new Map<string, RowDelta>();

  constructor(readonly p: CompiledProjection) {}

  add(parts: Parts, sign: 1 | -1): void {
    const p = this.p;
    const row = joinedRow(p, parts);
    if (p.where !== null && p.where.eval(row) !== true) return;
    const keys = keyOf(p, row);
    const id = keys.length === 0 ? '' : keys.length === 1 && typeof keys[0] === 'number' ? String(keys[0]) : rowKey(keys);
    if (p.shape === 'plain') {
      this.#addRow(id, keys, row, sign);
      return;
    }
    let group = this.groups.get(id);
    if (group === undefined) {
      group = {
        keys, rows: 0, sums: p.specs.map(zeroSum), counts: p.specs.map(() => 0),
        extremes: p.specs.map((spec, i) => (spec.fn === 'MIN' || spec.fn === 'MAX' ? (p.extremeIndexes[i] === null ? new Map() : { best: null, removed: false }) : null)),
      };
      this.groups.set(id, group);
    }
    group.rows += sign;
    for (let i = 0; i < p.specs.length; i++) {
      const spec = p.specs[i] as AggregateSpec;
      const value = spec.arg === null ? true : spec.arg.eval(row);
      if (value === null) continue;
      group.counts[i] = (group.counts[i] as number) + sign;
      if (spec.fn === 'SUM' || spec.fn === 'AVG') {
        const sum = group.sums[i] as number | bigint;
        group.sums[i] = typeof sum === 'bigint' ? sum + (sign === 1 ? BigInt(value as number | bigint) : -BigInt(value as number | bigint)) : sum + sign * Number(value);
      } else if (p.extremeIndexes[i] !== null && p.extremeIndexes[i] !== undefined) {
        const indexed = group.extremes[i] as IndexedExtreme;
        if (sign === -1) indexed.removed = true;
        else if (indexed.best === null || compareValues(value, indexed.best) * (spec.fn === 'MAX' ? 1 : -1) > 0) indexed.best = value;
      } else if (spec.fn === 'MIN' || spec.fn === 'MAX') {
        const map = group.extremes[i] as Map<string, ExtremeInput>;
        const rowId = keyOf(p, row, p.rowIdSlots);
        const k = rowId.length === 0 ? valueKey(value) : `${valueKey(value)}\u0000${rowKey(rowId)}`;
        const entry = map.get(k);
        if (entry === undefined) map.set(k, { value, rowId, count: sign });
        else entry.count += sign;
        if (Math.abs(map.get(k)?.count as number) > 1) assert(false, `a joined row of ${p.def.name} adds or removes its input once`);
      }
    }
  }

  #addRow(id: string, keys: readonly Value[], joined: Row, sign: 1 | -1): void {
    const p = this.p;
    let change = this.rows.get(id);
    if (change === undefined) {
      change = { keys, first: sign, sign: 0, row: null };
      this.rows.set(id, change);
    }
    change.sign += sign;
    if (change.sign < -1 || change.sign > 1) assert(false, `a joined row of ${p.def.name} is added or removed once`);
    if (sign === 1) change.row = p.outputs.map((o) => (o.kind === 'column' ? joined[o.slot] as Value : assert(false, 'plain outputs are columns') as never));
  }
}

/** Adds the joined rows that contain `row` of table k to `delta`, with `sign`. The reader must
 * hold `row` (a delete is computed before the write, an insert after it). */
function collect(reader: TableReader, p: CompiledProjection, k: number, row: Row, sign: 1 | -1, delta: Delta): void {
  const parts: Parts = new Array<Row | null>(p.tables.length).fill(null);
  const add = (): void => delta.add(parts, sign);
  if (k === 0) {
    parts[0] = row;
    expand(reader, p, parts, 1, add);
    return;
  }
  const edge = p.edges[k] as Edge;
  const opposite = (): void => delta.add(parts, sign === 1 ? -1 : 1);
  prefixes(reader, p, k, row, parts, () => {
    if (edge.left && matchCount(reader, p, k, parts, 2) === 1) {
      // `row` is the prefix's only match: its NULL-extended row appears (delete) or goes (insert).
      parts[k] = null;
      expand(reader, p, parts, k + 1, opposite);
    }
    parts[k] = row;
    expand(reader, p, parts, k + 1, add);
  });
}

function sameRow(a: Row, b: Row): boolean {
  return a.length === b.length && sameValues(a, b, a.length);
}

/** Whether the first `n` values of `a` and `b` are equal. */
function sameValues(a: Row, b: Row, n: number): boolean {
  if (a.length < n || b.length < n) return false;
  for (let i = 0; i < n; i++) {
    const x = a[i] as Value;
    const y = b[i] as Value;
    if (x !== y && (typeof x !== typeof y || compareValues(x, y) !== 0)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Writing a delta

/** The stored rows of aggregating projections carry, after the visible columns (which SQL
 * reads), the group's running state: `rows, …per aggregate (sum, count, extreme)`. The visible
 * part is a function of the state, and one row per group holds both, so maintenance reads and
 * writes one row. */
const STATE_FIELDS = 3;

/** Writes the delta's rows (and MIN/MAX multisets), reporting each visible change. */
function flush(writer: TableWriter, p: CompiledProjection, delta: Delta, cause: DerivedChange['cause'], sink: DerivedSink | undefined): void {
  if (p.shape === 'plain') {
    // Removals first, so the events read as "this row went, that one came".
    for (const change of delta.rows.values()) if (change.sign < 0) flushRow(writer, p, change, cause, sink);
    for (const change of delta.rows.values()) if (change.sign >= 0) flushRow(writer, p, change, cause, sink);
    return;
  }
  for (const change of delta.groups.values()) flushGroup(writer, p, change, cause, sink);
}

function flushRow(writer: TableWriter, p: CompiledProjection, change: RowDelta, cause: DerivedChange['cause'], sink: DerivedSink | undefined): void {
  const name = p.visible.name;
  if (change.sign === 0 && change.first === 1) return;
  if (change.sign === 1) {
    const row = change.row as Row;
    writer.insert(name, row);
    sink?.({ projection: p.visible, eventType: 'insert', key: change.keys, row, cause });
    return;
  }
  const before = writer.get(name, change.keys);
  if (before === undefined) assert(false, `a removed or changed row of ${p.def.name} exists`);
  if (change.sign === -1) {
    writer.delete(name, change.keys);
    sink?.({ projection: p.visible, eventType: 'delete', key: change.keys, row: before, cause });
    return;
  }
  const row = change.row as Row;
  if (sameRow(before, row)) return;
  writer.update(name, change.keys, row);
  sink?.({ projection: p.visible, eventType: 'update', key: change.keys, row, cause });
}

function unchanged(change: GroupDelta): boolean {
  if (change.rows !== 0) return false;
  for (let i = 0; i < change.counts.length; i++) {
    if (change.counts[i] !== 0) return false;
    const sum = change.sums[i];
    if (sum !== 0 && sum !== 0n) return false;
    const extremes = change.extremes[i];
    if (extremes instanceof Map) {
      for (const e of extremes.values()) if (e.count !== 0) return false;
    } else if (extremes !== null && extremes !== undefined && (extremes.removed || extremes.best !== null)) {
      return false;
    }
  }
  return true;
}

function flushGroup(writer: TableWriter, p: CompiledProjection, change: GroupDelta, cause: DerivedChange['cause'], sink: DerivedSink | undefined): void {
  if (unchanged(change)) return;
  const width = p.visible.columns.length;
  const name = p.visible.name;
  const storeKey = p.shape === 'global' ? GLOBAL_KEY : change.keys;
  const before = writer.get(name, storeKey);
  const rows = (before === undefined ? 0 : before[width] as number) + change.rows;
  if (rows < 0) assert(false, `group of ${p.def.name} keeps a non-negative row count`);
  // The stored row: visible columns, then the state `rows, …(sum, count, extreme)`, then (global) the constant key.
  const stored = new Array<Value>(p.layout.columnCount);
  stored[width] = rows;
  for (let i = 0; i < p.specs.length; i++) {
    const spec = p.specs[i] as AggregateSpec;
    const at = width + 1 + STATE_FIELDS * i;
    const sum = before === undefined ? zeroSum(spec) : before[at] as number | bigint;
    const delta = change.sums[i] as number | bigint;
    const count = (before === undefined ? 0 : before[at + 1] as number) + (change.counts[i] as number);
    assert(count >= 0, 'aggregate input count stays non-negative');
    // An unchanged bigint sum is kept, not re-added: `+ 0n` makes a new object, and the
    // version it goes into is history (COUNT's and MIN/MAX's sums never change).
    stored[at] = typeof sum === 'bigint' ? (delta === 0n ? sum : sum + (delta as bigint)) : (sum as number) + (delta as number);
    stored[at + 1] = count;
    stored[at + 2] = spec.fn === 'MIN' || spec.fn === 'MAX'
      ? updateExtremes(writer, p, i, change, count, before === undefined ? null : before[at + 2] as Value)
      : null;
  }
  if (rows === 0 && p.shape === 'grouped') {
    assert(before !== undefined, 'an emptied group existed');
    assert(p.specs.every((_s, i) => stored[width + 2 + STATE_FIELDS * i] === 0), 'an empty group has no inputs');
    writer.delete(name, storeKey);
    sink?.({ projection: p.visible, eventType: 'delete', key: change.keys, row: before.slice(0, width), cause });
    return;
  }
  fillVisible(p, change.keys, stored);
  if (p.shape === 'global') stored[p.layout.columnCount - 1] = GLOBAL_KEY[0] as Value;
  // Frozen, the store keeps this array rather than a copy.
  Object.freeze(stored);
  if (before === undefined) {
    writer.insert(name, stored);
    sink?.({ projection: p.visible, eventType: 'insert', key: change.keys, row: stored.slice(0, width), cause });
    return;
  }
  if (sameValues(before, stored, stored.length)) return;
  writer.update(name, storeKey, stored);
  if (!sameValues(before, stored, width)) sink?.({ projection: p.visible, eventType: 'update', key: change.keys, row: stored.slice(0, width), cause });
}

/** Applies a group's MIN/MAX input changes to its multiset and returns the new extreme. */
function updateExtremes(writer: TableWriter, p: CompiledProjection, i: number, change: GroupDelta, count: number, previous: Value): Value {
  const index = p.extremeIndexes[i];
  if (index !== null && index !== undefined) return indexedExtreme(writer, p, index, i, change, count, previous);
  const table = p.extremesTable as string;
  const entries = change.extremes[i] as Map<string, ExtremeInput>;
  let removed = false;
  for (const entry of entries.values()) {
    if (entry.count === 0) continue;
    const key = extremeKey(i, change.keys, entry);
    if (entry.count > 0) {
      writer.insert(table, key);
    } else {
      removed = true;
      writer.delete(table, key);
    }
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
  for (const entry of writer.scan(table, { range: { lower: prefix, upper: prefix }, reverse: max })) return entry[change.keys.length + 1] as Value;
  return assert(false, 'a group with inputs has an extreme') as never;
}

/** The new extreme of a MIN/MAX whose inputs an index orders: the better of the old one and
 * the new inputs when none went, else the first non-NULL entry under the group's prefix (the
 * base-table write is done by now, so the index holds exactly the group's inputs). */
function indexedExtreme(writer: TableWriter, p: CompiledProjection, index: ExtremeIndex, i: number, change: GroupDelta, count: number, previous: Value): Value {
  if (count === 0) return null;
  const max = (p.specs[i] as AggregateSpec).fn === 'MAX';
  const indexed = change.extremes[i] as IndexedExtreme;
  if (!indexed.removed) {
    const best = previous === null || (indexed.best !== null && compareValues(indexed.best, previous) * (max ? 1 : -1) > 0) ? indexed.best : previous;
    assert(best !== null, 'a group with inputs has an extreme');
    return best;
  }
  const prefix = index.prefix.map((k) => change.keys[k] as Value);
  // NULL sorts first: a bound just after (prefix, NULL) starts at the least non-NULL input.
  const lower = max ? { key: prefix, inclusive: true } : { key: [...prefix, null], inclusive: false };
  const upper = { key: prefix, inclusive: true };
  const table = (p.tables[index.table] as SourceTable).def.name;
  for (const row of writer.indexScan(table, index.name, { range: { lower, upper }, reverse: max })) {
    const value = row[index.column] as Value;
    assert(value !== null, 'a group with inputs has a non-NULL extreme');
    return value;
  }
  return assert(false, 'a group with inputs has an extreme') as never;
}

/** An input's row in the extremes table: `(aggregate, …group key, value, …row id)`. */
function extremeKey(i: number, groupKey: readonly Value[], entry: ExtremeInput): Value[] {
  const key = new Array<Value>(2 + groupKey.length + entry.rowId.length);
  key[0] = i;
  for (let j = 0; j < groupKey.length; j++) key[1 + j] = groupKey[j] as Value;
  key[1 + groupKey.length] = entry.value;
  for (let j = 0; j < entry.rowId.length; j++) key[2 + groupKey.length + j] = entry.rowId[j] as Value;
  return key;
}

/** The visible columns from the group's state (`rows, …(sum, count, extreme)`). */
function visibleRow(p: CompiledProjection, keys: readonly Value[], state: Row): Row {
  const stored = [...new Array<Value>(p.visible.columns.length).fill(null), ...state];
  fillVisible(p, keys, stored);
  return stored.slice(0, p.visible.columns.length);
}

/** Fills the visible columns of a stored row from its state, which follows them. */
function fillVisible(p: CompiledProjection, keys: readonly Value[], stored: Value[]): void {
  const state = p.visible.columns.length;
  for (let c = 0; c < p.outputs.length; c++) {
    const o = p.outputs[c] as Output;
    if (o.kind === 'key') {
      stored[c] = keys[o.index] as Value;
      continue;
    }
    assert(o.kind === 'aggregate', 'aggregating projections output keys and aggregates');
    const spec = p.specs[o.index] as AggregateSpec;
    const sum = stored[state + 1 + STATE_FIELDS * o.index] as number | bigint;
    const count = stored[state + 2 + STATE_FIELDS * o.index] as number;
    switch (spec.fn) {
      case 'COUNT': stored[c] = BigInt(count); break;
      case 'SUM': stored[c] = count === 0 ? null : sum; break;
      case 'AVG': stored[c] = count === 0 ? null : typeof sum === 'bigint' ? Number(sum) / count : sum / count; break;
      case 'MIN':
      case 'MAX': stored[c] = stored[state + 3 + STATE_FIELDS * o.index] as Value; break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Creating, dropping, maintaining

/** The store layout of the projection's own table. */
export function visibleLayout(p: CompiledProjection): TableLayout {
  return p.layout;
}

/**
 * Creates the projection's tables and indexes and fills them from the current rows
 * (atomically, in the creating entry). `visibleWriter` creates the projection's own table (the
 * kernel records that as DDL); `stateWriter` holds every other write.
 */
export function createProjection(p: CompiledProjection, visibleWriter: TableWriter, stateWriter: TableWriter, sink: DerivedSink | undefined): void {
  visibleWriter.createTable(p.visible.name, p.layout);
  if (p.extremesTable !== null) {
    // (aggregate index, …group key, value, …row id), all key
    const keyWidth = p.keySlots.length + 2 + p.rowIdSlots.length;
    stateWriter.createTable(p.extremesTable, { primaryKey: [...Array(keyWidth).keys()], columnCount: keyWidth });
  }
  for (const index of p.indexes) {
    stateWriter.createIndex((p.tables[index.table] as SourceTable).def.name, index.name, { columns: [...index.columns], unique: false });
  }
  const delta = new Delta(p);
  const rows = [...stateWriter.scan((p.tables[0] as SourceTable).def.name)];
  for (const row of rows) collect(stateWriter, p, 0, row, 1, delta);
  if (p.shape === 'global' && delta.groups.size === 0) {
    // An aggregate without GROUP BY has its one row over an empty input too.
    delta.groups.set('', { keys: [], rows: 0, sums: p.specs.map(zeroSum), counts: p.specs.map(() => 0), extremes: p.specs.map(() => null) });
  }
  flush(stateWriter, p, delta, null, sink);
  if (p.shape === 'global' && stateWriter.get(p.visible.name, GLOBAL_KEY) === undefined) {
    const state: Value[] = [0, ...p.specs.flatMap((spec) => [zeroSum(spec), 0, null])];
    const row = visibleRow(p, [], state);
    stateWriter.insert(p.visible.name, [...row, ...state, ...GLOBAL_KEY]);
    sink?.({ projection: p.visible, eventType: 'insert', key: [], row, cause: null });
  }
}

export function dropProjection(p: CompiledProjection, visibleWriter: TableWriter, stateWriter: TableWriter): void {
  visibleWriter.dropTable(p.visible.name);
  if (p.extremesTable !== null) stateWriter.dropTable(p.extremesTable);
  for (const index of p.indexes) stateWriter.dropIndex((p.tables[index.table] as SourceTable).def.name, index.name);
}

/** What a write to one base table maintains: each dependent projection and the table's place in it. */
interface Dependent {
  readonly p: CompiledProjection;
  readonly k: number;
}

/** Catalogs are immutable values that live across many entries: compile once per catalog and table. */
const dependentsCache = new WeakMap<Catalog, Map<string, readonly Dependent[]>>();

function dependents(catalog: Catalog, table: string): readonly Dependent[] {
  let byTable = dependentsCache.get(catalog);
  if (byTable === undefined) {
    byTable = new Map();
    dependentsCache.set(catalog, byTable);
  }
  let found = byTable.get(table);
  if (found === undefined) {
    found = projectionsOn(catalog, table).map((def) => {
      const p = compiledProjection(catalog, def);
      const k = p.tables.findIndex((t) => t.def.name === table);
      assert(k >= 0, `projection ${def.name} reads ${table}`);
      return { p, k };
    });
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
    this.#inner.insert(table, row);
    this.#maintain(table, null, row);
  }

  update(table: string, key: Key, row: Row): void {
    const before = this.#inner.get(table, key);
    if (before === undefined) assert(false, `update of a missing row in ${table}`);
    const affected = dependents(this.#catalog, table);
    const deltas = affected.map(({ p, k }) => {
      const delta = new Delta(p);
      collect(this.#state, p, k, before, -1, delta);
      return delta;
    });
    this.#inner.update(table, key, row);
    this.#finish(table, affected, deltas, row);
  }

  delete(table: string, key: Key): void {
    const before = this.#inner.get(table, key);
    if (before === undefined) assert(false, `delete of a missing row in ${table}`);
    const affected = dependents(this.#catalog, table);
    const deltas = affected.map(({ p, k }) => {
      const delta = new Delta(p);
      collect(this.#state, p, k, before, -1, delta);
      return delta;
    });
    this.#inner.delete(table, key);
    affected.forEach(({ p, k }, i) => flush(this.#state, p, deltas[i] as Delta, causeOf(p, k, before), this.#sink));
  }

  #maintain(table: string, _before: null, after: Row): void {
    const affected = dependents(this.#catalog, table);
    this.#finish(table, affected, affected.map(({ p }) => new Delta(p)), after);
  }

  /** After the write: adds the joined rows of the new image and writes each delta. */
  #finish(_table: string, affected: readonly Dependent[], deltas: readonly Delta[], after: Row): void {
    for (let i = 0; i < affected.length; i++) {
      const { p, k } = affected[i] as Dependent;
      const delta = deltas[i] as Delta;
      collect(this.#state, p, k, after, 1, delta);
      flush(this.#state, p, delta, causeOf(p, k, after), this.#sink);
    }
  }
}

function causeOf(p: CompiledProjection, k: number, row: Row): DerivedChange['cause'] {
  const table = p.tables[k] as SourceTable;
  return { table: table.def, key: table.pkColumns.map((c) => row[c] as Value) };
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
  const walk = (parts: readonly (Row | null)[]): void => {
    const k = parts.length;
    if (k === p.tables.length) {
      joined.push([...joinedRow(p, [...parts])]);
      return;
    }
    const edge = p.edges[k] as Edge;
    const want = joinValue([...parts], edge.other, edge.otherColumn);
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
  const kept = joined.filter((row) => p.where === null || p.where.eval(row) === true);
  if (p.shape === 'plain') return kept.map((row) => p.outputs.map((o) => (o.kind === 'column' ? row[o.slot] as Value : null)));
  const groups = new Map<string, { keys: Value[]; accumulators: ReturnType<typeof newAccumulator>[] }>();
  if (p.shape === 'global') groups.set('', { keys: [], accumulators: p.specs.map(newAccumulator) });
  for (const row of kept) {
    const keys = keyOf(p, row);
    const id = rowKey(keys);
    let g = groups.get(id);
    if (g === undefined) {
      g = { keys, accumulators: p.specs.map(newAccumulator) };
      groups.set(id, g);
    }
    for (const a of g.accumulators) a.add(row);
  }
  return [...groups.values()].map((g) => p.outputs.map((o) => (o.kind === 'key' ? g.keys[o.index] as Value
    : o.kind === 'aggregate' ? (g.accumulators[o.index] as { result(): Value }).result() : null)));
}

/** Names of a projection's internal state: its tables, and its indexes on base tables as
 * `table/index` (for checks and tests). */
export function projectionStateTables(p: CompiledProjection): readonly string[] {
  return [...(p.extremesTable === null ? [] : [p.extremesTable]), ...p.indexes.map((i) => `${(p.tables[i.table] as SourceTable).def.name}/${i.name}`)];
}
