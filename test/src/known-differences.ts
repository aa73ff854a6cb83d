/**
 * Statements the differential test skips, in both engines, because they hit a known VerityDB
 * bug that is reported and not yet fixed. Each entry names the bug; remove it when the fix
 * lands (the differential test then covers the construct again). Deliberate deviations from
 * PostgreSQL are not listed here: the generator never produces them (see sqlgen.ts).
 *
 * @example knownBugOf(stmt, renderStatement(stmt)) === null   // compare this statement
 */
import type { RenderedStatement, Statement } from './sqlgen.js';

interface KnownBug {
  /** What is wrong, precisely enough to find the report. */
  readonly bug: string;
  readonly matches: (stmt: Statement, rendered: RenderedStatement) => boolean;
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
    bug: 'query: a negative integer literal beyond 2^53 loses precision (`-9223372036854775807` is read as a double: '
      + 'INSERT stores -9223372036854775808, SELECT returns -9223372036854776000; `-9007199254740993` becomes -9007199254740992)',
    matches: (_stmt, rendered) => hasBigNegativeLiteral(rendered.sql),
  },
];

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function hasBigNegativeLiteral(sql: string): boolean {
  for (const m of sql.matchAll(/(?<![\w.'])-(\d+)(?![\d.e])/g)) {
    if (BigInt(m[1] as string) > SAFE_MAX) return true;
  }
  return false;
}

/** The known bug this statement would hit, or null to compare it. */
export function knownBugOf(stmt: Statement, rendered: RenderedStatement): string | null {
  for (const known of KNOWN_BUGS) if (known.matches(stmt, rendered)) return known.bug;
  return null;
}
