import { position as toPosition, type Position, type Row } from '@veritydb/types';
import type { WriteBatch } from '@veritydb/store';
import {
  applyCatalogChange, execute, findTable, prepare, SQL_ERROR_STATES, type AsOf, type Catalog, type ColumnInfo,
  type DerivedChange, type HistoricalView, type SqlError, type Statement as SqlStatement, type TableDef,
} from '@veritydb/query';
import type { Statement } from './codec/command.js';
import { ownedKeyToJson, RecordingWriter, rowToJson, TENANT_STREAM, type PendingEvent, type TableShape } from './events.js';
import type { KernelError } from './kernel.js';

/** What one statement of a batch produced: rows from RETURNING (or a read), rows changed. */
export interface StatementOutcome {
  readonly rowsAffected: number;
  readonly columns: readonly ColumnInfo[];
  readonly rows: readonly Row[];
}

export type ReadOutcome =
  | { readonly ok: true; readonly position: Position; readonly columns: readonly ColumnInfo[]; readonly rows: readonly Row[] }
  | { readonly ok: false; readonly error: KernelError };

export type BatchOutcome =
  | { readonly ok: true; readonly catalog: Catalog; readonly statements: readonly StatementOutcome[]; readonly events: readonly PendingEvent[] }
  | { readonly ok: false; readonly error: KernelError; readonly stream: string };

/** Where `AS OF` clauses find their snapshots: the tenant's state at a past position. */
export interface History {
  readonly head: Position;
  /** The tenant's catalog and reader at `at`, or undefined if the tenant did not exist then. */
  view(at: Position): HistoricalView | undefined;
  /** The last position stamped at or before `micros` (0 if none). */
  positionAt(micros: number): Position;
}

/**
 * Runs a batch of statements through one write batch, in order, each seeing the previous
 * ones' writes and catalog changes. The first failure stops the batch: the caller aborts the
 * store batch and the catalog it started from stays in force.
 */
export function executeBatch(input: {
  readonly batch: WriteBatch;
  readonly catalog: Catalog;
  readonly statements: readonly Statement[];
  readonly history: History;
}): BatchOutcome {
  let catalog = input.catalog;
  const recorder = new RecordingWriter(input.batch, (table) => shapeOf(catalog, table));
  const historical = historicalResolver(input.history);
  const outcomes: StatementOutcome[] = [];
  for (let i = 0; i < input.statements.length; i++) {
    const statement = input.statements[i] as Statement;
    const prepared = prepare(statement.sql);
    if (!prepared.ok) return { ok: false, error: fromSqlError(prepared.error, i), stream: TENANT_STREAM };
    const result = execute(prepared.value, statement.params, {
      catalog, writer: recorder, stateWriter: input.batch, historical, onDerived: (change) => recorder.record(derivedEvent(change, input.history.head + 1)),
    });
    if (!result.ok) return { ok: false, error: fromSqlError(result.error, i), stream: targetTable(prepared.value.statement) };
    const change = result.result.catalogChange;
    if (change !== undefined) catalog = applyCatalogChange(catalog, change);
    for (const table of recorder.takeDdlTables()) {
      recorder.record({ stream: table, eventType: 'ddl', key: null, data: { sql: statement.sql, statement: i } });
    }
    outcomes.push({ rowsAffected: result.result.rowsAffected, columns: result.result.columns, rows: result.result.rows });
  }
  return { ok: true, catalog, statements: outcomes, events: recorder.events };
}

/** Runs one read-only statement at `at` (its `AS OF` clauses may pick other positions). */
export function executeRead(input: {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly at: Position;
  readonly history: History;
}): ReadOutcome {
  const prepared = prepare(input.sql);
  if (!prepared.ok) return { ok: false, error: fromSqlError(prepared.error, null) };
  if (!prepared.value.readOnly) {
    return { ok: false, error: { code: 'ReadOnly', sqlState: '25006', message: `${prepared.value.statement.kind} changes data: send it with execute()`, statement: null } };
  }
  const view = input.history.view(input.at);
  if (view === undefined) return { ok: false, error: { code: 'TenantNotFound', sqlState: null, message: `the tenant does not exist at position ${input.at}`, statement: null } };
  const result = execute(prepared.value, input.params, { catalog: view.catalog, reader: view.reader, historical: historicalResolver(input.history) });
  if (!result.ok) return { ok: false, error: fromSqlError(result.error, null) };
  return { ok: true, position: input.at, columns: result.result.columns, rows: result.result.rows };
}

