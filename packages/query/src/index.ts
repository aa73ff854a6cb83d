/**
 * @veritydb/query — VerityDB's SQL subset (DESIGN §8): pre-pass + node-sql-parser → our own
 * statement nodes → planner → executor over the `TableReader`/`TableWriter` contract.
 * Pure and deterministic: no I/O, no clock, no randomness.
 */
export type { AsOf, Statement, SelectStatement, Expr, TableRef, StatementKind, CreateProjectionStatement, ProjectionSource } from './ast.js';
export {
  emptyCatalog, applyCatalogChange, findProjection, projectionsOn, type ProjectionDef, encodeCatalog, decodeCatalog, findTable, findIndex, tableLayout, indexLayout,
  type Catalog, type CatalogChange, type TableDef, type ColumnDef, type IndexDef,
} from './catalog.js';
export { SQL_ERROR_STATES, type SqlError, type SqlErrorCode, type Result } from './errors.js';
export {
  execute, EVENTS_TABLE, type ExecuteContext, type ExecuteResult, type QueryResult, type ColumnInfo, type HistoricalView,
} from './execute.js';
export { prepare, prepareUncached, StatementCache, type Prepared } from './prepare.js';
export { parseTimestampText, timestampText, valueToText, type ExprType } from './values.js';
export {
  recomputeProjection, compiledProjection, projectionStateTables, PROJECTION_STATE_PREFIX, PROJECTION_TABLES_MAX,
  type DerivedChange, type DerivedSink, type CompiledProjection,
} from './projection.js';
