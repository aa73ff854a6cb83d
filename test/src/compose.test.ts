/**
 * Compose equivalence: docker-compose.yml, read as compose reads it, is run as local
 * `vdb-server` processes (see compose-cluster.ts) for the default 3-replica cluster and for the
 * README's 5-replica command; the cluster must form and pass a smoke test through the SDK. A
 * compose file that drifts from the server's command line fails here with the server's stderr.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { Verity } from 'veritydb';
import { clusterLimits, containerPort, LocalCluster, type ClusterOptions } from './compose-cluster.js';
import { activeServices, interpolate, loadCompose, type Vars } from './compose.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const dockerfileText = readFileSync(join(root, 'Dockerfile'), 'utf8');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** A `docker compose … up` line of the README: the variables set before it and its profiles. */
function readmeCommand(pattern: RegExp): { vars: Vars; profiles: string[]; line: string } | null {
  const line = readme.split('\n').map((l) => l.trim()).find((l) => pattern.test(l));
  if (line === undefined) return null;
  const [, assignments = '', rest = ''] = /^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(docker compose .*)$/.exec(line) ?? [];
  const vars = Object.fromEntries(assignments.trim().split(/\s+/).filter((a) => a !== '').map((a) => {
    const eq = a.indexOf('=');
    return [a.slice(0, eq), a.slice(eq + 1)];
  }));
  return { vars, profiles: [...rest.matchAll(/--profile[= ](\S+)/g)].map((m) => m[1] as string), line };
}

const ROWS: readonly { id: number; name: string }[] = [
  { id: 1, name: 'Ann' }, { id: 2, name: 'Bo' }, { id: 3, name: 'Cy' }, { id: 4, name: 'Di' }, { id: 5, name: 'Ed' },
];

async function withCluster(t: Test, options: ClusterOptions, body: (cluster: LocalCluster) => Promise<void>): Promise<void> {
  const cluster = await LocalCluster.start(options);
  t.teardown(() => cluster.stop());
  await body(cluster);
  await cluster.stop();
  t.same(cluster.exitCodes(), cluster.nodes.map(() => 0), 'every replica exits 0 on SIGTERM');
}

/** The cluster forms, the healthchecks pass, and the SDK writes and reads through it. */
async function smoke(t: Test, cluster: LocalCluster, replicas: number): Promise<void> {
  t.equal(cluster.nodes.length, replicas, `${replicas} services start`);
  for (const node of cluster.nodes) {
    const peers = (node.setting('--peers', 'VDB_PEERS') ?? '').split(',');
    t.equal(peers.length, replicas, `${node.service.name} lists ${replicas} peers`);
  }
  const keyFiles = new Set(cluster.nodes.map((n) => n.setting('--admin-key', 'VDB_ADMIN_KEY')));
  t.equal(keyFiles.size, 1, 'every replica uses the same admin key file (the shared volume)');
  const keyFile = [...keyFiles][0];
  if (keyFile === undefined) throw new Error('no --admin-key / VDB_ADMIN_KEY');

  const formed = await cluster.waitFor('cluster ready', clusterLimits.readyWaitMs,
    (reports) => reports.every((r) => r.ready && r.status === 'normal' && r.view === (reports[0] as { view: number }).view));
  t.same(formed.map((r) => r.replica), cluster.nodes.map((_, i) => i), 'each service is the replica its index says');
  t.equal(formed.filter((r) => r.role === 'primary').length, 1, 'exactly one primary');
  // Like compose, which retries a healthcheck: a replica may still be settling into the view.
  for (const node of cluster.nodes) {
    let code = await cluster.healthcheck(node);
    for (let attempt = 0; attempt < 20 && code !== 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      code = await cluster.healthcheck(node);
    }
    t.equal(code, 0, `${node.service.name}: the compose healthcheck passes`);
  }

  const token = readFileSync(join(dirname(keyFile), 'admin.token'), 'utf8').trim();
  const addresses = cluster.nodes.map((n) => n.published(containerPort(n.containerSetting('--listen', 'VDB_LISTEN'))));
  const db = await Verity.connect({ addresses, token });
  let last = 0;
  try {
    await db.createTenant({ id: 1, name: 'compose' });
    const tenant = db.tenant(1);
    await tenant.execute('CREATE TABLE patients (id BIGINT PRIMARY KEY, name TEXT NOT NULL)');
    for (const row of ROWS.slice(0, 3)) last = (await tenant.execute('INSERT INTO patients VALUES ($1, $2)', [row.id, row.name])).position;
    last = (await tenant.execute('INSERT INTO patients VALUES ($1, $2), ($3, $4)', [4, 'Di', 5, 'Ed'])).position;
    const read = await tenant.query('SELECT id, name FROM patients ORDER BY id', [], { consistency: 'linearizable' });
    t.same(read.rows, ROWS, 'a linearizable read returns every row written');
    t.ok(read.position >= last, 'the read saw the last write');
  } finally {
    await db.close();
  }
  const caught = await cluster.waitFor('every replica at the same commit', clusterLimits.commitWaitMs,
    (reports) => reports.every((r) => r.commit >= last && r.commit === (reports[0] as { commit: number }).commit && r.applied === r.commit));
  t.ok(caught.every((r) => r.commit === caught[0]?.commit && r.commit >= last), `every /ready reports commit ${caught[0]?.commit ?? '?'} ≥ ${last}`);
}

