import {
  assert, assertNever, compareKeys, compareValues, limits, type Key, type Row, type SqlType, type TableReader, type TableWriter, type Value,
} from '@veritydb/types';
import type { AsOf, Expr, OrderItem, SelectItem, SelectStatement, Statement, TableRef } from './ast.js';
import {
  bindAssignment, bindExpr, coerce, exprKey, newAccumulator, rowKey, type AggregateSpec, type BindEnv, type Bound, type GroupContext, type ScopeColumn,
} from './bind.js';
import {
  applyCatalogChange, columnIndex, findIndex, findProjection, findTable, indexLayout, projectionsOn, tableLayout, type Catalog, type CatalogChange, type ColumnDef,
  type IndexDef, type TableDef,
} from './catalog.js';
import { fail, sqlError, SqlFault, type SqlError } from './errors.js';
import {
  compiledProjection, compileProjection, createProjection, dropProjection, MaintainingWriter, type DerivedSink,
} from './projection.js';
import { describePath, planAccess, type AccessPath, type Plan } from './plan.js';
import type { Prepared } from './prepare.js';
import { typeName, valueHasType, type ExprType } from './values.js';

export interface ColumnInfo {
  readonly name: string;
  readonly type: SqlType;
}

export interface QueryResult {
  readonly columns: readonly ColumnInfo[];
  readonly rows: readonly Row[];
  /** Rows inserted, updated or deleted; for SELECT the number of rows returned. */
  readonly rowsAffected: number;
  /** For DDL: apply it to the catalog (`applyCatalogChange`) before the next statement. */
  readonly catalogChange?: CatalogChange;
}

export type ExecuteResult = { readonly ok: true; readonly result: QueryResult } | { readonly ok: false; readonly error: SqlError };

/** A snapshot for `AS OF`: the catalog and the reader as of that point in the log. */
export interface HistoricalView {
  readonly catalog: Catalog;
  readonly reader: TableReader;
}

export interface ExecuteContext {
  /** The tenant's current catalog. */
  readonly catalog: Catalog;
  /** Reads for SELECT without AS OF. May also serve the virtual table `__events`. */
  readonly reader?: TableReader;
  /** Required for INSERT/UPDATE/DELETE and DDL: the entry's write batch (it reads its own writes). */
  readonly writer?: TableWriter;
  /** Resolves `AS OF POSITION/TIMESTAMP` to a snapshot, or an error (e.g. beyond the horizon). */
  readonly historical?: (asOf: AsOf) => HistoricalView | SqlError;
  /** Where projection state is written (DESIGN §8): the kernel passes its raw batch, so those
   * writes are not recorded as base-table events. Defaults to `writer`. */
  readonly stateWriter?: TableWriter;
  /** Told of every change of a projection's row (the kernel records them in `__events`). */
  readonly onDerived?: DerivedSink;
  /** Testing aid: ignore indexes and read every row (results must not change). */
  readonly forceFullScan?: boolean;
}

/** The table of derived events (DESIGN §3, §8), which the kernel keeps in the store. The
 * caller's reader serves it under this name: rows in this column order, primary key
 * (position, index), and a non-unique index `__events_stream` on (stream). It is in no user
 * catalog and is read-only to SQL. `hash` is the entry hash in hex. */
export const EVENTS_TABLE: TableDef = Object.freeze({
  name: '__events',
  columns: [
    { name: 'position', type: 'BIGINT', notNull: true, default: null },
    { name: 'index', type: 'INTEGER', notNull: true, default: null },
    { name: 'stream', type: 'TEXT', notNull: true, default: null },
    { name: 'event_type', type: 'TEXT', notNull: true, default: null },
    { name: 'key', type: 'JSON', notNull: false, default: null },
    { name: 'data', type: 'JSON', notNull: false, default: null },
    { name: 'actor', type: 'TEXT', notNull: false, default: null },
    { name: 'timestamp', type: 'TIMESTAMP', notNull: true, default: null },
    { name: 'hash', type: 'TEXT', notNull: true, default: null },
  ],
  primaryKey: ['position', 'index'],
  indexes: [{ name: '__events_stream', columns: ['stream'], unique: false }],
} satisfies TableDef);

/** Runs a prepared statement. Never throws for user errors: they come back as `{ok:false}`.
 * On error, writes already made to `ctx.writer` by this statement must be discarded by the
 * caller (the kernel discards the whole entry's batch: an entry applies entirely or not at all). */
export function execute(prepared: Prepared, params: readonly unknown[], ctx: ExecuteContext): ExecuteResult {
  if (params.length !== prepared.paramCount) {
    return { ok: false, error: sqlError('InvalidParameter', `statement needs ${prepared.paramCount} parameters, ${params.length} given`) };
  }
  try {
    return { ok: true, result: run(prepared.statement, params, ctx) };
  } catch (e) {
    if (e instanceof SqlFault) return { ok: false, error: e.error };
    if (e instanceof RangeError && /call stack|Invalid string length|Invalid array length/.test(e.message)) {
      return { ok: false, error: sqlError('Unsupported', 'statement too complex to evaluate') };
    }
    throw e;
  }
}