function historicalResolver(history: History): (asOf: AsOf) => HistoricalView | SqlError {
  return (asOf) => {
    const at = asOf.kind === 'position' ? asOf.position : BigInt(history.positionAt(safeMicros(asOf.timestampMicros)));
    if (at < 1n) return invalidAsOf(asOf.kind === 'position' ? `AS OF POSITION ${at}: positions start at 1` : 'AS OF TIMESTAMP is before the first entry');
    if (at > BigInt(history.head)) return invalidAsOf(`AS OF POSITION ${at} is beyond the last applied position ${history.head}`);
    const view = history.view(toPosition(Number(at)));
    return view ?? invalidAsOf(`the tenant did not exist at position ${at}`);
  };
}

/** Timestamps beyond 2^53 µs (year 287 396) clamp: every entry is before them. */
function safeMicros(micros: bigint): number {
  return micros > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : micros < 0n ? -1 : Number(micros);
}

function invalidAsOf(message: string): SqlError {
  return { code: 'InvalidAsOf', sqlState: SQL_ERROR_STATES.InvalidAsOf, message };
}

function fromSqlError(error: SqlError, statement: number | null): KernelError {
  const base = { code: error.code, sqlState: error.sqlState, message: error.message, statement };
  return error.line === undefined || error.column === undefined ? base : { ...base, line: error.line, column: error.column };
}

/**
 * A projection row's change as an event of the projection's stream: `key` its primary key,
 * `data` `{row, cause}` — the row image (after insert/update, before delete) and the base-table
 * change that caused it (`{stream, key, position}`: the position is this entry's, the causing
 * base-table event precedes it in the same entry), or null for the back-fill at creation.
 */
function derivedEvent(change: DerivedChange, position: number): PendingEvent {
  const shape = tableShape(change.projection);
  const cause = change.cause === null ? null : (() => {
    const base = tableShape(change.cause.table);
    return { stream: change.cause.table.name, key: ownedKeyToJson(base, change.cause.key), position };
  })();
  return {
    stream: change.projection.name, eventType: change.eventType, key: ownedKeyToJson(shape, change.key),
    data: { row: rowToJson(shape, change.row), cause },
  };
}

function shapeOf(catalog: Catalog, table: string): TableShape | undefined {
  const def = findTable(catalog, table);
  return def === undefined ? undefined : tableShape(def);
}

/** Table definitions are immutable values that live across entries: describe each once. */
const shapes = new WeakMap<TableDef, TableShape>();

function tableShape(def: TableDef): TableShape {
  let shape = shapes.get(def);
  if (shape === undefined) {
    const columns = def.columns.map((c) => c.name);
    shape = { columns, types: def.columns.map((c) => c.type), primaryKey: def.primaryKey.map((c) => columns.indexOf(c)) };
    shapes.set(def, shape);
  }
  return shape;
}

/** The stream a failed statement is recorded under: the table it targets, if it names one. */
function targetTable(statement: SqlStatement): string {
  switch (statement.kind) {
    case 'insert':
    case 'update':
    case 'delete': return statement.table.name;
    case 'createTable': return statement.name;
    case 'dropTable': return statement.names[0] ?? TENANT_STREAM;
    case 'createIndex':
    case 'addColumn':
    case 'dropColumn': return statement.table;
    case 'select': return statement.from?.name ?? TENANT_STREAM;
    case 'explain': return statement.select.from?.name ?? TENANT_STREAM;
    case 'describe': return statement.table;
    case 'createProjection':
    case 'dropProjection': return statement.name;
    case 'dropIndex':
    case 'showProjections':
    case 'showTables': return TENANT_STREAM;
  }
}
