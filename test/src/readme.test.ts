/**
 * The README's embedded quick start, run as written: the TypeScript block is extracted, its
 * data dir pointed at a temp dir, and run as a module inside the repo (so `veritydb` resolves
 * as it does for a user of the workspace). Then the database is reopened and checked.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Verity } from 'veritydb';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const block = /```ts\n([\s\S]*?)```/.exec(readme);

t.test('the README embedded example runs and leaves the documented state', async (t) => {
  t.ok(block, 'README has a ts block');
  const source = (block?.[1] ?? '');
  t.match(source, /Verity\.open\('\.\/data-embedded'\)/, 'the example opens ./data-embedded');
  const data = mkdtempSync(join(tmpdir(), 'vdb-readme-'));
  const scratch = join(root, 'test', 'dist', '.readme');
  mkdirSync(scratch, { recursive: true });
  const script = join(scratch, `example-${process.pid}.mjs`);
  t.teardown(() => {
    rmSync(data, { recursive: true, force: true });
    rmSync(script, { force: true });
  });
  writeFileSync(script, source.replace("'./data-embedded'", JSON.stringify(join(data, 'db'))));
  execFileSync(process.execPath, [script], { stdio: 'pipe', timeout: 60_000 });

  const db = await Verity.open(join(data, 'db'));
  try {
    const now = await db.tenant(1).query('SELECT id, name FROM patients');
    t.same(now.rows, [{ id: 1, name: 'Ann Lee' }]);
    const events = await db.tenant(1).query("SELECT event_type FROM __events WHERE stream = 'patients' ORDER BY position");
    t.same(events.rows.map((r) => r['event_type']), ['ddl', 'insert', 'update']);
    const before = await db.tenant(1).query('SELECT name FROM patients', [], { position: now.position - 1 });
    t.same(before.rows, [{ name: 'Ann' }]);
  } finally {
    await db.close();
  }
});
