/**
 * Statements the differential test skips, in both engines, because they hit a known VerityDB
 * bug that is reported and not yet fixed. Each entry names the bug; remove it when the fix
 * lands (the differential test then covers the construct again). Deliberate deviations from
 * PostgreSQL are not listed here: the generator never produces them (see sqlgen.ts).
 *
 * @example knownBugOf(stmt, renderStatement(stmt), schema) === null   // compare this statement
 */
import type { RenderedStatement, Schema, Statement, TableDef } from './sqlgen.js';

interface KnownBug {
  /** What is wrong, precisely enough to find the report. */
  readonly bug: string;
  readonly matches: (stmt: Statement, rendered: RenderedStatement, schema: Schema) => boolean;
}

const KNOWN_BUGS: readonly KnownBug[] = [
  {
    bug: 'query: `INSERT INTO t VALUES (…) ON CONFLICT (k) DO UPDATE SET …` without a column list is a SyntaxError (node-sql-parser grammar; PostgreSQL accepts it)',
    matches: (stmt) => stmt.kind === 'insert' && stmt.columns === null && stmt.onConflict?.action === 'update',
  },
  {
    bug: 'query: `DELETE FROM t RETURNING …` without WHERE is a SyntaxError (node-sql-parser grammar; PostgreSQL accepts it)',
    matches: (stmt) => stmt.kind === 'delete' && stmt.where === null && stmt.returning !== null,
  },
  {
    bug: 'query: unary minus on an integer literal beyond 2^53 loses precision (`-9223372036854775807` is read as a double: '
      + 'INSERT stores -9223372036854775808, SELECT returns -9223372036854776000; `-9007199254740993` and `(- (- 9007199254740993))` give ±9007199254740992)',
    matches: (_stmt, rendered) => hasBigNegativeLiteral(rendered.sql),
  },
  {
    bug: 'query: a column declared `NOT NULL UNIQUE DEFAULT x` (in that order) loses NOT NULL: '
      + '`INSERT INTO t (k, c) VALUES (0, NULL)` and `UPDATE t SET c = NULL` succeed (other orders of the same clauses are enforced)',
    matches: (stmt, _rendered, schema) => assignsNullToNotNullUniqueDefault(stmt, schema),
  },
];

/** Whether the statement writes a NULL literal into a NOT NULL UNIQUE DEFAULT column (the
 * generator renders a column's clauses in exactly that order). */
function assignsNullToNotNullUniqueDefault(stmt: Statement, schema: Schema): boolean {
  if (stmt.kind !== 'insert' && stmt.kind !== 'update') return false;
  const table = schema.tables.find((tb) => tb.name === stmt.table);
  if (table === undefined) return false;
  const affected = (name: string): boolean => isNotNullUniqueDefault(table, name);
  if (stmt.kind === 'update') return stmt.set.some(([name, e]) => e.kind === 'null' && affected(name));
  const names = stmt.columns ?? table.columns.map((c) => c.name);
  const inRows = stmt.rows.some((row) => row.some((e, i) => e.kind === 'null' && affected(names[i] ?? '')));
  const inConflict = stmt.onConflict?.action === 'update' && stmt.onConflict.set.some(([name, e]) => e.kind === 'null' && affected(name));
  return inRows || inConflict;
}

function isNotNullUniqueDefault(table: TableDef, name: string): boolean {
  const column = table.columns.find((c) => c.name === name);
  return column !== undefined && column.notNull && column.unique && column.defaultSeed !== null && !table.primaryKey.includes(name);
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function hasBigNegativeLiteral(sql: string): boolean {
  // A minus is unary after an operator, '(', ',', a keyword or at the start (binary after a name,
  // a number or ')').
  for (const m of sql.matchAll(/(?:^|[(,=<>+*/%-]|\b(?:AND|OR|NOT|BETWEEN|SELECT|SET|WHERE|VALUES))\s*-\s*(\d+)(?![\d.e])/g)) {
    if (BigInt(m[1] as string) > SAFE_MAX) return true;
  }
  return false;
}

/** The known bug this statement would hit, or null to compare it. */
export function knownBugOf(stmt: Statement, rendered: RenderedStatement, schema: Schema): string | null {
  for (const known of KNOWN_BUGS) if (known.matches(stmt, rendered, schema)) return known.bug;
  return null;
}
