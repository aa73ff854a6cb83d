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
import type { PgOutcome } from './pg-oracle.js';
import { PgWorker } from './pg-worker.js';
import { compareOutcomes, formatOutcome, normalizeValue, type NormRow, type Outcome, type ValueKind } from './results.js';
import { knownBugOf } from './known-differences.js';

/** Generated cases per run (DESIGN §15 CI budget: this file should stay well under 90 s). */
const CASES = Number(process.env['DIFF_CASES'] ?? 2000);
const seed = seedFrom(process.env, () => Math.floor(Math.random() * 0x7fff_ffff));
t.comment(`SEED=${seed}`);

type Db = Awaited<ReturnType<typeof Verity.open>>;
type Tenant = ReturnType<Db['tenant']>;

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
  // One checkpoint at close instead of one every few thousand entries: checkpoints are not
  // what this test is about, and each one writes every tenant so far.
  const db = await Verity.open(dir, { checkpointIntervalEntries: Number.MAX_SAFE_INTEGER });
  const pg = await PgWorker.start();
  t.teardown(async () => {
    await db.close();
    await pg.close();
    await rm(dir, { recursive: true, force: true });
  });
  let nextTenant = 1;
  let statementsRun = 0;

  const runCase = async (testCase: TestCase): Promise<Mismatch | null> => {
    const compared: { stmt: Statement; rendered: RenderedStatement }[] = [];
    for (const stmt of testCase.statements) {
      const rendered = renderStatement(stmt);
      const bug = knownBugOf(stmt, rendered);
      if (bug === null) compared.push({ stmt, rendered });
      else skipped.set(bug, (skipped.get(bug) ?? 0) + 1);
    }
    // PostgreSQL runs the case in its worker while VerityDB runs it here.
    const pgReply = pg.runCase(renderSchema(testCase.schema, 'postgres'), compared.map((c) => c.rendered));
    const ours = await runOursCase(db, nextTenant++, testCase, compared.map((c) => c.rendered));
    const reply = await pgReply;
    if (reply.ddlError !== null) throw new Error(`PostgreSQL rejected the generated schema: ${reply.ddlError}`);
    if ('ddl' in ours) return ours.ddl;
    for (const [i, { stmt, rendered }] of compared.entries()) {
      const expected = reply.outcomes[i] as PgOutcome;
      const raw = ours.results[i] as OursResult;
      statementsRun++;
      const actual = readOurs(raw, expected.kinds);
      const reason = 'crash' in raw ? `VerityDB threw a non-VerityError: ${raw.crash}` : compareOutcomes(expected.outcome, actual, orderOf(stmt));
      if (reason !== null) {
        return { statement: testCase.statements.indexOf(stmt), rendered, reason, expected: formatOutcome(expected.outcome), actual: formatOutcome(actual) };
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

type OursResult =
  | { readonly ok: true; readonly result: { readonly rows: readonly unknown[]; readonly rowsAffected?: number }; readonly write: boolean }
  | { readonly ok: false; readonly error: string }
  | { readonly ok: false; readonly error: string; readonly crash: string };

/** Runs a case on a fresh VerityDB tenant: its DDL, then every statement (results kept raw:
 * reading them needs PostgreSQL's column kinds). */
async function runOursCase(db: Db, id: number, testCase: TestCase, statements: readonly RenderedStatement[]):
  Promise<{ readonly ddl: Mismatch } | { readonly results: readonly OursResult[] }> {
  await db.createTenant({ id, name: `case-${id}` });
  const tenant = db.tenant(id);
  for (const [i, ddl] of renderSchema(testCase.schema, 'verity').entries()) {
    const result = await runOurs(tenant, ddl);
    if (!result.ok) {
      return { ddl: { statement: -1 - i, rendered: ddl, reason: 'DDL rejected by VerityDB', expected: 'ok', actual: `ERROR ${result.error}` } };
    }
  }
  const results: OursResult[] = [];
  for (const stmt of statements) results.push(await runOurs(tenant, stmt));
  return { results };
}

async function runOurs(tenant: Tenant, rendered: RenderedStatement): Promise<OursResult> {
  try {
    const params = [...rendered.params];
    if (rendered.mode === 'query') return { ok: true, result: await tenant.query(rendered.sql, params), write: false };
    return { ok: true, result: await tenant.execute(rendered.sql, params), write: true };
  } catch (error) {
    if (error instanceof VerityError) return { ok: false, error: `${error.code} ${error.message}` };
    return { ok: false, error: String(error), crash: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
}

/** VerityDB's outcome in comparable form, its values read as PostgreSQL's column kinds say. */
function readOurs(raw: OursResult, kinds: readonly ValueKind[]): Outcome {
  if (!raw.ok) return { ok: false, error: raw.error };
  const { columns, rows } = readRows(raw.result, kinds);
  if (!raw.write) return { ok: true, columns, rows, rowsAffected: null };
  // A write without RETURNING has no result columns in PostgreSQL.
  const returning = rows.length > 0 || kinds.length > 0;
  return { ok: true, columns: returning ? columns : null, rows, rowsAffected: raw.result.rowsAffected ?? null };
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