function run(statement: Statement, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  switch (statement.kind) {
    case 'select': return runSelect(statement, params, ctx, false);
    case 'explain': return runSelect(statement.select, params, ctx, true);
    case 'insert': return runInsert(statement, params, ctx);
    case 'update': return runUpdate(statement, params, ctx);
    case 'delete': return runDelete(statement, params, ctx);
    case 'createTable': return runCreateTable(statement, params, ctx);
    case 'dropTable': return runDropTable(statement, ctx);
    case 'createIndex': return runCreateIndex(statement, ctx);
    case 'dropIndex': return runDropIndex(statement, ctx);
    case 'addColumn': return runAddColumn(statement, params, ctx);
    case 'dropColumn': return runDropColumn(statement, ctx);
    case 'createProjection': return runCreateProjection(statement, ctx);
    case 'dropProjection': return runDropProjection(statement, ctx);
    case 'showProjections': {
      const rows = (ctx.catalog.projections ?? []).map((p): Row => [p.name, p.tables.join(', '), p.sql]);
      return { columns: [{ name: 'projection_name', type: 'TEXT' }, { name: 'tables', type: 'TEXT' }, { name: 'definition', type: 'TEXT' }], rows, rowsAffected: rows.length };
    }
    case 'showTables': return {
      columns: [{ name: 'table_name', type: 'TEXT' }],
      rows: ctx.catalog.tables.map((t) => [t.name]),
      rowsAffected: ctx.catalog.tables.length,
    };
    case 'describe': {
      const table = statement.table === EVENTS_TABLE.name ? EVENTS_TABLE : mustTable(ctx.catalog, statement.table);
      // A projection's GROUP BY columns key its rows and may still hold NULL (a NULL group).
      const keyImpliesNotNull = findProjection(ctx.catalog, table.name) === undefined;
      const rows = table.columns.map((c): Row => [
        c.name, typeName(c.type), !(c.notNull || (keyImpliesNotNull && table.primaryKey.includes(c.name))), table.primaryKey.includes(c.name),
        c.default === null ? null : describeDefault(c),
      ]);
      return {
        columns: [{ name: 'column_name', type: 'TEXT' }, { name: 'data_type', type: 'TEXT' }, { name: 'is_nullable', type: 'BOOLEAN' },
          { name: 'primary_key', type: 'BOOLEAN' }, { name: 'column_default', type: 'TEXT' }],
        rows, rowsAffected: rows.length,
      };
    }
    default: return assertNever(statement);
  }
}

function describeDefault(c: ColumnDef): string {
  const v = c.default as Value;
  if (typeof v === 'bigint') return c.type === 'TIMESTAMP' ? `'${v}'` : String(v);
  if (v instanceof Uint8Array) return `'\\x${Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('')}'`;
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  return typeof v === 'object' ? `'${JSON.stringify(v)}'` : String(v);
}

function mustTable(catalog: Catalog, name: string): TableDef {
  const t = findTable(catalog, name);
  if (t === undefined) fail('UndefinedTable', `relation "${name}" does not exist`);
  return t;
}

function mustWriter(ctx: ExecuteContext, what: string): TableWriter {
  if (ctx.writer === undefined) fail('Unsupported', `${what} needs a writer: it is only valid in a write request`);
  return ctx.writer;
}

function scopeOf(table: TableDef, ref: TableRef | null, offset = 0, nameOverride?: string): ScopeColumn[] {
  return table.columns.map((c, i) => ({
    table: nameOverride ?? table.name, alias: nameOverride !== undefined ? null : ref?.alias ?? null, name: c.name, type: c.type, slot: offset + i,
  }));
}

function envOf(columns: readonly ScopeColumn[], params: readonly unknown[], noAggregates: string | null): BindEnv {
  return { columns, params, group: null, noAggregates };
}

function bindCondition(where: Expr | null, env: BindEnv): Bound | null {
  if (where === null) return null;
  const b = bindExpr(where, env);
  const c = b.type === 'BOOLEAN' ? b : coerce(b, 'BOOLEAN');
  if (c === null || (c.type !== 'BOOLEAN')) fail('TypeMismatch', `argument of WHERE must be type boolean, not type ${typeName(b.type)}`);
  return c;
}

