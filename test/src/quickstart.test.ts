/**
 * The README's commands for running the product, run as written (inside the repo, after the
 * `npm ci` that CI has already done): `npm start` serves a single node, `npm run cluster --
 * --nodes 3` a local 3-replica cluster. Each is pointed at a temp dir and free ports through the
 * documented environment variables / options, used through the SDK, and stopped.
 */
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Verity } from 'veritydb';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Running {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the output once `pattern` appears in it (rejects if the process exits first). */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Signals the whole process group (npm, its shell and node) and waits for npm to exit. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

function run(args: readonly string[], env: Record<string, string>): Running {
  // A user's shell: no VDB_* settings, and none of the test runner's loader hooks (NODE_OPTIONS, TAP_*).
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) =>
    !key.startsWith('VDB_') && !key.startsWith('npm_') && !key.startsWith('TAP') && !key.startsWith('_TAPJS') && key !== 'NODE_OPTIONS'));
  // The test runner re-injects its loader hook (NODE_OPTIONS) into every child it sees spawned;
  // `env -u` drops it again before npm starts, as in a user's shell.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', npm, ...args], { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    waitFor: (pattern, timeoutMs) => new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const poll = (): void => {
        const match = pattern.exec(output);
        if (match !== null) return resolve(match);
        if (child.exitCode !== null) return reject(new Error(`exited (${child.exitCode}) before ${pattern}: ${output.slice(-4000)}`));
        if (Date.now() > deadline) return reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${output.slice(-4000)}`));
        setTimeout(poll, 100);
      };
      poll();
    }),
    stop: async (signal) => {
      if (child.exitCode === null && child.pid !== undefined) {
        try { process.kill(-child.pid, signal); } catch { /* already gone */ }
      }
      const timer = setTimeout(() => { if (child.pid !== undefined) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A base port with `count` free ports after it, below the OS's ephemeral range (see packages/sdk/testing/cluster.ts). */
async function freeBasePort(count: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) {
      free = await new Promise<boolean>((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
      });
    }
    if (free) return base;
  }
}

t.test('npm start, as the README says, serves a single node', async (t) => {
  t.match(readme, /```sh\nnpm ci && npm start\n```/, 'the README runs the product with `npm ci && npm start`');
  const data = mkdtempSync(join(tmpdir(), 'vdb-quickstart-'));
  const server = run(['start'], { VDB_DATA_DIR: data, VDB_LISTEN: '127.0.0.1:0', VDB_HTTP: '127.0.0.1:0' });
  t.teardown(async () => {
    await server.stop('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  });
  const listening = await server.waitFor(/"listen":"(127\.0\.0\.1:\d+)","http":"(127\.0\.0\.1:\d+)"/, 120_000);
  const [, address, http] = listening;
  const health = await fetch(`http://${http}/health`);
  t.same(await health.json(), { status: 'ok' }, '/health answers ok');
  const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  const db = await Verity.connect({ addresses: [address as string], token });
  try {
    await db.createTenant({ id: 1, name: 'clinic' });
    const w = await db.tenant(1).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT)');
    await db.tenant(1).execute("INSERT INTO p VALUES (1, 'Ann')");
    const r = await db.tenant(1).query('SELECT name FROM p');
    t.same(r.rows, [{ name: 'Ann' }]);
    t.ok(r.position > w.position);
  } finally {
    await db.close();
  }
  // Ctrl-C: the terminal signals the whole process group.
  await server.stop('SIGINT');
  for (let i = 0; i < 200 && !/"msg":"stopped"/.test(server.output()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.match(server.output(), /"exitCode":0,"msg":"stopped"/, 'Ctrl-C stops the server cleanly');
});

t.test('npm run cluster -- --nodes 3, as the README says, runs a local 3-replica cluster', async (t) => {
  t.match(readme, /npm run cluster -- --nodes 3/, 'the README documents `npm run cluster -- --nodes 3`');
  const dir = mkdtempSync(join(tmpdir(), 'vdb-quickstart-cluster-'));
  const cluster = run(['run', 'cluster', '--', '--nodes', '3', '--dir', join(dir, 'cluster'), '--base-port', String(await freeBasePort(6))], {});
  t.teardown(async () => {
    await cluster.stop('SIGKILL');
    // A replica that outlived vdb-admin (it should not) must not outlive the test: stop them by their pid files.
    try {
      execFileSync('env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'packages/admin/dist/src/main.js'), 'cluster', 'stop', '--dir', join(dir, 'cluster')],
        { stdio: 'ignore', timeout: 30_000 });
    } catch { /* nothing left to stop */ }
    rmSync(dir, { recursive: true, force: true });
  });
  const addresses = (await cluster.waitFor(/addresses: (\S+)/, 180_000))[1]?.split(',') ?? [];
  const token = (await cluster.waitFor(/token: (\S+)/, 5_000))[1] as string;
  t.equal(addresses.length, 3, 'three client addresses are printed');
  const db = await Verity.connect({ addresses, token });
  try {
    await db.createTenant({ id: 1, name: 'clinic' });
    await db.tenant(1).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT)');
    await db.tenant(1).execute("INSERT INTO p VALUES (1, 'Ann')");
    const r = await db.tenant(1).query('SELECT name FROM p', [], { consistency: 'linearizable' });
    t.same(r.rows, [{ name: 'Ann' }], 'a write is read back linearizably');
  } finally {
    await db.close();
  }
  await cluster.stop('SIGINT');
  // vdb-admin (same process group) may still be stopping the replicas after npm itself exited.
  for (let i = 0; i < 200 && !/stopped 3 replica/.test(cluster.output()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.match(cluster.output(), /stopped 3 replica/, 'Ctrl-C stops the three replicas');
});
