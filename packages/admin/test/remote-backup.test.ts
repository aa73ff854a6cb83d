import t from 'tap';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { Verity } from 'veritydb';
import { startServer } from 'veritydb/testing/vdb-server';
import { startCluster } from 'veritydb/testing/cluster';
import { Log } from '@veritydb/storage';
import { clusterId, Prng, seedFrom } from '@veritydb/types';
import { EXIT_FAILED, EXIT_OK } from '../src/index.js';
import { MANIFEST_FILE, type BackupManifest } from '../src/backup.js';
import { run } from './run.js';

/**
 * Remote `vdb-admin backup --addresses …` against real `vdb-server` processes: a single node
 * keeps taking writes (seeded) while it streams its backup; the backup restores with the
 * unchanged `restore` (which checks every file and the state hash and position), opens with
 * nothing to recover and holds every row acknowledged before it began. Scopes: admin only. A
 * cluster replica refuses with NotSupported.
 */
const seed = seedFrom(process.env, () => Math.floor(Math.random() * 2 ** 31));
t.comment(`SEED=${seed}`);
const root = await mkdtemp(join(tmpdir(), 'vdb-admin-remote-backup-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/')).sort();
}

t.test('single node: a backup taken under concurrent writes restores to its manifest\'s position and state', async (t) => {
  const prng = new Prng(seed);
  const server = await startServer();
  t.teardown(() => server.stop());
  const remote = ['--addresses', server.address, '--token', server.token];
  const db = await Verity.connect({ addresses: [server.address], token: server.token });
  t.teardown(() => db.close());
  await db.createTenant({ id: 1, name: 'notes' });
  const notes = db.tenant(1);
  await notes.execute('CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)');
  // ~20 MB before the backup: far more than the sockets and the client hold, so the backup
  // streams for a while and the writer below runs during it.
  const acknowledged: number[] = [];
  let id = 0;
  for (let i = 0; i < 20; i++) {
    const batch = Array.from({ length: 10 }, () => ({ sql: 'INSERT INTO notes VALUES ($1, $2)', params: [id++, 'x'.repeat(prng.range(50_000, 150_000))] }));
    await notes.batch(batch);
    acknowledged.push(...batch.map((s) => s.params[0] as number));
  }

  let writing = true;
  const during: { id: number; at: number }[] = [];
  const writer = (async () => {
    while (writing) {
      const row = id++;
      await notes.execute('INSERT INTO notes VALUES ($1, $2)', [row, 'y'.repeat(prng.range(10, 20_000))]);
      during.push({ id: row, at: Date.now() });
    }
  })();
  const out = join(root, 'single');
  const started = Date.now();
  let r = await run(['backup', '--out', out, '--json', ...remote]);
  const ended = Date.now();
  writing = false;
  await writer;
  t.equal(r.code, EXIT_OK, r.err);
  const summary = JSON.parse(r.out) as { out: string; position: number; stateHash: string; files: number; bytes: number };
  const manifest = JSON.parse(await readFile(join(out, MANIFEST_FILE), 'utf8')) as BackupManifest;
  t.same(summary, {
    out, position: manifest.position, stateHash: manifest.stateHash, files: manifest.files.length, bytes: manifest.files.reduce((s, f) => s + f.bytes, 0),
  }, 'the --json summary is the embedded one, naming what the manifest holds');
  const overlapping = during.filter((w) => w.at > started && w.at < ended).length;
  t.ok(overlapping > 0, `${overlapping} writes were acknowledged while the backup ran (${ended - started} ms)`);

  const names = manifest.files.map((f) => f.path);
  t.same(await listFiles(join(out, 'data')), names, 'DIR/data holds exactly the manifest\'s files');
  t.notOk(names.some((p) => /(^|\/)LOCK$|\.tmp/.test(p)), 'no lock or temp file');
  for (const path of ['checkpoint', 'cluster.id', 'keys/admin.key', 'admin.token', 'log/00000000.segment', 'log/00000000.index']) {
    t.ok(names.includes(path), `${path} is in the backup`);
  }
  for (const path of ['keys/admin.key', 'admin.token', 'cluster.id']) {
    const mode = (await stat(join(server.dataDir, path))).mode & 0o777;
    t.equal(manifest.files.find((f) => f.path === path)?.mode, mode, `${path} keeps its mode ${mode.toString(8)}`);
    t.equal((await stat(join(out, 'data', path))).mode & 0o777, mode, `and has it on disk`);
  }
  t.match(manifest, { format: 'veritydb-backup', version: 1, cluster: /^0x[0-9a-f]+$/ });

  // The copy's log opens with nothing to recover (checked on a scratch copy: opening may repair).
  const scratch = join(root, 'scratch');
  await cp(join(out, 'data'), scratch, { recursive: true });
  const log = await Log.open(scratch, { cluster: clusterId(BigInt(manifest.cluster)) });
  t.same(log.recovery, { truncated: undefined, indexSlotsRebuilt: 0, indexRepairs: [], indexHeadersRebuilt: [], faulty: [] }, 'no torn tail, no index repair');
  t.equal(log.head().position, manifest.position, 'the log ends at the manifest\'s position');
  await log.close();

  const restored = join(root, 'restored');
  r = await run(['restore', '--from', out, '--data-dir', restored, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(JSON.parse(r.out), { dataDir: restored, position: manifest.position, stateHash: manifest.stateHash }, 'restore verified the state hash and position');
  const opened = await Verity.open(restored);
  t.teardown(() => opened.close());
  t.equal(opened.position, manifest.position, 'the restored data dir opens at the manifest\'s position');
  t.equal(opened.stateHash(), manifest.stateHash, 'with its state hash');
  const rows = (await opened.tenant(1).query('SELECT id FROM notes ORDER BY id')).rows.map((row) => Number(row.id));
  t.same(rows.slice(0, acknowledged.length), acknowledged, 'every row acknowledged before the backup began is there');
  t.same(rows, Array.from({ length: rows.length }, (_, i) => i), 'and a prefix of the writes after it, nothing else');
  t.ok(rows.length < id, `the writes after the cut are not (${rows.length} of ${id} rows)`);
  await opened.close();

  // The text summary, and a non-empty --out is refused.
  const second = join(root, 'single-text');
  r = await run(['backup', '--out', second, ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, new RegExp(`^backed up ${server.address} at position \\d+ \\(state [0-9a-f]{64}\\): \\d+ file\\(s\\), \\d+ bytes -> ${second}\\n$`));
  r = await run(['backup', '--out', second, ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: NotEmpty: --out .* is not empty/, 'a non-empty --out is refused');

  // Scopes: a tenant token may not take a backup.
  r = await run(['token', 'create', '--scope', 'tenant:1:read', '--scope', 'tenant:1:write', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const forbidden = join(root, 'forbidden');
  r = await run(['backup', '--out', forbidden, '--addresses', server.address, '--token', r.out.trim()]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: Forbidden: .*needs scope admin/, 'a backup needs the admin scope');
  await t.rejects(readFile(join(forbidden, MANIFEST_FILE)), 'and leaves no manifest');

  // The SDK: embedded mode has no remote backup.
  const embedded = await Verity.open(join(root, 'embedded'));
  await t.rejects(async () => { for await (const _ of embedded.backup()) break; }, { code: 'NotSupported' }, 'embedded Verity.backup is NotSupported');
  await embedded.close();
});

t.test('3-replica cluster: a remote backup is refused with NotSupported, saying what to do', async (t) => {
  const cluster = await startCluster(t.teardown, join(root, 'cluster'), 3);
  await cluster.primary();
  const out = join(root, 'cluster-backup');
  const r = await run(['backup', '--out', out, '--json', '--addresses', cluster.addresses.join(','), '--token', cluster.token]);
  t.equal(r.code, EXIT_FAILED);
  const error = (JSON.parse(r.err) as { error: { code: string; message: string } }).error;
  t.equal(error.code, 'NotSupported', 'the typed error');
  t.match(error.message, /cluster replica is not supported yet.*vdb-admin backup --data-dir/, 'naming what to do instead');
  await t.rejects(readFile(join(out, MANIFEST_FILE)), 'no manifest is written');
});
