// Self-check of the SQL generator against PostgreSQL alone: every generated schema is accepted,
// statements the generator marks as certain to succeed or to fail do so, and the histories
// reach the interesting paths (conflicts, returned rows, updates that change rows).
import t from 'tap';
import fc from 'fast-check';
import { seedFrom } from '@veritydb/types';
import { caseArb, describeCase, renderSchema, renderStatement } from './sqlgen.js';
import { PgOracle } from './pg-oracle.js';

const CASES = 100;
const seed = seedFrom(process.env, () => Math.floor(Math.random() * 0x7fff_ffff));
t.comment(`SEED=${seed}`);

t.test('generated cases behave in PostgreSQL as the generator expects', async (t) => {
  const pg = await PgOracle.create();
  t.teardown(() => pg.close());
  const cases = fc.sample(caseArb(), { seed, numRuns: CASES });
  const counts = { statements: 0, ok: 0, failed: 0, rowsReturned: 0, rowsChanged: 0, conflictUpdates: 0, expectedErrors: 0 };
  const surprises: string[] = [];
  for (const testCase of cases) {
    const ddl = renderSchema(testCase.schema, 'postgres');
    const pgCase = await pg.beginCase(ddl).catch((error: unknown) => {
      surprises.push(`DDL rejected: ${String(error)}\n${ddl.map((s) => s.sql).join(';\n')}`);
      return null;
    });
    if (pgCase === null) continue;
    for (const stmt of testCase.statements) {
      const rendered = renderStatement(stmt);
      const { outcome } = await pgCase.run(rendered);
      counts.statements++;
      if (outcome.ok) {
        counts.ok++;
        if (outcome.rows.length > 0) counts.rowsReturned++;
        if (rendered.mode === 'execute' && (outcome.rowsAffected ?? 0) > 0) counts.rowsChanged++;
        if (stmt.kind === 'insert' && stmt.onConflict?.action === 'update' && (outcome.rowsAffected ?? 0) > 0) counts.conflictUpdates++;
      } else {
        counts.failed++;
      }
      if (rendered.expect === 'error') counts.expectedErrors++;
      const wrong = (rendered.expect === 'ok' && !outcome.ok) || (rendered.expect === 'error' && outcome.ok);
      if (wrong && surprises.length < 10) {
        surprises.push(`expected ${rendered.expect}, got ${outcome.ok ? 'success' : outcome.error}\n  ${rendered.sql}\n` +
          `in case:\n${describeCase(testCase, 'postgres')}`);
      }
    }
  }
  for (const surprise of surprises) t.fail(surprise);
  t.comment(JSON.stringify(counts));
  t.ok(counts.ok > counts.statements * 0.5, 'most statements succeed');
  t.ok(counts.failed > counts.statements * 0.05, 'some statements fail');
  t.ok(counts.rowsReturned > counts.statements * 0.1, 'many statements return rows');
  t.ok(counts.rowsChanged > counts.statements * 0.2, 'many writes change rows');
  t.ok(counts.conflictUpdates > 0, 'ON CONFLICT DO UPDATE updates rows');
  t.ok(counts.expectedErrors > 0, 'some statements are meant to fail');
});
