/**
 * Statements the differential test skips, in both engines, because they hit a known VerityDB
 * bug that is reported and not yet fixed. Each entry names the bug; remove it when the fix
 * lands (the differential test then covers the construct again). Deliberate deviations from
 * PostgreSQL are not listed here: the generator never produces them (see sqlgen.ts).
 *
 * @example knownBugOf(stmt, renderStatement(stmt), schema) === null   // compare this statement
 */
import type { RenderedStatement, Schema, Statement } from './sqlgen.js';

interface KnownBug {
  /** What is wrong, precisely enough to find the report. */
  readonly bug: string;
  readonly matches: (stmt: Statement, rendered: RenderedStatement, schema: Schema) => boolean;
}

// Empty: the four bugs the differential test found (ON CONFLICT DO UPDATE without a column
// list, DELETE … RETURNING without WHERE, negative integer literals beyond 2^53, NOT NULL lost
// on `NOT NULL UNIQUE DEFAULT`) are fixed in packages/query and compared again.
const KNOWN_BUGS: readonly KnownBug[] = [];

/** The known bug this statement would hit, or null to compare it. */
export function knownBugOf(stmt: Statement, rendered: RenderedStatement, schema: Schema): string | null {
  for (const known of KNOWN_BUGS) if (known.matches(stmt, rendered, schema)) return known.bug;
  return null;
}