function outputType(t: ExprType): SqlType {
  return t === 'UNKNOWN' ? 'TEXT' : t;
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Source {
  readonly table: TableDef;
  readonly reader: TableReader;
  /** An aggregating projection's stored rows carry its groups' state after the catalog columns. */
  readonly projection?: true;
}

function resolveSource(ref: TableRef, ctx: ExecuteContext): Source {
  let catalog = ctx.catalog;
  let reader = ctx.reader ?? ctx.writer;
  if (ref.asOf !== null) {
    if (ctx.historical === undefined) fail('Unsupported', 'AS OF needs a historical reader, which this context does not provide');
    const view = ctx.historical(ref.asOf);
    if ('code' in view) throw new SqlFault(view);
    catalog = view.catalog;
    reader = view.reader;
  }
  if (reader === undefined) fail('Unsupported', 'this context has no reader');
  if (ref.name === EVENTS_TABLE.name) {
    if (!reader.hasTable(EVENTS_TABLE.name)) fail('UndefinedTable', 'relation "__events" is not available here');
    return { table: EVENTS_TABLE, reader };
  }
  const table = mustTable(catalog, ref.name);
  if (ref.asOf !== null && !reader.hasTable(table.name)) fail('UndefinedTable', `relation "${table.name}" does not exist at that point in history`);
  assert(reader.hasTable(table.name), `the store has catalog table ${table.name}`);
  return findProjection(catalog, table.name) === undefined ? { table, reader } : { table, reader, projection: true };
}

function primaryKeyOf(table: TableDef, row: Row): Key {
  return table.primaryKey.map((c) => row[columnIndex(table, c)] as Value);
}

function* readPath(source: Source, path: AccessPath): Generator<Row> {
  const { table, reader } = source;
  switch (path.kind) {
    case 'fullScan':
      yield* reader.scan(table.name, path.reverse ? { reverse: true } : {});
      return;
    case 'indexScan': {
      const ranges = path.reverse ? [...path.ranges].reverse() : path.ranges;
      for (const range of ranges) {
        if (path.index === null && path.shape !== 'order' && isPoint(range, table.primaryKey.length)) {
          const row = reader.get(table.name, (range.lower as { key: Key }).key);
          if (row !== undefined) yield row;
          continue;
        }
        const options = { range, ...(path.reverse ? { reverse: true } : {}) };
        if (path.index === null) yield* reader.scan(table.name, options);
        else yield* reader.indexScan(table.name, path.index, options);
      }
      return;
    }
    case 'union': {
      const seen = new Map<string, Row>();
      for (const branch of path.branches) {
        for (const row of readPath(source, branch)) {
          const key = rowKey(primaryKeyOf(table, row));
          if (!seen.has(key)) seen.set(key, row);
          if (seen.size > limits.queryRowsMax) fail('TooManyRows', `query reads more than ${limits.queryRowsMax} rows`);
        }
      }
      const rows = [...seen.values()];
      rows.sort((a, b) => compareKeys(primaryKeyOf(table, a), primaryKeyOf(table, b)));
      yield* rows;
      return;
    }
    default: assertNever(path);
  }
}

function isPoint(range: { lower?: { key: Key; inclusive: boolean }; upper?: { key: Key; inclusive: boolean } }, keyLength: number): boolean {
  const { lower, upper } = range;
  return lower !== undefined && upper !== undefined && lower.inclusive && upper.inclusive && lower.key.length === keyLength &&
    compareKeys(lower.key, upper.key) === 0;
}

/** Rows of `source` matching `where`, in the path's order, lazily. */
function* matching(source: Source, path: AccessPath, where: Bound | null): Generator<Row> {
  for (const row of readPath(source, path)) {
    assert(source.projection === true ? row.length >= source.table.columns.length : row.length === source.table.columns.length,
      `row of ${source.table.name} has ${source.table.columns.length} columns`);
    if (where === null || where.eval(row) === true) yield row;
  }
}

// ---------------------------------------------------------------------------------------------
// SELECT

interface OutputColumn {
  readonly name: string;
  readonly bound: Bound;
}

function expandItems(items: readonly SelectItem[], scope: readonly ScopeColumn[], env: BindEnv, table: TableDef | null): OutputColumn[] {
  const out: OutputColumn[] = [];
  for (const item of items) {
    if (item.kind === 'star') {
      if (table === null) fail('SyntaxError', 'SELECT * with no tables specified is not valid');
      if (env.group !== null) fail('GroupingError', `column "${table.name}.${table.columns[0]?.name ?? ''}" must appear in the GROUP BY clause or be used in an aggregate function`);
      if (item.alias !== null && !scope.some((c) => c.alias === item.alias || (c.alias === null && c.table === item.alias))) {
        fail('UndefinedTable', `missing FROM-clause entry for table "${item.alias}"`);
      }
      for (const c of scope) out.push({ name: c.name, bound: bindExpr({ kind: 'column', table: null, name: c.name }, env) });
      continue;
    }
    out.push({ name: item.alias ?? item.defaultName, bound: bindExpr(item.expr as Expr, env) });
  }
  if (out.length > limits.tableColumnsMax * 4) fail('Unsupported', 'too many output columns');
  return out;
}

function hasAggregate(e: Expr): boolean {
  switch (e.kind) {
    case 'aggregate': return true;
    case 'literal': case 'param': case 'column': return false;
    case 'unary': case 'isNull': case 'isBool': case 'cast': return hasAggregate(e.operand);
    case 'binary': return hasAggregate(e.left) || hasAggregate(e.right);
    case 'in': return hasAggregate(e.operand) || e.list.some(hasAggregate);
    case 'between': return hasAggregate(e.operand) || hasAggregate(e.low) || hasAggregate(e.high);
    case 'like': return hasAggregate(e.operand) || hasAggregate(e.pattern);
    default: return assertNever(e);
  }
}

function constantCount(e: Expr | null, env: BindEnv, clause: string): number | null {
  if (e === null) return null;
  const b = bindExpr(e, { ...env, noAggregates: clause });
  if (b.constant === null) fail('Unsupported', `${clause} must be a constant or a parameter`);
  const c = coerce(b, 'BIGINT');
  if (c === null || c.type !== 'BIGINT') fail('TypeMismatch', `argument of ${clause} must be type bigint, not type ${typeName(b.type)}`);
  const v = (c.constant as { value: Value }).value;
  if (v === null) return null;
  if ((v as bigint) < 0n) fail(clause === 'LIMIT' ? 'InvalidRowCount' : 'InvalidOffset', `${clause} must not be negative`);
  return Number(v as bigint > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : (v as bigint));
}

interface SortKey {
  /** Evaluated over (input row, output row). */
  readonly value: (input: Row, output: Row) => Value;
  readonly descending: boolean;
  readonly nullsFirst: boolean;
}

function bindOrder(item: OrderItem, outputs: readonly OutputColumn[], env: BindEnv, distinct: boolean): SortKey {
  const e = item.expr;
  const nullsFirst = item.nullsFirst ?? item.descending;
  const byOutput = (i: number): SortKey => ({ value: (_in, out) => out[i] as Value, descending: item.descending, nullsFirst });
  if (e.kind === 'literal' && e.literal === 'integer') {
    const n = Number(e.value);
    if (n < 1 || n > outputs.length) fail('InvalidColumnReference', `ORDER BY position ${String(e.value)} is not in select list`);
    return byOutput(n - 1);
  }
  if (e.kind === 'column' && e.table === null) {
    const matches = outputs.map((o, i) => (o.name === e.name ? i : -1)).filter((i) => i >= 0);
    if (matches.length > 1) fail('AmbiguousColumn', `ORDER BY "${e.name}" is ambiguous`);
    if (matches.length === 1) return byOutput(matches[0] as number);
  }
  const bound = bindExpr(e, env);
  if (distinct) {
    fail('InvalidColumnReference', 'for SELECT DISTINCT, ORDER BY expressions must appear in select list');
  }
  return { value: (input) => bound.eval(input), descending: item.descending, nullsFirst };
}

function compareForSort(keys: readonly SortKey[]): (a: SortRow, b: SortRow) => number {
  return (a, b) => {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as SortKey;
      const x = a.keys[i] as Value;
      const y = b.keys[i] as Value;
      if (x === null || y === null) {
        if (x === null && y === null) continue;
        return (x === null) === key.nullsFirst ? -1 : 1;
      }
      const c = compareValues(x, y);
      if (c !== 0) return key.descending ? -c : c;
    }
    return a.ordinal - b.ordinal;
  };
}

interface SortRow {
  readonly keys: readonly Value[];
  readonly output: Row;
  readonly ordinal: number;
}