t.test('docker compose up: the default 3-replica cluster runs as local processes and serves the SDK', async (t) => {
  const command = readmeCommand(/^docker compose up\b/);
  t.ok(command, 'the README documents `docker compose up`');
  const options = { root, composeText, dockerfileText, vars: command?.vars ?? {}, profiles: command?.profiles ?? [] };
  await withCluster(t, options, (cluster) => smoke(t, cluster, 3));
});

t.test('the README 5-replica command: the `five` profile with a 5-entry peer list on every replica', async (t) => {
  const command = readmeCommand(/docker compose .*--profile[= ]five\b.*\bup\b/);
  t.ok(command, 'the README documents a 5-replica `docker compose --profile five … up`');
  if (command === null) return;
  await withCluster(t, { root, composeText, dockerfileText, vars: command.vars, profiles: command.profiles }, (cluster) => smoke(t, cluster, 5));
});

t.test('the `five` profile without its peer list is refused by the server, not silently a 3-replica cluster', async (t) => {
  const services = activeServices(loadCompose(composeText, {}).services, ['five']);
  t.equal(services.length, 5, 'the profile adds two services');
  const cluster = await LocalCluster.start({ root, composeText, dockerfileText, vars: {}, profiles: ['five'] });
  t.teardown(() => cluster.stop());
  for (const name of ['vdb3', 'vdb4']) {
    const exit = await cluster.exitOf(name, clusterLimits.readyWaitMs);
    t.equal(exit?.code, 2, `${name} exits with the configuration error code`);
    t.match(exit?.stderr, /replica index \d is not below the 3 peers/, `${name} says why on stderr`);
  }
});

/** docker-compose.yml with one service changed by `edit`. */
function editedCompose(edit: (service: Record<string, unknown>) => void): string {
  const doc = parse(composeText, { merge: true }) as { services: Record<string, Record<string, unknown>> };
  edit(doc.services["vdb1"] as Record<string, unknown>);
  return stringify(doc);
}

t.test('drift: a command line the server refuses fails the test with the server\'s stderr', async (t) => {
  // Known flags (so the static check passes), refused by the server itself.
  const compose = editedCompose((s) => { s['command'] = ['--replica-index', '1', '--replica-index', '1']; });
  const cluster = await LocalCluster.start({ root, composeText: compose, dockerfileText, vars: {}, profiles: [] });
  t.teardown(() => cluster.stop());
  await t.rejects(cluster.waitFor('cluster ready', clusterLimits.readyWaitMs, () => true),
    /service vdb1 exited early with code 2; stderr: vdb-server: --replica-index is given twice/);
});

t.test('drift: a setting vdb-server does not document is refused before anything starts', async (t) => {
  const unknownEnv = editedCompose((s) => { (s['environment'] as Record<string, string>)['VDB_PEER'] = 'vdb0:7420'; });
  await t.rejects(LocalCluster.start({ root, composeText: unknownEnv, dockerfileText, vars: {}, profiles: [] }),
    /service vdb1: VDB_PEER is not a vdb-server setting/);
  const unknownFlag = editedCompose((s) => { s['command'] = ['--no-such-flag', 'x']; });
  await t.rejects(LocalCluster.start({ root, composeText: unknownFlag, dockerfileText, vars: {}, profiles: [] }),
    /service vdb1: --no-such-flag is not a vdb-server flag/);
});

t.test('interpolation follows compose rules', async (t) => {
  t.equal(interpolate('${A:-x,y}', {}), 'x,y');
  t.equal(interpolate('${A:-x}', { A: '' }), 'x', ':- replaces an empty value');
  t.equal(interpolate('${A-x}', { A: '' }), '', '- keeps an empty value');
  t.equal(interpolate('${A:-x}', { A: 'a' }), 'a');
  t.equal(interpolate('$A/${B}', { A: 'a', B: 'b' }), 'a/b');
  t.equal(interpolate('$$A', { A: 'a' }), '$A', '$$ is a literal $');
  t.equal(interpolate('${A:-${B:-z}}', {}), 'z', 'defaults nest');
  t.equal(interpolate('${A:+set}', { A: 'a' }), 'set');
  t.throws(() => interpolate('${A:?needed}', {}), /A is missing a value: needed/);
});
