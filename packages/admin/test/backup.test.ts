import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { SERVER_MAIN } from 'veritydb/testing/vdb-server';
import { ensureAdminKeys } from '@veritydb/server';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../src/index.js';
import { run } from './run.js';

const root = await mkdtemp(join(tmpdir(), 'vdb-admin-backup-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const source = join(root, 'source');

/** Everything a reader can see: every tenant's rows, history and events. */
async function snapshot(dir: string): Promise<{ hash: string; position: number; reads: unknown[] }> {
  const db = await Verity.open(dir);
  try {
    const reads: unknown[] = [];
    for (const tenant of [1, 2]) {
      reads.push((await db.tenant(tenant).query('SELECT * FROM p ORDER BY id')).rows);
      reads.push((await db.tenant(tenant).queryAt('SELECT * FROM p ORDER BY id', 6)).rows);
      reads.push((await db.tenant(tenant).query("SELECT position, event_type, data FROM __events WHERE stream = 'p' ORDER BY position")).rows);
    }
    return { hash: db.stateHash(), position: db.position, reads };
  } finally {
    await db.close();
  }
}

t.before(async () => {
  const db = await Verity.open(source, { checkpointIntervalEntries: 5 });
  for (const tenant of [1, 2]) {
    await db.createTenant({ id: tenant, name: `t${tenant}` });
    await db.tenant(tenant).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT NOT NULL)');
  }
  for (let i = 1; i <= 12; i++) await db.tenant(1 + (i % 2)).execute('INSERT INTO p VALUES ($1, $2)', [i, `v${i}`]);
  await db.tenant(1).execute("UPDATE p SET v = 'changed' WHERE id = 2");
  await db.tenant(2).execute('DELETE FROM p WHERE id = 3');
  await db.close();
  await ensureAdminKeys(source, Math.floor(Date.now() / 1000));
});

t.test('backup then restore gives a data dir with the identical state', async (t) => {
  const before = await snapshot(source);
  const out = join(root, 'backup');
  let r = await run(['backup', '--out', out, '--data-dir', source, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  const summary = JSON.parse(r.out) as { position: number; stateHash: string; files: number };
  t.equal(summary.stateHash, before.hash, 'the manifest records the state it saw');
  t.equal(summary.position, before.position);
  const manifest = JSON.parse(await readFile(join(out, 'MANIFEST.json'), 'utf8')) as { files: { path: string }[] };
  const paths = manifest.files.map((f) => f.path);
  t.ok(paths.includes('log/00000000.segment') && paths.includes('checkpoint') && paths.includes('cluster.id') && paths.includes('keys/admin.key'), paths.join(' '));
  t.notOk(paths.some((p) => p.endsWith('LOCK')), 'no lock files');

  const restored = join(root, 'restored');
  r = await run(['restore', '--from', out, '--data-dir', restored]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, new RegExp(`^restored .* position ${before.position}, state ${before.hash} verified\\n$`));
  t.same(await snapshot(restored), before, 'same state hash, position and query results');
  t.equal((await stat(join(restored, 'keys', 'admin.key'))).mode & 0o777, 0o600, 'the admin key stays private');

  const exported = [join(root, 'a.vdbx'), join(root, 'b.vdbx')];
  t.equal((await run(['export', '--tenant', '1', '--out', exported[0] as string, '--data-dir', source])).code, EXIT_OK);
  t.equal((await run(['export', '--tenant', '1', '--out', exported[1] as string, '--data-dir', restored])).code, EXIT_OK);
  const digests = await Promise.all(exported.map(async (f) => (JSON.parse((await readFile(f)).subarray(12, 12 + (await readFile(f)).readUInt32LE(8)).toString()) as { recordsHash: string }).recordsHash));
  t.equal(digests[0], digests[1], 'the restored log holds the same records');
});

t.test('restore refuses a non-empty target, a damaged backup and a non-backup', async (t) => {
  const out = join(root, 'backup2');
  t.equal((await run(['backup', '--out', out, '--data-dir', source])).code, EXIT_OK);
  const occupied = join(root, 'occupied');
  await mkdir(occupied);
  await writeFile(join(occupied, 'keep.txt'), 'mine');
  let r = await run(['restore', '--from', out, '--data-dir', occupied]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: NotEmpty: --data-dir .*occupied is not empty \(1 entry\): refusing to overwrite anything\n$/);
  t.equal(await readFile(join(occupied, 'keep.txt'), 'utf8'), 'mine', 'nothing was touched');

  const segment = join(out, 'data', 'log', '00000000.segment');
  const bytes = await readFile(segment);
  bytes[100] = (bytes[100] as number) ^ 0x40;
  await writeFile(segment, bytes);
  const target = join(root, 'never');
  r = await run(['restore', '--from', out, '--data-dir', target]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /DamagedBackup: .*log\/00000000\.segment does not match the manifest \(hash differs\): the backup is damaged\n$/);
  await t.rejects(stat(target), { code: 'ENOENT' }, 'a damaged backup writes nothing');

  r = await run(['restore', '--from', root, '--data-dir', target]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /NotABackup: .* holds no MANIFEST\.json/);
  r = await run(['restore', '--from', out]);
  t.equal(r.code, EXIT_USAGE);
  r = await run(['backup', '--out', out, '--data-dir', source]);
  t.equal(r.code, EXIT_FAILED, 'backup refuses a non-empty --out');
  t.match(r.err, /NotEmpty: --out .* is not empty/);
  r = await run(['backup', '--out', join(root, 'x'), '--data-dir', join(root, 'no-db')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /NoDatabase/);
});

t.test('backup and export refuse a data dir a running server holds', async (t) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_')));
  const child = spawn(process.execPath, [SERVER_MAIN, '--data-dir', source, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); if (output.includes('"listening"') || output.includes('listening')) resolve(); });
    child.once('exit', () => reject(new Error(`vdb-server exited: ${output}`)));
  });
  let r = await run(['backup', '--out', join(root, 'while-running'), '--data-dir', source]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, new RegExp(`^vdb-admin: DirectoryLocked: .*source is in use by process ${child.pid} \\(a running vdb-server or another vdb-admin\\?\\): stop it first`));
  r = await run(['export', '--tenant', '1', '--out', join(root, 'while-running.vdbx'), '--data-dir', source]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, new RegExp(`in use by process ${child.pid}`));
  child.kill('SIGTERM');
  await exited;
  r = await run(['backup', '--out', join(root, 'after-stop'), '--data-dir', source]);
  t.equal(r.code, EXIT_OK, `once the server stopped: ${r.err}`);
});