function runSelect(s: SelectStatement, params: readonly unknown[], ctx: ExecuteContext, explain: boolean): QueryResult {
  const source = s.from === null ? null : resolveSource(s.from, ctx);
  const table = source?.table ?? null;
  const scope = table === null ? [] : scopeOf(table, s.from);
  const env = envOf(scope, params, null);
  const where = bindCondition(s.where, { ...env, noAggregates: 'WHERE' });
  const limit = constantCount(s.limit, env, 'LIMIT');
  const offset = constantCount(s.offset, env, 'OFFSET') ?? 0;
  const aggregate = s.groupBy.length > 0 || s.items.some((i) => i.expr !== null && hasAggregate(i.expr)) || s.orderBy.some((o) => hasAggregate(o.expr));

  let outputs: OutputColumn[];
  let sortKeys: SortKey[];
  let group: GroupContext | null = null;
  if (aggregate) {
    const keyBounds = s.groupBy.map((g) => {
      if (g.kind === 'literal' && g.literal === 'integer') fail('Unsupported', 'GROUP BY position numbers are not supported: name the column');
      return bindExpr(g, { ...env, noAggregates: 'GROUP BY' });
    });
    group = { keys: s.groupBy.map(exprKey), keyTypes: keyBounds.map((b) => b.type), aggregates: [], aggregateKeys: [], inner: env };
    const groupEnv: BindEnv = { columns: scope, params, group, noAggregates: null };
    outputs = expandItems(s.items, scope, groupEnv, table);
    sortKeys = s.orderBy.map((o) => bindOrder(o, outputs, groupEnv, s.distinct));
    const plan = source === null || table === null ? null : planAccess(table, s.where, [], env, ctx.forceFullScan === true);
    if (explain) return explainResult(s, plan, { sort: sortKeys.length > 0, aggregate: true, limit, offset });
    const groups = aggregateRows(source, plan, where, keyBounds, group.aggregates, s.groupBy.length === 0);
    return finish(s, outputs, sortKeys, groups.map((g) => ({ input: g, output: outputs.map((o) => o.bound.eval(g)) })), limit, offset);
  }
  outputs = expandItems(s.items, scope, env, table);
  sortKeys = s.orderBy.map((o) => bindOrder(o, outputs, env, s.distinct));
  const plan = source === null || table === null ? null : planAccess(table, s.where, s.orderBy, env, ctx.forceFullScan === true);
  const needSort = sortKeys.length > 0 && !(plan !== null && plan.ordered);
  if (explain) return explainResult(s, plan, { sort: needSort, aggregate: false, limit, offset });
  const stopAfter = !needSort && !s.distinct && limit !== null ? offset + limit : null;
  const produced: { input: Row; output: Row }[] = [];
  if (stopAfter !== 0) {
    const rows: Iterable<Row> = source === null || plan === null ? (where === null || where.eval([]) === true ? [[]] : []) : matching(source, plan.path, where);
    for (const input of rows) {
      produced.push({ input, output: outputs.map((o) => o.bound.eval(input)) });
      if (produced.length > limits.queryRowsMax + offset) fail('TooManyRows', `query returns more than ${limits.queryRowsMax} rows`);
      if (stopAfter !== null && produced.length >= stopAfter) break;
    }
  }
  return finish(s, outputs, needSort ? sortKeys : [], produced, limit, offset);
}

function aggregateRows(source: Source | null, plan: Plan | null, where: Bound | null, keys: readonly Bound[], specs: readonly AggregateSpec[], single: boolean): Row[] {
  const groups = new Map<string, { key: Value[]; accumulators: ReturnType<typeof newAccumulator>[] }>();
  const rows: Iterable<Row> = source === null || plan === null ? (where === null || where.eval([]) === true ? [[]] : []) : matching(source, plan.path, where);
  for (const row of rows) {
    const key = keys.map((k) => k.eval(row));
    const id = rowKey(key);
    let g = groups.get(id);
    if (g === undefined) {
      g = { key, accumulators: specs.map(newAccumulator) };
      groups.set(id, g);
    }
    for (const a of g.accumulators) a.add(row);
  }
  if (single && groups.size === 0) groups.set('', { key: [], accumulators: specs.map(newAccumulator) });
  // Groups come out in the order of their first row: deterministic for a given snapshot.
  return [...groups.values()].map((g) => [...g.key, ...g.accumulators.map((a) => a.result())]);
}

