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
import {
  caseArb, describeCase, describeParams, renderSchema, renderStatement, stepsOf, type RenderedStatement, type Statement, type TestCase,
} from './sqlgen.js';
import type { PgOutcome } from './pg-oracle.js';
import { PgWorker, type StepOutcome } from './pg-worker.js';
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
  let batchesRun = 0;

  const runCase = async (testCase: TestCase): Promise<Mismatch | null> => {
    const steps: Compared[][] = [];
    for (const step of stepsOf(testCase)) {
      const kept: Compared[] = [];
      for (const stmt of step) {
        const rendered = renderStatement(stmt);
        const bug = knownBugOf(stmt, rendered, testCase.schema);
        if (bug === null) kept.push({ stmt, rendered, index: testCase.statements.indexOf(stmt) });
        else skipped.set(bug, (skipped.get(bug) ?? 0) + 1);
      }
      if (kept.length > 0) steps.push(kept);
    }
    const renderedSteps = steps.map((step) => step.map((c) => c.rendered));
    // PostgreSQL runs the case in its worker while VerityDB runs it here.
    const pgReply = pg.runCase(renderSchema(testCase.schema, 'postgres'), renderedSteps);
    const ours = await runOursCase(db, nextTenant++, testCase, renderedSteps);
    const reply = await pgReply;
    if (reply.ddlError !== null) throw new Error(`PostgreSQL rejected the generated schema: ${reply.ddlError}`);
    if ('ddl' in ours) return ours.ddl;
    for (const [i, step] of steps.entries()) {
      statementsRun += step.length;
      if (step.length > 1) batchesRun++;
      const mismatch = compareStep(step, reply.outcomes[i] as StepOutcome, ours.results[i] as OursStep);
      if (mismatch !== null) return mismatch;
    }
    return null;
  };

  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(caseArb(), async (testCase) => (await runCase(testCase)) === null),
    { seed, numRuns: CASES },
  );
  const seconds = (performance.now() - started) / 1000;
  t.comment(`${details.numRuns} cases, ${statementsRun} statements (${batchesRun} atomic batches) compared in ${seconds.toFixed(1)} s`);
  for (const [bug, count] of skipped) t.comment(`skipped ${count} statements for known bug: ${bug}`);
  if (details.failed && details.counterexample !== null) {
    const [minimal] = details.counterexample;
    const mismatch = await runCase(minimal);
    // tap folds a failure's message onto one line: the report goes out as comment lines.
    for (const line of report(minimal, mismatch, details.numShrinks).split('\n')) t.comment(line);
    t.fail(`VerityDB differs from PostgreSQL: ${mismatch?.reason ?? 'see the case above'} (replay: SEED=${seed})`);
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

interface Compared {
  readonly stmt: Statement;
  readonly rendered: RenderedStatement;
  /** Position in the case's statement list. */
  readonly index: number;
}

/** One statement's result, or a batch's: a failure of the whole batch or one result each. */
type OursStep = { readonly kind: 'single'; readonly result: OursResult } | { readonly kind: 'batch'; readonly result: OursResult | readonly OursResult[] };

function compareStep(step: readonly Compared[], expected: StepOutcome, ours: OursStep): Mismatch | null {
  const first = step[0] as Compared;
  if (expected.kind === 'single' && ours.kind === 'single') {
    const raw = ours.result;
    const actual = readOurs(raw, expected.outcome.kinds);
    const reason = 'crash' in raw ? `VerityDB threw a non-VerityError: ${raw.crash}` : compareOutcomes(expected.outcome.outcome, actual, orderOf(first.stmt));
    if (reason === null) return null;
    return { statement: first.index, rendered: first.rendered, reason, expected: formatOutcome(expected.outcome.outcome), actual: formatOutcome(actual) };
  }
  if (expected.kind !== 'batch' || ours.kind !== 'batch') throw new Error('a step ran alone in one engine and as a batch in the other');
  const batch = `in an atomic batch of ${step.length} statements starting here`;
  const results = ours.result;
  if (!Array.isArray(results)) {
    const failed = results as OursResult;
    const actual = failed.ok ? 'ok' : `ERROR ${failed.error}`;
    if ('crash' in failed) return { statement: first.index, rendered: first.rendered, reason: `VerityDB threw a non-VerityError ${batch}: ${failed.crash}`, expected: '', actual };
    if (!expected.outcome.ok) return null;
    return { statement: first.index, rendered: first.rendered, reason: `PostgreSQL committed the batch, VerityDB failed ${batch}`, expected: 'ok', actual };
  }
  if (!expected.outcome.ok) {
    return { statement: first.index, rendered: first.rendered, reason: `PostgreSQL failed the batch, VerityDB committed it ${batch}`, expected: `ERROR ${expected.outcome.error}`, actual: 'ok' };
  }
  for (const [j, c] of step.entries()) {
    const pgOutcome = expected.outcome.outcomes[j] as PgOutcome;
    const actual = readOurs(results[j] as OursResult, pgOutcome.kinds);
    const reason = compareOutcomes(pgOutcome.outcome, actual, { kind: 'none' });
    if (reason !== null) {
      return { statement: c.index, rendered: c.rendered, reason: `${reason} (statement ${j + 1} of an atomic batch)`, expected: formatOutcome(pgOutcome.outcome), actual: formatOutcome(actual) };
    }
  }
  return null;
}

type OursResult =
  | { readonly ok: true; readonly result: { readonly rows: readonly unknown[]; readonly rowsAffected?: number }; readonly write: boolean }
  | { readonly ok: false; readonly error: string }
  | { readonly ok: false; readonly error: string; readonly crash: string };

/** Runs a case on a fresh VerityDB tenant: its DDL, then every step (results kept raw:
 * reading them needs PostgreSQL's column kinds). */
async function runOursCase(db: Db, id: number, testCase: TestCase, steps: readonly (readonly RenderedStatement[])[]):
  Promise<{ readonly ddl: Mismatch } | { readonly results: readonly OursStep[] }> {
  await db.createTenant({ id, name: `case-${id}` });
  const tenant = db.tenant(id);
  for (const [i, ddl] of renderSchema(testCase.schema, 'verity').entries()) {
    const result = await runOurs(tenant, ddl);
    if (!result.ok) {
      return { ddl: { statement: -1 - i, rendered: ddl, reason: 'DDL rejected by VerityDB', expected: 'ok', actual: `ERROR ${result.error}` } };
    }
  }
  const results: OursStep[] = [];
  for (const step of steps) {
    results.push(step.length === 1
      ? { kind: 'single', result: await runOurs(tenant, step[0] as RenderedStatement) }
      : { kind: 'batch', result: await runOursBatch(tenant, step) });
  }
  // Finished tenants would only make the store (and the checkpoint at close) bigger.
  await db.dropTenant(id);
  return { results };
}

async function runOursBatch(tenant: Tenant, step: readonly RenderedStatement[]): Promise<OursResult | readonly OursResult[]> {
  try {
    const batch = await tenant.batch(step.map((s) => ({ sql: s.sql, params: [...s.params] })));
    return batch.results.map((result): OursResult => ({ ok: true, result, write: true }));
  } catch (error) {
    return failure(error);
  }
}

function failure(error: unknown): OursResult {
  if (error instanceof VerityError) return { ok: false, error: `${error.code} ${error.message}` };
  return { ok: false, error: String(error), crash: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}

async function runOurs(tenant: Tenant, rendered: RenderedStatement): Promise<OursResult> {
  try {
    const params = [...rendered.params];
    if (rendered.mode === 'query') return { ok: true, result: await tenant.query(rendered.sql, params), write: false };
    return { ok: true, result: await tenant.execute(rendered.sql, params), write: true };
  } catch (error) {
    return failure(error);
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
