import t from 'tap';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { startServer, type RunningServer } from 'veritydb/testing/vdb-server';
import { startCluster } from 'veritydb/testing/cluster';
import { ed25519PublicKey } from '@veritydb/crypto';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../src/index.js';
import { EXPORT_PREAMBLE_BYTES, parseStatement, type HeadStatement } from '../src/export-format.js';
import { run } from './run.js';

/**
 * Remote `vdb-admin verify` and `export` against real `vdb-server` processes (a single node, a
 * 3-replica cluster): the remote export passes `verify-export` and holds exactly the records of
 * an embedded export of the same data dir once the server stopped; scopes are enforced; the
 * server keeps taking writes while an export streams; a damaged log is reported with its broken
 * position.
 */
const root = await mkdtemp(join(tmpdir(), 'vdb-admin-remote-audit-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

/** Splits an export file into its statement and its record bytes. */
function parts(file: Uint8Array): { statement: HeadStatement; records: Buffer } {
  const bytes = Buffer.from(file);
  const length = bytes.readUInt32LE(8);
  const statement = parseStatement(bytes.subarray(EXPORT_PREAMBLE_BYTES, EXPORT_PREAMBLE_BYTES + length));
  if (typeof statement === 'string') throw new Error(`bad statement: ${statement}`);
  return { statement, records: bytes.subarray(EXPORT_PREAMBLE_BYTES + length + 64) };
}

async function publicKeyHex(keyFile: string): Promise<string> {
  const secret = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'hex');
  return Buffer.from(ed25519PublicKey(new Uint8Array(secret))).toString('hex');
}

/**
 * Two tenants with rows over several entries: tenant 1 holds `batches` entries of ten 100 kB
 * rows (25 of them: ~25 MB, far more than the client buffers and the sockets hold, so an export
 * read slowly is still streaming on the server), tenant 2 small rows.
 */
async function fill(db: Verity, batches: number): Promise<void> {
  for (const id of [1, 2]) {
    await db.createTenant({ id, name: `tenant-${id}` });
    await db.tenant(id).execute('CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)');
  }
  const big = 'x'.repeat(100_000);
  for (let i = 0; i < batches; i++) {
    await db.tenant(1).batch(Array.from({ length: 10 }, (_, j) => ({ sql: 'INSERT INTO notes VALUES ($1, $2)', params: [i * 10 + j, `${i}:${j}:${big}`] })));
    await db.tenant(2).execute('INSERT INTO notes VALUES ($1, $2)', [i, `other-${i}`]);
  }
}

t.test('single node: remote verify and export, scopes, writes during an export, equal to an embedded export', async (t) => {
  const server: RunningServer = await startServer();
  t.teardown(() => server.stop());
  const remote = ['--addresses', server.address, '--token', server.token];
  const db = await Verity.connect({ addresses: [server.address], token: server.token });
  t.teardown(() => db.close());
  await fill(db, 25);

  let r = await run(['verify', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const whole = JSON.parse(r.out) as { ok: boolean; checked: number };
  t.ok(whole.ok && whole.checked >= 54, `the whole log verified remotely (${whole.checked} records)`);
  r = await run(['verify', '--tenant', '1', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const tenantRecords = (JSON.parse(r.out) as { checked: number }).checked;
  t.ok(tenantRecords >= 27, `tenant 1's chain: ${tenantRecords} records`);
  r = await run(['verify', '--tenant', '1', ...remote]);
  t.equal(r.out, `ok: tenant 1's chain verified, ${tenantRecords} record(s) checked\n`, 'the same line as embedded');

  // Scopes: tenant:1:read may verify and export tenant 1 only.
  r = await run(['token', 'create', '--scope', 'tenant:1:read', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const reader = ['--addresses', server.address, '--token', r.out.trim()];
  r = await run(['verify', '--tenant', '1', '--json', ...reader]);
  t.equal(r.code, EXIT_OK, `tenant:1:read verifies tenant 1: ${r.err}`);
  r = await run(['verify', ...reader]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: Forbidden: .*needs scope admin/, 'but not the whole log');
  r = await run(['export', '--tenant', '2', '--out', join(root, 'forbidden.vdbx'), ...reader]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: Forbidden: .*tenant:2:read/, 'nor export tenant 2');
  const byReader = join(root, 'reader.vdbx');
  r = await run(['export', '--tenant', '1', '--out', byReader, ...reader]);
  t.equal(r.code, EXIT_OK, `tenant:1:read exports tenant 1: ${r.err}`);
  r = await run(['verify-export', byReader, '--public-key', await publicKeyHex(join(server.dataDir, 'keys', 'admin.key'))]);
  t.equal(r.code, EXIT_OK, `the export verifies offline against the server's key: ${r.err}`);

  r = await run(['export', '--tenant', '99', '--out', join(root, 'none.vdbx'), '--json', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(JSON.parse(r.err), { error: { code: 'TenantNotFound' } }, 'a tenant without records is TenantNotFound');
  r = await run(['verify', '--tenant', '99', ...remote]);
  t.match(r.err, /^vdb-admin: TenantNotFound: /);
  r = await run(['export', '--tenant', '1', ...remote]);
  t.equal(r.code, EXIT_USAGE, '--out is required');

  // The server keeps taking writes while an export streams: the consumer stops after the first
  // chunk and writes; the client stops reading at 8 MiB, so the server is still sending.
  const exported: Uint8Array[] = [];
  let chunksAtWrites = 0;
  const positions: number[] = [];
  for await (const chunk of db.exportTenant(1)) {
    exported.push(chunk);
    if (exported.length === 1) {
      for (let i = 1000; i < 1010; i++) positions.push((await db.tenant(2).execute('INSERT INTO notes VALUES ($1, $2)', [i, 'during'])).position);
      chunksAtWrites = exported.length;
    }
  }
  t.equal(positions.length, 10, 'ten writes were acknowledged in the middle of the export');
  t.ok(exported.length > chunksAtWrites + 8, `the export went on after them (${exported.length} chunks)`);
  t.ok(exported.slice(0, -1).every((c) => c.length === 1024 * 1024), 'every chunk but the last is 1 MiB');
  const during = parts(Buffer.concat(exported));
  t.equal(during.statement.records, tenantRecords, 'the export holds tenant 1\'s records');
  t.ok(during.statement.logHead.position < (positions[0] ?? 0), 'as of the moment it began');
  const duringFile = join(root, 'during.vdbx');
  await writeFile(duringFile, Buffer.concat(exported));
  r = await run(['verify-export', duringFile]);
  t.equal(r.code, EXIT_OK, `the streamed file verifies: ${r.err}`);

  // Last: a remote export to compare with an embedded one of the same data dir.
  const remoteFile = join(root, 'single-remote.vdbx');
  r = await run(['export', '--tenant', '1', '--out', remoteFile, '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const summary = JSON.parse(r.out) as { bytes: number; records: number; keyId: string };
  t.match(summary, { bytes: (await readFile(remoteFile)).length, records: tenantRecords }, 'the summary names the file written');
  await db.close();
  await server.halt();
  const embeddedFile = join(root, 'single-embedded.vdbx');
  r = await run(['export', '--tenant', '1', '--out', embeddedFile, '--data-dir', server.dataDir]);
  t.equal(r.code, EXIT_OK, r.err);
  const a = parts(await readFile(remoteFile));
  const b = parts(await readFile(embeddedFile));
  t.ok(a.records.equals(b.records), 'the remote and the embedded export hold the same record bytes');
  t.same({ ...a.statement, exportedAt: '' }, { ...b.statement, exportedAt: '' }, 'and the same statement but for its time');
});

t.test('single node: a damaged record is reported remotely with its position', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  const db = await Verity.connect({ addresses: [server.address], token: server.token });
  t.teardown(() => db.close());
  await db.createTenant({ id: 3, name: 'damaged' });
  await db.tenant(3).execute('CREATE TABLE n (id BIGINT PRIMARY KEY, body TEXT)');
  const marked = await db.tenant(3).execute('INSERT INTO n VALUES (1, $1)', ['MARKER-7f3a9c']);
  for (let i = 2; i < 6; i++) await db.tenant(3).execute('INSERT INTO n VALUES ($1, $2)', [i, 'after']);
  // Bodies are plaintext today (docs/EXPORT.md): flip one byte of the marker in the segment, under the running server.
  const segment = join(server.dataDir, 'log', '00000000.segment');
  const at = (await readFile(segment)).indexOf(Buffer.from('MARKER-7f3a9c'));
  t.ok(at > 0, 'the marker is in the segment');
  const file = await open(segment, 'r+');
  await file.write(Buffer.from('m'), 0, 1, at);
  await file.close();

  const remote = ['--addresses', server.address, '--token', server.token];
  let r = await run(['verify', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, new RegExp(`^vdb-admin: verify failed at position ${marked.position} \\(\\w[\\w-]*\\): [^\\n]*\\[[^\\n]*00000000\\.segment\\]\\n$`), 'one line with the broken position');
  r = await run(['verify', '--tenant', '3', '--json', ...remote]);
  t.equal(r.code, EXIT_FAILED);
  t.match(JSON.parse(r.out), { tenant: 3, ok: false, position: marked.position }, '--json names the position too');
  r = await run(['export', '--tenant', '3', '--out', join(root, 'damaged.vdbx'), ...remote]);
  t.equal(r.code, EXIT_FAILED, 'no export of a damaged chain');
  t.match(r.err, new RegExp(`^vdb-admin: \\w+: .*record ${marked.position}`));
  await t.rejects(readFile(join(root, 'damaged.vdbx')), 'and no file is left behind');
});

t.test('3-replica cluster: remote export and verify, equal to an embedded export of the answering replica', async (t) => {
  const dir = join(root, 'cluster');
  const cluster = await startCluster(t.teardown, dir, 3);
  const primary = await cluster.primary();
  const db = await Verity.connect({ addresses: [...cluster.addresses], token: cluster.token });
  t.teardown(() => db.close());
  await fill(db, 3);
  await cluster.converged();
  const remote = ['--addresses', cluster.addresses.join(','), '--token', cluster.token];

  let r = await run(['verify', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(JSON.parse(r.out), { ok: true }, 'the ledger verifies remotely');
  r = await run(['verify', '--tenant', '2', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);

  const remoteFile = join(root, 'cluster-remote.vdbx');
  r = await run(['export', '--tenant', '1', '--out', remoteFile, ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /^exported tenant 1: \d+ record\(s\) up to position \d+, log head \d+, signed by key [0-9a-f]{16} \(public key [0-9a-f]{64}\) -> .* \(\d+ bytes\)\n$/);
  const keyFile = join(dir, 'keys', 'admin.key');
  r = await run(['verify-export', remoteFile, '--public-key', await publicKeyHex(keyFile)]);
  t.equal(r.code, EXIT_OK, `verify-export with the cluster's key: ${r.err}`);

  await db.close();
  const answering = cluster.replicas[primary];
  const child = answering?.process?.child;
  t.ok(child !== undefined, 'the primary answered (the client connects to it)');
  child?.kill('SIGTERM');
  await answering?.process?.exited;
  const embeddedFile = join(root, 'cluster-embedded.vdbx');
  r = await run(['export', '--tenant', '1', '--out', embeddedFile, '--data-dir', answering?.dataDir ?? '', '--admin-key', keyFile]);
  t.equal(r.code, EXIT_OK, r.err);
  const a = parts(await readFile(remoteFile));
  const b = parts(await readFile(embeddedFile));
  t.ok(a.records.equals(b.records), 'the remote and the embedded export hold the same record bytes');
  t.same({ ...a.statement, exportedAt: '', logHead: null }, { ...b.statement, exportedAt: '', logHead: null }, 'and the same statement but for its time and log head');
  t.ok(a.statement.logHead.position <= b.statement.logHead.position, 'the ledger only grew after the remote export');
});