function finish(s: SelectStatement, outputs: readonly OutputColumn[], sortKeys: readonly SortKey[], rows: { input: Row; output: Row }[], limit: number | null, offset: number): QueryResult {
  let list = rows;
  if (s.distinct) {
    const seen = new Set<string>();
    list = list.filter((r) => {
      const k = rowKey(r.output);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
  let out: Row[];
  if (sortKeys.length > 0) {
    const sortable: SortRow[] = list.map((r, ordinal) => ({ keys: sortKeys.map((k) => k.value(r.input, r.output)), output: r.output, ordinal }));
    sortable.sort(compareForSort(sortKeys));
    out = sortable.map((r) => r.output);
  } else {
    out = list.map((r) => r.output);
  }
  const end = limit === null ? out.length : Math.min(out.length, offset + limit);
  out = out.slice(Math.min(offset, out.length), end);
  if (out.length > limits.queryRowsMax) fail('TooManyRows', `query returns more than ${limits.queryRowsMax} rows`);
  return { columns: outputs.map((o) => ({ name: o.name, type: outputType(o.bound.type) })), rows: out, rowsAffected: out.length };
}

function explainResult(s: SelectStatement, plan: Plan | null, o: { sort: boolean; aggregate: boolean; limit: number | null; offset: number }): QueryResult {
  const rows: Row[] = [];
  const tableName = s.from?.name ?? null;
  const add = (operation: string, index: string | null, detail: string): void => { rows.push([rows.length + 1, operation, tableName, index, detail]); };
  if (s.from !== null && s.from.asOf !== null) {
    const a = s.from.asOf;
    add('Snapshot', null, a.kind === 'position' ? `AS OF POSITION ${a.position}` : `AS OF TIMESTAMP ${a.timestampMicros} µs`);
  }
  if (plan === null) add('Result', null, 'one row, no table');
  else for (const step of describePath(plan.path, tableName as string)) add(step.operation, step.index, step.detail);
  if (s.where !== null) add('Filter', null, 'WHERE re-checked on every row read');
  if (o.aggregate) add('Aggregate', null, s.groupBy.length > 0 ? `GROUP BY ${s.groupBy.length} key(s)` : 'one group');
  if (s.distinct) add('Distinct', null, 'by output row');
  if (o.sort) add('Sort', null, `${s.orderBy.length} key(s)`);
  else if (s.orderBy.length > 0) add('Index Order', null, 'ORDER BY satisfied by the scan order, no sort');
  if (o.limit !== null) {
    const early = !o.sort && !o.aggregate && !s.distinct;
    add('Limit', null, `${o.limit} row(s) after ${o.offset}${early ? '; stops the scan early' : ''}`);
  }
  return {
    columns: [{ name: 'step', type: 'INTEGER' }, { name: 'operation', type: 'TEXT' }, { name: 'table_name', type: 'TEXT' },
      { name: 'index_name', type: 'TEXT' }, { name: 'detail', type: 'TEXT' }],
    rows, rowsAffected: rows.length,
  };
}

// ---------------------------------------------------------------------------------------------
// DML

function writeTarget(ref: TableRef, ctx: ExecuteContext, what: string): { table: TableDef; writer: TableWriter } {
  const writer = mustWriter(ctx, what);
  if (ref.name === EVENTS_TABLE.name) fail('Unsupported', '__events is read-only: events are derived from the log');
  const table = mustTable(ctx.catalog, ref.name);
  if (findProjection(ctx.catalog, table.name) !== undefined) fail('Unsupported', `"${table.name}" is a projection: its rows are derived from its tables, write to those`);
  if (!writer.hasTable(table.name)) assert(false, `the store has catalog table ${table.name}`);
  if (projectionsOn(ctx.catalog, table.name).length === 0) return { table, writer };
  return { table, writer: new MaintainingWriter(writer, ctx.stateWriter ?? writer, ctx.catalog, ctx.onDerived) };
}

/** Refuses DDL that would change a projection's table, or a table a projection reads. */
function checkNotDerived(ctx: ExecuteContext, table: string, what: string): void {
  if (findProjection(ctx.catalog, table) !== undefined) fail('Unsupported', `${what} of projection "${table}" is not supported: DROP PROJECTION and create it again`);
  const users = projectionsOn(ctx.catalog, table);
  if (users.length > 0) {
    fail('DependentObjects', `cannot ${what} "${table}": projection ${users.map((p) => `"${p.name}"`).join(', ')} depends on it (DROP PROJECTION first)`);
  }
}

function checkRow(table: TableDef, row: Value[]): void {
  table.columns.forEach((c, i) => {
    const v = row[i] as Value;
    if (v === null && (c.notNull || table.primaryKey.includes(c.name))) {
      fail('NotNullViolation', `null value in column "${c.name}" of relation "${table.name}" violates not-null constraint`);
    }
    if (!valueHasType(v, c.type)) assert(false, `value for ${table.name}.${c.name} has type ${c.type}`);
  });
}

function indexKey(table: TableDef, index: IndexDef, row: Row): Key {
  return index.columns.map((c) => row[columnIndex(table, c)] as Value);
}

/** The first existing row (other than the one with primary key `self`) that `row` conflicts
 * with on the primary key or a unique index, with the constraint's name. */
function findConflict(writer: TableReader, table: TableDef, row: Row, self: Key | null, only: readonly IndexDef[] | 'pk' | 'all'): { existing: Row; constraint: string } | null {
  const pk = primaryKeyOf(table, row);
  if (only === 'pk' || only === 'all') {
    if (self === null || compareKeys(pk, self) !== 0) {
      const existing = writer.get(table.name, pk);
      if (existing !== undefined) return { existing, constraint: `${table.name}_pkey` };
    }
  }
  const indexes = only === 'all' ? table.indexes.filter((i) => i.unique) : only === 'pk' ? [] : only;
  for (const index of indexes) {
    const key = indexKey(table, index, row);
    if (key.some((v) => v === null)) continue;
    for (const existing of writer.indexScan(table.name, index.name, { range: { lower: { key, inclusive: true }, upper: { key, inclusive: true } } })) {
      if (self !== null && compareKeys(primaryKeyOf(table, existing), self) === 0) continue;
      if (compareKeys(indexKey(table, index, existing), key) === 0) return { existing, constraint: index.name };
    }
  }
  return null;
}

function uniqueViolation(table: TableDef, conflict: { existing: Row; constraint: string }): never {
  return fail('UniqueViolation', `duplicate key value violates unique constraint "${conflict.constraint}" on "${table.name}"`);
}

function returningOf(items: readonly SelectItem[], table: TableDef, ref: TableRef, params: readonly unknown[]): { outputs: OutputColumn[]; columns: ColumnInfo[] } {
  const scope = scopeOf(table, ref);
  const outputs = items.length === 0 ? [] : expandItems(items, scope, envOf(scope, params, 'RETURNING'), table);
  return { outputs, columns: outputs.map((o) => ({ name: o.name, type: outputType(o.bound.type) })) };
}

function runInsert(s: Statement & { kind: 'insert' }, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  const { table, writer } = writeTarget(s.table, ctx, 'INSERT');
  const targetColumns = s.columns ?? table.columns.map((c) => c.name);
  const seen = new Set<string>();
  const positions = targetColumns.map((name) => {
    const i = columnIndex(table, name);
    if (i < 0) fail('UndefinedColumn', `column "${name}" of relation "${table.name}" does not exist`);
    if (seen.has(name)) fail('DuplicateColumn', `column "${name}" specified more than once`);
    seen.add(name);
    return i;
  });
  const env = envOf([], params, 'VALUES');
  const rowsBound = s.rows.map((values) => {
    if (values.length > targetColumns.length) fail('SyntaxError', 'INSERT has more expressions than target columns');
    if (values.length < targetColumns.length && s.columns !== null) fail('SyntaxError', 'INSERT has more target columns than expressions');
    return values.map((v, i) => {
      const column = table.columns[positions[i] as number] as ColumnDef;
      return v === 'default' ? null : bindAssignment(bindExpr(v, env), column.type, column.name);
    });
  });
  const { outputs, columns } = returningOf(s.returning, table, s.table, params);
  const conflict = s.onConflict;
  let arbiter: readonly IndexDef[] | 'pk' | 'all' = 'all';
  let update: { set: { slot: number; bound: Bound }[]; where: Bound | null } | null = null;
  if (conflict !== null) {
    if (conflict.target !== null) arbiter = arbiterFor(table, conflict.target);
    if (conflict.action === 'update') {
      const scope = [...scopeOf(table, s.table), ...scopeOf(table, null, table.columns.length, 'excluded')];
      const uenv = envOf(scope, params, 'ON CONFLICT DO UPDATE');
      update = {
        set: conflict.set.map((a) => {
          const slot = columnIndex(table, a.column);
          if (slot < 0) fail('UndefinedColumn', `column "${a.column}" of relation "${table.name}" does not exist`);
          return { slot, bound: assignmentBound(table, slot, a.value, uenv) };
        }),
        where: bindCondition(conflict.where, uenv),
      };
    }
  }
  const returned: Row[] = [];
  let affected = 0;
  const touched = new Set<string>();
  for (const bounds of rowsBound) {
    const row: Value[] = table.columns.map((c) => c.default);
    bounds.forEach((b, i) => {
      const slot = positions[i] as number;
      row[slot] = b === null ? (table.columns[slot] as ColumnDef).default : b.eval([]);
    });
    checkRow(table, row);
    const clash = findConflict(writer, table, row, null, conflict === null ? 'all' : arbiter);
    if (clash !== null && conflict !== null) {
      if (update === null) continue;
      const existingKey = primaryKeyOf(table, clash.existing);
      const id = rowKey(existingKey);
      if (touched.has(id)) fail('CardinalityViolation', 'ON CONFLICT DO UPDATE command cannot affect row a second time');
      const combined = [...clash.existing, ...row];
      if (update.where !== null && update.where.eval(combined) !== true) continue;
      const next = [...clash.existing];
      for (const a of update.set) next[a.slot] = a.bound.eval(combined);
      checkRow(table, next);
      const other = findConflict(writer, table, next, existingKey, 'all');
      if (other !== null) uniqueViolation(table, other);
      writer.update(table.name, existingKey, next);
      touched.add(rowKey(primaryKeyOf(table, next)));
      affected++;
      if (outputs.length > 0) returned.push(outputs.map((o) => o.bound.eval(next)));
      continue;
    }
    if (clash !== null) uniqueViolation(table, clash);
    const other = conflict === null ? null : findConflict(writer, table, row, null, 'all');
    if (other !== null) uniqueViolation(table, other);
    writer.insert(table.name, row);
    touched.add(rowKey(primaryKeyOf(table, row)));
    affected++;
    if (outputs.length > 0) returned.push(outputs.map((o) => o.bound.eval(row)));
  }
  return { columns, rows: returned, rowsAffected: affected };
}

function arbiterFor(table: TableDef, target: readonly string[]): readonly IndexDef[] | 'pk' {
  for (const c of target) {
    if (columnIndex(table, c) < 0) fail('UndefinedColumn', `column "${c}" does not exist`);
  }
  const same = (cols: readonly string[]): boolean => cols.length === target.length && cols.every((c) => target.includes(c));
  if (same(table.primaryKey)) return 'pk';
  const indexes = table.indexes.filter((i) => i.unique && same(i.columns));
  if (indexes.length === 0) fail('InvalidColumnReference', 'there is no unique or exclusion constraint matching the ON CONFLICT specification');
  return indexes;
}

function targetRows(table: TableDef, ref: TableRef, where: Expr | null, params: readonly unknown[], ctx: ExecuteContext, writer: TableWriter): { rows: Row[]; scope: ScopeColumn[] } {
  const scope = scopeOf(table, ref);
  const env = envOf(scope, params, 'WHERE');
  const bound = bindCondition(where, env);
  const plan = planAccess(table, where, [], env, ctx.forceFullScan === true);
  const rows: Row[] = [];
  for (const row of matching({ table, reader: writer }, plan.path, bound)) {
    rows.push(row);
    if (rows.length > limits.queryRowsMax) fail('TooManyRows', `statement affects more than ${limits.queryRowsMax} rows`);
  }
  return { rows, scope };
}

function assignmentBound(table: TableDef, slot: number, value: Expr | 'default', env: BindEnv): Bound {
  const column = table.columns[slot] as ColumnDef;
  if (value === 'default') {
    const v = column.default;
    return { type: column.type, param: false, constant: { value: v }, eval: () => v };
  }
  return bindAssignment(bindExpr(value, env), column.type, column.name);
}

function runUpdate(s: Statement & { kind: 'update' }, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  const { table, writer } = writeTarget(s.table, ctx, 'UPDATE');
  const { rows, scope } = targetRows(table, s.table, s.where, params, ctx, writer);
  const env = envOf(scope, params, 'UPDATE');
  const seen = new Set<string>();
  const set = s.set.map((a) => {
    const slot = columnIndex(table, a.column);
    if (slot < 0) fail('UndefinedColumn', `column "${a.column}" of relation "${table.name}" does not exist`);
    if (seen.has(a.column)) fail('DuplicateColumn', `multiple assignments to same column "${a.column}"`);
    seen.add(a.column);
    return { slot, bound: assignmentBound(table, slot, a.value, env) };
  });
  const { outputs, columns } = returningOf(s.returning, table, s.table, params);
  const returned: Row[] = [];
  for (const row of rows) {
    const next = [...row];
    for (const a of set) next[a.slot] = a.bound.eval(row);
    checkRow(table, next);
    const key = primaryKeyOf(table, row);
    const clash = findConflict(writer, table, next, key, 'all');
    if (clash !== null) uniqueViolation(table, clash);
    writer.update(table.name, key, next);
    if (outputs.length > 0) returned.push(outputs.map((o) => o.bound.eval(next)));
  }
  return { columns, rows: returned, rowsAffected: rows.length };
}

function runDelete(s: Statement & { kind: 'delete' }, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  const { table, writer } = writeTarget(s.table, ctx, 'DELETE');
  const { rows } = targetRows(table, s.table, s.where, params, ctx, writer);
  const { outputs, columns } = returningOf(s.returning, table, s.table, params);
  const returned: Row[] = [];
  for (const row of rows) {
    writer.delete(table.name, primaryKeyOf(table, row));
    if (outputs.length > 0) returned.push(outputs.map((o) => o.bound.eval(row)));
  }
  return { columns, rows: returned, rowsAffected: rows.length };
}

// ---------------------------------------------------------------------------------------------
// DDL

function ddlResult(ctx: ExecuteContext, change: CatalogChange): QueryResult {
  applyCatalogChange(ctx.catalog, change);
  return { columns: [], rows: [], rowsAffected: 0, catalogChange: change };
}

function checkNewName(ctx: ExecuteContext, name: string): void {
  if (name.startsWith('__')) fail('InvalidTableDefinition', `names starting with "__" are reserved ("${name}")`);
  if (findTable(ctx.catalog, name) !== undefined || findIndex(ctx.catalog, name) !== undefined) {
    fail('DuplicateTable', `relation "${name}" already exists`);
  }
}

function constantDefault(spec: { name: string; type: SqlType; default: Expr | null }, params: readonly unknown[]): Value {
  if (spec.default === null) return null;
  const b = bindExpr(spec.default, envOf([], params, 'DEFAULT expressions'));
  if (b.constant === null || b.param) fail('Unsupported', `DEFAULT for column "${spec.name}" must be a constant`);
  const c = bindAssignment(b, spec.type, spec.name);
  return (c.constant as { value: Value }).value;
}

function runCreateTable(s: Statement & { kind: 'createTable' }, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'CREATE TABLE');
  if (findTable(ctx.catalog, s.name) !== undefined && s.ifNotExists) return { columns: [], rows: [], rowsAffected: 0 };
  checkNewName(ctx, s.name);
  if (ctx.catalog.tables.length >= limits.tenantTablesMax) fail('Unsupported', `a tenant may have at most ${limits.tenantTablesMax} tables`);
  if (s.columns.length === 0) fail('InvalidTableDefinition', 'a table needs at least one column');
  if (s.columns.length > limits.tableColumnsMax) fail('InvalidTableDefinition', `tables can have at most ${limits.tableColumnsMax} columns`);
  const names = new Set<string>();
  for (const c of s.columns) {
    if (names.has(c.name)) fail('DuplicateColumn', `column "${c.name}" specified more than once`);
    names.add(c.name);
  }
  const inline = s.columns.filter((c) => c.primaryKey).map((c) => c.name);
  if (inline.length > 0 && s.primaryKey !== null) fail('InvalidTableDefinition', `multiple primary keys for table "${s.name}" are not allowed`);
  if (inline.length > 1) fail('InvalidTableDefinition', `multiple primary keys for table "${s.name}" are not allowed`);
  const primaryKey = s.primaryKey ?? inline;
  if (primaryKey.length === 0) {
    fail('InvalidTableDefinition', `table "${s.name}" needs a PRIMARY KEY: VerityDB keys every row's history by it`);
  }
  checkColumnList(primaryKey, names, 'PRIMARY KEY');
  if (primaryKey.some((c) => (s.columns.find((col) => col.name === c) as { type: SqlType }).type === 'JSON')) {
    fail('Unsupported', 'JSON columns cannot be part of a key');
  }
  const columns: ColumnDef[] = s.columns.map((c) => ({
    name: c.name, type: c.type, notNull: c.notNull || primaryKey.includes(c.name), default: constantDefault(c, params),
  }));
  const uniqueLists = [...s.columns.filter((c) => c.unique).map((c) => [c.name]), ...s.uniques];
  const indexes: IndexDef[] = [];
  for (const cols of uniqueLists) {
    checkColumnList(cols, names, 'UNIQUE');
    let name = `${s.name}_${cols.join('_')}_key`.slice(0, limits.identifierBytesMax);
    for (let n = 1; indexes.some((i) => i.name === name) || findIndex(ctx.catalog, name) !== undefined || findTable(ctx.catalog, name) !== undefined; n++) {
      name = `${s.name}_${cols.join('_')}_key${n}`.slice(0, limits.identifierBytesMax);
    }
    indexes.push({ name, columns: cols, unique: true });
  }
  indexes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const table: TableDef = { name: s.name, columns, primaryKey, indexes };
  const result = ddlResult(ctx, { kind: 'createTable', table });
  writer.createTable(table.name, tableLayout(table));
  for (const index of indexes) writer.createIndex(table.name, index.name, indexLayout(table, index));
  return result;
}

function checkColumnList(cols: readonly string[], names: ReadonlySet<string>, what: string): void {
  const seen = new Set<string>();
  for (const c of cols) {
    if (!names.has(c)) fail('UndefinedColumn', `column "${c}" named in ${what} does not exist`);
    if (seen.has(c)) fail('DuplicateColumn', `column "${c}" appears twice in ${what}`);
    seen.add(c);
  }
}

function runDropTable(s: Statement & { kind: 'dropTable' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'DROP TABLE');
  if (s.names.length !== 1) fail('Unsupported', 'DROP TABLE of several tables in one statement is not supported');
  const name = s.names[0] as string;
  const table = findTable(ctx.catalog, name);
  if (table === undefined) {
    if (s.ifExists) return { columns: [], rows: [], rowsAffected: 0 };
    fail('UndefinedTable', `table "${name}" does not exist`);
  }
  if (findProjection(ctx.catalog, name) !== undefined) fail('Unsupported', `"${name}" is a projection: use DROP PROJECTION`);
  checkNotDerived(ctx, name, 'DROP TABLE');
  const result = ddlResult(ctx, { kind: 'dropTable', name });
  writer.dropTable(name);
  return result;
}

function runCreateIndex(s: Statement & { kind: 'createIndex' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'CREATE INDEX');
  const table = mustTable(ctx.catalog, s.table);
  if (s.ifNotExists && findIndex(ctx.catalog, s.name) !== undefined) return { columns: [], rows: [], rowsAffected: 0 };
  checkNewName(ctx, s.name);
  checkColumnList(s.columns, new Set(table.columns.map((c) => c.name)), 'CREATE INDEX');
  if (s.columns.some((c) => table.columns[columnIndex(table, c)]?.type === 'JSON')) fail('Unsupported', 'JSON columns cannot be indexed');
  const index: IndexDef = { name: s.name, columns: s.columns, unique: s.unique };
  if (s.unique) {
    const seen = new Set<string>();
    for (const row of writer.scan(table.name)) {
      const key = indexKey(table, index, row);
      if (key.some((v) => v === null)) continue;
      const id = rowKey(key);
      if (seen.has(id)) fail('UniqueViolation', `could not create unique index "${s.name}": key (${s.columns.join(', ')}) is duplicated`);
      seen.add(id);
    }
  }
  const result = ddlResult(ctx, { kind: 'createIndex', table: table.name, index });
  writer.createIndex(table.name, index.name, indexLayout(table, index));
  return result;
}

function runDropIndex(s: Statement & { kind: 'dropIndex' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'DROP INDEX');
  const found = findIndex(ctx.catalog, s.name);
  if (found === undefined) {
    if (s.ifExists) return { columns: [], rows: [], rowsAffected: 0 };
    fail('UndefinedObject', `index "${s.name}" does not exist`);
  }
  const result = ddlResult(ctx, { kind: 'dropIndex', table: found.table.name, name: s.name });
  writer.dropIndex(found.table.name, s.name);
  return result;
}

function runAddColumn(s: Statement & { kind: 'addColumn' }, params: readonly unknown[], ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'ALTER TABLE');
  const table = mustTable(ctx.catalog, s.table);
  if (findProjection(ctx.catalog, table.name) !== undefined) checkNotDerived(ctx, table.name, 'ALTER TABLE');
  if (columnIndex(table, s.column.name) >= 0) fail('DuplicateColumn', `column "${s.column.name}" of relation "${table.name}" already exists`);
  if (table.columns.length >= limits.tableColumnsMax) fail('InvalidTableDefinition', `tables can have at most ${limits.tableColumnsMax} columns`);
  const column: ColumnDef = { name: s.column.name, type: s.column.type, notNull: s.column.notNull, default: constantDefault(s.column, params) };
  if (column.notNull && column.default === null && writer.rowCount(table.name) > 0) {
    fail('NotNullViolation', `column "${column.name}" of relation "${table.name}" contains null values`);
  }
  const change: CatalogChange = { kind: 'addColumn', table: table.name, column };
  const next = applyCatalogChange(ctx.catalog, change);
  const result = ddlResult(ctx, change);
  writer.alterTable(table.name, tableLayout(mustTable(next, table.name)), (row) => [...row, column.default]);
  return result;
}

function runDropColumn(s: Statement & { kind: 'dropColumn' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'ALTER TABLE');
  const table = mustTable(ctx.catalog, s.table);
  checkNotDerived(ctx, table.name, 'ALTER TABLE … DROP COLUMN');
  const position = columnIndex(table, s.column);
  if (position < 0) {
    if (s.ifExists) return { columns: [], rows: [], rowsAffected: 0 };
    fail('UndefinedColumn', `column "${s.column}" of relation "${table.name}" does not exist`);
  }
  if (table.primaryKey.includes(s.column)) fail('DependentObjects', `cannot drop column "${s.column}": it is part of the primary key`);
  if (table.columns.length === 1) fail('InvalidTableDefinition', 'cannot drop the only column of a table');
  const change: CatalogChange = { kind: 'dropColumn', table: table.name, name: s.column };
  const next = mustTable(applyCatalogChange(ctx.catalog, change), table.name);
  const result = ddlResult(ctx, change);
  // Index layouts hold column positions, which shift: drop every index, rewrite, recreate the survivors.
  for (const index of table.indexes) writer.dropIndex(table.name, index.name);
  writer.alterTable(table.name, tableLayout(next), (row) => row.filter((_v, i) => i !== position));
  for (const index of next.indexes) writer.createIndex(table.name, index.name, indexLayout(next, index));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Projections

function runCreateProjection(s: Statement & { kind: 'createProjection' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'CREATE PROJECTION');
  checkNewName(ctx, s.name);
  if (ctx.catalog.tables.length >= limits.tenantTablesMax) fail('Unsupported', `a tenant may have at most ${limits.tenantTablesMax} tables`);
  const compiled = compileProjection(s, ctx.catalog);
  const result = ddlResult(ctx, { kind: 'createProjection', table: compiled.visible, projection: compiled.def });
  createProjection(compiled, writer, ctx.stateWriter ?? writer, ctx.onDerived);
  return result;
}

function runDropProjection(s: Statement & { kind: 'dropProjection' }, ctx: ExecuteContext): QueryResult {
  const writer = mustWriter(ctx, 'DROP PROJECTION');
  const def = findProjection(ctx.catalog, s.name);
  if (def === undefined) {
    if (s.ifExists) return { columns: [], rows: [], rowsAffected: 0 };
    fail('UndefinedTable', `projection "${s.name}" does not exist`);
  }
  const compiled = compiledProjection(ctx.catalog, def);
  const result = ddlResult(ctx, { kind: 'dropProjection', name: s.name });
  dropProjection(compiled, writer, ctx.stateWriter ?? writer);
  return result;
}
