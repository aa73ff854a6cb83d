import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAdminKeys, loadConfig, verifyToken } from '@veritydb/server';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../src/index.js';
import { run } from './run.js';

const formatAddress = (a: { host: string; port: number }): string => `${a.host}:${a.port}`;
const root = await mkdtemp(join(tmpdir(), 'vdb-admin-cluster-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

interface Init { clusterId: string; configs: string[]; addresses: string[]; http: string[]; token: string }

for (const nodes of [3, 5]) {
  t.test(`cluster init --nodes ${nodes}: files, modes, JSON, and configs vdb-server loads`, async (t) => {
    const dir = join(root, `c${nodes}`);
    const r = await run(['cluster', 'init', '--nodes', String(nodes), '--dir', dir, '--base-port', '27400', '--json']);
    t.equal(r.code, EXIT_OK, r.err);
    const init = JSON.parse(r.out) as Init;
    t.same(Object.keys(init), ['clusterId', 'configs', 'addresses', 'http', 'token'], 'exactly the DESIGN §11 fields');
    t.match(init.clusterId, /^0x[0-9a-f]{1,32}$/);
    t.same(init.configs, Array.from({ length: nodes }, (_, i) => join(dir, `replica-${i}.toml`)));
    t.same(init.addresses, Array.from({ length: nodes }, (_, i) => `127.0.0.1:${27400 + 2 * i}`));
    t.same(init.http, Array.from({ length: nodes }, (_, i) => `127.0.0.1:${27401 + 2 * i}`));
    t.same((await readdir(dir)).sort(), ['admin.key', 'admin.pub', 'admin.token', ...init.configs.map((c) => c.slice(dir.length + 1))].sort());

    const mode = async (name: string): Promise<number> => (await stat(join(dir, name))).mode & 0o777;
    t.equal(await mode('admin.key'), 0o600, 'the secret key is private');
    t.equal(await mode('admin.token'), 0o600, 'the token is private');
    t.equal(await mode('admin.pub'), 0o644);
    t.match(await readFile(join(dir, 'admin.key'), 'utf8'), /^[0-9a-f]{64}\n$/, 'hex 32-byte seed, as keys.ts writes it');
    t.equal((await readFile(join(dir, 'admin.token'), 'utf8')).trim(), init.token);

    const nowSeconds = Math.floor(Date.now() / 1000);
    const key = await ensureAdminKeys(dir, nowSeconds, join(dir, 'admin.key'));
    t.equal(key.createdTokenPath, null, 'the server\'s loader reads the key as it is');
    t.equal(Buffer.from(key.publicKey).toString('hex'), (await readFile(join(dir, 'admin.pub'), 'utf8')).trim(), 'admin.pub is its public key');
    const check = verifyToken(init.token, key.publicKey, nowSeconds);
    t.ok(check.ok && check.claims.scopes.some((s) => s.kind === 'admin'), 'the token is an admin token signed by the cluster key');

    for (let i = 0; i < nodes; i++) {
      const outcome = loadConfig({ argv: ['--config', init.configs[i] as string], env: {}, readFile: (path) => readFileSync(path, 'utf8') });
      t.equal(outcome.kind, 'config', outcome.kind === 'error' ? outcome.message : `replica ${i} loads`);
      if (outcome.kind !== 'config') continue;
      const c = outcome.config;
      t.equal(c.dataDir, join(dir, `replica-${i}`), 'its own data dir under DIR');
      t.equal(formatAddress(c.listen), init.addresses[i]);
      t.equal(formatAddress(c.http), init.http[i]);
      t.equal(c.clusterId, BigInt(init.clusterId));
      t.equal(c.replicaIndex, i);
      t.same(c.peers.map(formatAddress), init.addresses);
      t.equal(c.adminKey, join(dir, 'admin.key'));
    }

    const again = await run(['cluster', 'init', '--nodes', String(nodes), '--dir', dir]);
    t.equal(again.code, EXIT_FAILED, 'init never overwrites a cluster');
    t.match(again.err, /^vdb-admin: ClusterExists: .* already holds a cluster \(admin\.key, admin\.token, replica-0\.toml/);
    t.equal((await readFile(join(dir, 'admin.token'), 'utf8')).trim(), init.token, 'the token is untouched');

    const token = await run(['token', 'create', '--scope', 'tenant:1:read', '--admin-key', join(dir, 'admin.key')]);
    t.equal(token.code, EXIT_OK, token.err);
    t.ok(verifyToken(token.out.trim(), key.publicKey, nowSeconds).ok, 'token create signs with the cluster key file');
  });
}

t.test('cluster init: text output, default ports, usage errors', async (t) => {
  const dir = join(root, 'text');
  let r = await run(['cluster', 'init', '--nodes', '3', '--dir', dir]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /^cluster 0x[0-9a-f]+: 3 replicas\n  replica 0: 127\.0\.0\.1:7420 \(http 127\.0\.0\.1:7421\)  vdb-server --config .*replica-0\.toml\n/);
  t.match(r.out, /addresses: 127\.0\.0\.1:7420,127\.0\.0\.1:7422,127\.0\.0\.1:7424\ntoken: vdb1\.[^\n]+\n$/);
  for (const [argv, message] of [
    [['cluster', 'init', '--dir', join(root, 'u1')], /--nodes is required \(3 or 5\)/],
    [['cluster', 'init', '--nodes', '4', '--dir', join(root, 'u2')], /--nodes must be 3 or 5, got '4'/],
    [['cluster', 'init', '--nodes', '3', '--base-port', '65530', '--dir', join(root, 'u3')], /--base-port must be an integer/],
    [['cluster', 'init', '--nodes', '3', '--data-dir', join(root, 'u4')], /cluster commands take --dir DIR/],
    [['cluster', 'reboot', '--dir', dir], /unknown cluster command 'reboot'/],
    [['cluster', 'start', '--dir', dir, '--timeout', 'forever'], /--timeout 'forever' is not a duration/],
  ] as [string[], RegExp][]) {
    r = await run(argv);
    t.equal(r.code, EXIT_USAGE, argv.join(' '));
    t.match(r.err, message);
  }
  r = await run(['cluster', 'status', '--dir', join(root, 'nothing')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /NoCluster: .*nothing holds no replica-<i>\.toml: run vdb-admin cluster init --nodes 3/);
  const idle = join(root, 'idle');
  t.equal((await run(['cluster', 'init', '--nodes', '3', '--dir', idle, '--base-port', '27600'])).code, EXIT_OK);
  r = await run(['cluster', 'status', '--dir', idle, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  const status = JSON.parse(r.out) as { replicas: { index: number; status: string; pid: number | null; ready: boolean }[] };
  t.same(status.replicas.map((s) => [s.index, s.pid, s.ready]), [[0, null, false], [1, null, false], [2, null, false]], 'nothing runs yet');
  r = await run(['cluster', 'stop', '--dir', idle]);
  t.equal(r.code, EXIT_OK, 'stopping a stopped cluster is a no-op');
  t.equal(r.out, 'stopped 0 replica(s)\n');
});
