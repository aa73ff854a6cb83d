// Differential test: generated schemas and statement histories run on VerityDB (embedded, one
// fresh tenant per case) and on PostgreSQL (PGlite, one fresh schema per case). Every statement
// must agree: success or failure, rowsAffected, result columns and rows (ordered where the ORDER
// BY fixes the order, else as multisets). fast-check shrinks a failing case; the report prints
// the minimal case as SQL, both outcomes and the command that replays it.
import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { seedFrom, VerityError } from '@veritydb/types';
import { caseArb, describeCase, describeParams, renderSchema, renderStatement, type RenderedStatement, type Statement, type TestCase } from './sqlgen.js';
import { PgOracle } from './pg-oracle.js';
import { compareOutcomes, formatOutcome, normalizeValue, type NormRow, type Outcome, type ValueKind } from './results.js';
import { knownBugOf } from './known-differences.js';

/** Generated cases per run (DESIGN §15 CI budget: this file should stay well under 90 s). */
const CASES = Number(process.env['DIFF_CASES'] ?? 2000);
const seed = seedFrom(process.env, () => Math.floor(Math.random() * 0x7fff_ffff));
t.comment(`SEED=${seed}`);

type Tenant = ReturnType<Awaited<ReturnType<typeof Verity.open>>['tenant']>;

interface Mismatch {
  readonly statement: number;
  readonly rendered: RenderedStatement;
  readonly reason: string;
  readonly expected: string;
  readonly actual: string;
}

/** Statements skipped (in both engines) because they hit a known VerityDB bug, by bug. */
const skipped = new Map<string, number>();

t.test('VerityDB agrees with PostgreSQL on generated SQL histories', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'verity-differential-'));
  const db = await Verity.open(dir);
  const pg = await PgOracle.create();
  t.teardown(async () => {
    await db.close();
    await pg.close();
    await rm(dir, { recursive: true, force: true });
  });
  let nextTenant = 1;
  let statementsRun = 0;

  const runCase = async (testCase: TestCase): Promise<Mismatch | null> => {
    const id = nextTenant++;
    await db.createTenant({ id, name: `case-${id}` });
    const tenant = db.tenant(id);
    const pgCase = await pg.beginCase(renderSchema(testCase.schema, 'postgres'));
    for (const [i, ddl] of renderSchema(testCase.schema, 'verity').entries()) {
      const ours = await runOurs(tenant, ddl, []);
      if (!ours.ok) return { statement: -1 - i, rendered: ddl, reason: 'DDL rejected by VerityDB', expected: 'ok', actual: formatOutcome(ours) };
    }
    for (const [i, stmt] of testCase.statements.entries()) {
      const rendered = renderStatement(stmt);
      const bug = knownBugOf(stmt, rendered);
      if (bug !== null) {
        skipped.set(bug, (skipped.get(bug) ?? 0) + 1);
        continue;
      }
      const expected = await pgCase.run(rendered);
      const actual = await runOurs(tenant, rendered, expected.kinds);
      statementsRun++;
      const reason = 'crash' in actual ? `VerityDB threw a non-VerityError: ${actual.crash}` : compareOutcomes(expected.outcome, actual, orderOf(stmt));
      if (reason !== null) {
        return { statement: i, rendered, reason, expected: formatOutcome(expected.outcome), actual: formatOutcome(actual) };
      }
    }
    return null;
  };

  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(caseArb(), async (testCase) => (await runCase(testCase)) === null),
    { seed, numRuns: CASES },
  );
  const seconds = (performance.now() - started) / 1000;
  t.comment(`${details.numRuns} cases, ${statementsRun} statements compared in ${seconds.toFixed(1)} s`);
  for (const [bug, count] of skipped) t.comment(`skipped ${count} statements for known bug: ${bug}`);
  if (details.failed && details.counterexample !== null) {
    const [minimal] = details.counterexample;
    const mismatch = await runCase(minimal);
    t.fail(report(minimal, mismatch, details.numShrinks));
  } else if (details.failed) {
    t.fail(`the property failed without a counterexample: ${String(details.errorInstance)}`);
  } else {
    t.pass(`${details.numRuns} generated cases agree`);
  }
});

function report(testCase: TestCase, mismatch: Mismatch | null, shrinks: number): string {
  const lines = [`VerityDB differs from PostgreSQL (minimal case after ${shrinks} shrinks):`];
  if (mismatch === null) {
    lines.push('(the minimal case passed when run again: the difference depends on earlier cases)');
  } else {
    const where = mismatch.statement < 0 ? `DDL statement ${-mismatch.statement}` : `statement ${mismatch.statement + 1}`;
    lines.push(`  ${where}: ${mismatch.rendered.sql}`);
    if (mismatch.rendered.params.length > 0) lines.push(`  params: ${describeParams(mismatch.rendered.params)}`);
    lines.push(`  ${mismatch.reason}`, `  PostgreSQL: ${mismatch.expected}`, `  VerityDB:   ${mismatch.actual}`);
  }
  lines.push('case (VerityDB dialect):', describeCase(testCase, 'verity'));
  lines.push(`replay: SEED=${seed} npx tap test/dist/differential.test.js`);
  return lines.join('\n');
}

function orderOf(stmt: Statement): Parameters<typeof compareOutcomes>[2] {
  return stmt.kind === 'select' ? stmt.order : { kind: 'none' };
}

type OursOutcome = Outcome | (Outcome & { readonly crash: string });

/** Runs one statement on VerityDB and reads its result as PostgreSQL's column kinds say. */
async function runOurs(tenant: Tenant, rendered: RenderedStatement, kinds: readonly ValueKind[]): Promise<OursOutcome> {
  try {
    const params = [...rendered.params];
    if (rendered.mode === 'query') {
      const result = await tenant.query(rendered.sql, params);
      const { columns, rows } = readRows(result, kinds);
      return { ok: true, columns, rows, rowsAffected: null };
    }
    const result = await tenant.execute(rendered.sql, params);
    const { columns, rows } = readRows(result, kinds);
    return { ok: true, columns: rows.length === 0 && kinds.length === 0 ? null : columns, rows, rowsAffected: result.rowsAffected };
  } catch (error) {
    if (error instanceof VerityError) return { ok: false, error: `${error.code} ${error.message}` };
    return { ok: false, error: String(error), crash: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
}

/** Rows as arrays in result-column order, and the column names when the result tells them. */
function readRows(result: { readonly rows: readonly unknown[] }, kinds: readonly ValueKind[]): { columns: string[] | null; rows: NormRow[] } {
  const declared = (result as { readonly columns?: unknown }).columns;
  let columns: string[] | null = Array.isArray(declared)
    ? declared.map((c: unknown) => (typeof c === 'string' ? c : String((c as { name?: unknown }).name)))
    : null;
  const rows = result.rows.map((row): NormRow => {
    let values: unknown[];
    if (Array.isArray(row)) {
      values = row;
    } else {
      const record = row as Record<string, unknown>;
      columns ??= Object.keys(record);
      values = Object.values(record);
    }
    return values.map((v, i) => normalizeValue(v, kinds[i] ?? 'other'));
  });
  return { columns, rows };
}
