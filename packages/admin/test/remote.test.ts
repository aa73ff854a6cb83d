import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer, type RunningServer } from 'veritydb/testing/vdb-server';
import { runCli, EXIT_OK, EXIT_FAILED, EXIT_USAGE, ProgressBar } from '../src/index.js';

interface Run { code: number; out: string; err: string }

async function run(argv: string[], options: { input?: string; env?: Record<string, string>; progress?: boolean } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stdout: (text) => { out += text; },
    stderr: (text) => { err += text; },
    stdin: Readable.from([options.input ?? '']),
    interactive: false,
    progress: options.progress ?? false,
    env: options.env ?? {},
  });
  return { code, out, err };
}

let server: RunningServer;
let remote: string[];
t.before(async () => {
  server = await startServer();
  remote = ['--addresses', server.address, '--token', server.token];
});
t.teardown(async () => { await server?.stop(); });

const dir = mkdtempSync(join(tmpdir(), 'vdb-admin-remote-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const data = ['--data-dir', join(dir, 'data')];

t.test('sql --json against a server', async (t) => {
  let r = await run(['sql', 'CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL)', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /^OK, 0 row\(s\) affected at position \d+\n$/);
  r = await run(['sql', "INSERT INTO p VALUES (1, 'Ann'), (2, 'Bo') RETURNING id", '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const written = JSON.parse(r.out) as { position: number; rowsAffected: number; rows: unknown[] };
  t.equal(written.rowsAffected, 2);
  t.same(written.rows, [{ id: 1 }, { id: 2 }]);
  r = await run(['sql', 'SELECT id, name FROM p ORDER BY id DESC', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const read = JSON.parse(r.out) as { position: number; rows: unknown[] };
  t.same(read.rows, [{ id: 2, name: 'Bo' }, { id: 1, name: 'Ann' }]);
  t.ok(read.position >= written.position, 'the read saw the write');
  r = await run(['sql', 'SELECT name FROM p WHERE id = 1', ...remote]);
  t.equal(r.out, 'name\n----\nAnn\n(1 row)\n');
  r = await run(['sql', ...remote], { input: 'SELECT count(*) AS n\n  FROM p;\n\\dt\n\\q\n' });
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /n\n-+\n2\n\(1 row\)/, 'the shell works remotely too');
});

t.test('failures exit 1 with one line naming the code; --json errors are JSON', async (t) => {
  let r = await run(['sql', 'SELECT * FROM missing', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: UndefinedTable: .*missing.*\n$/);
  r = await run(['sql', "INSERT INTO p VALUES (1, 'again')", '--json', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(JSON.parse(r.err), { error: { code: 'UniqueViolation' } });
  r = await run(['status', '--addresses', server.address, '--token', 'vdb1.not.valid']);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: Unauthorized: [^\n]*\n$/);
  r = await run(['status', '--addresses', '127.0.0.1:1', '--token', server.token]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: Unavailable: [^\n]*\n$/);
  r = await run(['verify', '--tenant', '424242', ...remote]);
  t.equal(r.code, EXIT_FAILED, 'a remote verify of a tenant without records fails');
  t.match(r.err, /^vdb-admin: TenantNotFound: [^\n]*\n$/);
});

t.test('tenant create, list, show and drop against a server', async (t) => {
  let r = await run(['tenant', 'create', '--id', '7', '--name', 'clinic', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.same(JSON.parse(r.out), { created: 7 });
  r = await run(['tenant', 'create', '--id', '7', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /TenantExists/);
  r = await run(['tenant', 'list', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.same(JSON.parse(r.out), { tenants: [{ id: 1, name: 'tenant-1' }, { id: 7, name: 'clinic' }] });
  r = await run(['tenant', 'list', ...remote]);
  t.match(r.out, /id \| name\n.*\n1  \| tenant-1\n7  \| clinic\n\(2 rows\)/);
  r = await run(['tenant', 'show', '7', '--json', ...remote]);
  t.same(JSON.parse(r.out), { id: 7, name: 'clinic' });
  r = await run(['tenant', 'show', '--id', '8', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /TenantNotFound: tenant 8 does not exist/);
  r = await run(['tenant', 'drop', '7', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(JSON.parse(r.out), { dropped: 7, position: Number });
  r = await run(['tenant', 'list', '--json', ...remote]);
  t.same(JSON.parse(r.out), { tenants: [{ id: 1, name: 'tenant-1' }] });
});

t.test('status --json reports the cluster and every replica', async (t) => {
  const r = await run(['status', '--json', '--addresses', server.address], { env: { VDB_TOKEN: server.token } });
  t.equal(r.code, EXIT_OK, r.err);
  const status = JSON.parse(r.out) as { replicas: { applied: number; commit: number }[] };
  t.match(status, {
    mode: 'remote', clusterId: /^0x[0-9a-f]+$/, view: 0, primary: server.address,
    replicas: [{ index: 0, role: 'primary', status: 'normal', view: 0, commit: Number, applied: Number, lag: 0 }],
  });
  t.ok((status.replicas[0]?.applied ?? 0) > 0);
  const text = await run(['status', ...remote]);
  t.match(text.out, new RegExp(`^cluster 0x[0-9a-f]+  view 0  primary ${server.address.replace(/\./g, '\\.')}`));
  t.match(text.out, /index \| address .*\n.*\n0 .*primary .*normal/);
});

t.test('the vdb-admin binary: exit codes and VDB_TOKEN from the environment', async (t) => {
  const main = fileURLToPath(new URL('../src/main.js', import.meta.url));
  const exec = promisify(execFile);
  const ok = await exec(process.execPath, [main, 'status', '--json', '--addresses', server.address], { env: { ...process.env, VDB_TOKEN: server.token } });
  t.match(JSON.parse(ok.stdout), { mode: 'remote' });
  const failed = await exec(process.execPath, [main, 'status', '--addresses', server.address], { env: { ...process.env, VDB_TOKEN: 'vdb1.x.y' } }).catch((e: { code: number; stderr: string }) => e);
  t.match(failed, { code: EXIT_FAILED, stderr: /^vdb-admin: Unauthorized: / });
  const usage = await exec(process.execPath, [main, 'status', '--addresses', server.address, ...data]).catch((e: { code: number }) => e);
  t.match(usage, { code: EXIT_USAGE });
});

t.test('usage errors exit 2', async (t) => {
  t.equal((await run(['status', ...remote, ...data])).code, EXIT_USAGE, '--addresses and --data-dir exclude each other');
  t.equal((await run(['status', '--token', 'x', ...data])).code, EXIT_USAGE, '--token needs --addresses');
  t.equal((await run(['status', '--addresses', server.address])).code, EXIT_USAGE, 'remote needs a token');
  t.equal((await run(['status', '--addresses', ','])).code, EXIT_USAGE);
  t.equal((await run(['status', 'extra', ...remote])).code, EXIT_USAGE);
  t.equal((await run(['tenant', 'frob', ...remote])).code, EXIT_USAGE);
  t.equal((await run(['tenant', 'show', ...remote])).code, EXIT_USAGE, 'show needs an id');
  t.equal((await run(['verify', '--tenant', '0', ...data])).code, EXIT_USAGE);
  const json = await run(['tenant', 'drop', '--json', ...remote]);
  t.equal(json.code, EXIT_USAGE);
  t.match(JSON.parse(json.err), { error: { code: 'Usage' } });
});

t.test('embedded: verify (with a progress bar), status and tenant drop', async (t) => {
  t.equal((await run(['sql', 'CREATE TABLE v (id BIGINT PRIMARY KEY)', ...data])).code, EXIT_OK);
  t.equal((await run(['sql', 'INSERT INTO v VALUES (1), (2)', ...data])).code, EXIT_OK);
  let r = await run(['verify', ...data], { progress: true });
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /^ok: the log verified, \d+ record\(s\) checked\n$/);
  t.match(r.err, /\r\[#+\] 100% (\d+)\/\1\n$/, 'a progress bar on a terminal');
  r = await run(['verify', '--tenant', '1', '--json', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(JSON.parse(r.out), { tenant: 1, ok: true, checked: Number });
  t.equal(r.err, '', 'no progress bar when stderr is not a terminal');
  r = await run(['status', '--json', ...data]);
  t.match(JSON.parse(r.out), { mode: 'embedded', replicas: [{ index: 0, role: 'primary', lag: 0 }] });
  r = await run(['tenant', 'list', ...data]);
  t.equal(r.code, EXIT_FAILED, 'the embedded engine keeps no tenant directory');
  t.match(r.err, /^vdb-admin: NotSupported: /);
  r = await run(['tenant', 'drop', '--id', '1', ...data]);
  t.equal(r.code, EXIT_OK, r.err);
  r = await run(['sql', 'SELECT * FROM v', ...data]);
  t.equal(r.code, EXIT_FAILED, 'a dropped tenant is gone (its id is never reused)');
});

t.test('progress bar', async (t) => {
  let out = '';
  const bar = new ProgressBar((text) => { out += text; }, 4);
  bar.update(0, 8);
  bar.update(0, 8);
  bar.update(4, 8);
  bar.update(8, 8);
  bar.finish();
  t.equal(out, '\r[....] 0% 0/8\r[##..] 50% 4/8\r[####] 100% 8/8\n');
});
