import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runCli, EXIT_OK, EXIT_FAILED, EXIT_USAGE, renderTable, toJsonValue } from '../src/index.js';

interface Run { code: number; out: string; err: string }

async function run(argv: string[], input = ''): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stdout: (text) => { out += text; },
    stderr: (text) => { err += text; },
    stdin: Readable.from([input]),
    interactive: false,
  });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'vdb-admin-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const data = ['--data-dir', join(dir, 'data')];

t.test('sql runs statements in embedded mode and prints JSON', async (t) => {
  let r = await run(['sql', 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL)', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  r = await run(['sql', "INSERT INTO p VALUES (1, 'Ann'), (2, 'Bo') RETURNING id", '--json', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  const written = JSON.parse(r.out) as { position: number; rowsAffected: number; rows: unknown[] };
  t.equal(written.rowsAffected, 2);
  t.same(written.rows, [{ id: 1 }, { id: 2 }]);
  t.ok(written.position > 0);
  r = await run(['sql', 'SELECT id, name FROM p ORDER BY id DESC', '--json', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  t.same((JSON.parse(r.out) as { rows: unknown[] }).rows, [{ id: 2, name: 'Bo' }, { id: 1, name: 'Ann' }]);
  r = await run(['sql', 'SELECT name FROM p WHERE id = 1', ...data]);
  t.equal(r.out, 'name\n----\nAnn\n(1 row)\n');
});

t.test('sql failures exit 1 with a one-line reason naming the error code', async (t) => {
  const r = await run(['sql', 'SELECT * FROM missing', ...data]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: \w+: .*missing.*\n$/);
  const dup = await run(['sql', "INSERT INTO p VALUES (1, 'again')", ...data]);
  t.equal(dup.code, EXIT_FAILED);
  t.match(dup.err, /vdb-admin: /);
});

t.test('the shell reads statements across lines, meta commands, and reports errors', async (t) => {
  const r = await run(['sql', ...data], 'SELECT count(*) AS n\n  FROM p;\n\\dt\nSELECT nope FROM p;\n\\q\nSELECT 1;\n');
  t.match(r.out, /n\n-+\n2\n\(1 row\)/);
  t.match(r.out, /\bp\b/);
  t.match(r.err, /ERROR /);
  t.equal(r.code, EXIT_FAILED, 'a non-interactive shell with a failed statement exits 1');
  t.notMatch(r.out, /\?column\?/, 'nothing after \\q runs');
});

t.test('tenant create, and a duplicate is refused', async (t) => {
  let r = await run(['tenant', 'create', '--id', '7', '--name', 'clinic', '--json', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  t.same(JSON.parse(r.out), { created: 7 });
  r = await run(['tenant', 'create', '--id', '7', ...data]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /TenantExists/);
});

t.test('bad usage exits 2', async (t) => {
  t.equal((await run([])).code, EXIT_USAGE);
  t.equal((await run(['frobnicate'])).code, EXIT_USAGE);
  t.equal((await run(['sql', '--tenant', 'x', 'SELECT 1'])).code, EXIT_USAGE);
  t.equal((await run(['sql', '--no-such-flag'])).code, EXIT_USAGE);
  t.equal((await run(['tenant', 'create', ...data])).code, EXIT_USAGE, '--id is required');
  const help = await run(['help']);
  t.equal(help.code, EXIT_OK);
  t.match(help.out, /vdb-admin sql/);
});

t.test('formatting', async (t) => {
  t.equal(renderTable([]), '(0 rows)');
  t.equal(renderTable([{ a: null, b: 'x' }]), 'a    | b\n-----+--\nNULL | x\n(1 row)');
  t.same(toJsonValue({ big: 2n ** 60n, small: 3n, bytes: new Uint8Array([1, 255]) }),
    { big: '1152921504606846976', small: 3, bytes: '\\x01ff' });
});
