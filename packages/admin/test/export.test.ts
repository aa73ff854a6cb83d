import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { ed25519Keygen, ed25519Sign } from '@veritydb/crypto';
import { ensureAdminKeys, keyId } from '@veritydb/server';
import { clusterId, seedFrom } from '@veritydb/types';
import { Log, type LogRecord } from '@veritydb/storage';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../src/index.js';
import {
  EXPORT_PREAMBLE_BYTES, encodeExportHead, encodeStatement, parseStatement, signedMessage, verifyExport, type HeadStatement,
} from '../src/export-format.js';
import { clusterOf } from '../src/export.js';
import { run } from './run.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

const root = await mkdtemp(join(tmpdir(), 'vdb-admin-export-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `d${dirs++}`);

interface Workload {
  readonly tenants: number[];
  /** [tenant, row id] in order; a repeated id for a tenant is a failing (rejected) insert. */
  readonly writes: [number, number][];
}

const workload: fc.Arbitrary<Workload> = fc.integer({ min: 2, max: 4 }).chain((count) => {
  const tenants = Array.from({ length: count }, (_, i) => i + 1);
  return fc.record({
    tenants: fc.constant(tenants),
    writes: fc.array(fc.tuple(fc.constantFrom(...tenants), fc.integer({ min: 1, max: 6 })), { minLength: 1, maxLength: 25 }),
  });
});

/** A marker only tenant `tenant`'s data holds. */
const marker = (tenant: number, what: string): string => `<<tenant${tenant}-${what}-${seed}>>`;

/** Builds the workload in a data dir (with the admin key a first server start would create). */
async function build(dir: string, w: Workload): Promise<void> {
  const db = await Verity.open(dir);
  for (const tenant of w.tenants) {
    await db.createTenant({ id: tenant, name: marker(tenant, 'name') });
    await db.tenant(tenant).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT NOT NULL)');
  }
  for (const [tenant, id] of w.writes) {
    await db.tenant(tenant).execute('INSERT INTO p VALUES ($1, $2)', [id, marker(tenant, `row${id}`)]).catch(() => undefined);
  }
  await db.close();
  await ensureAdminKeys(dir, Math.floor(Date.now() / 1000));
}

async function logRecords(dir: string): Promise<LogRecord[]> {
  const log = await Log.open(dir, { cluster: clusterId(await clusterOf(dir)) });
  const records: LogRecord[] = [];
  try {
    for await (const record of log.scan(1 as never)) records.push({ ...record, body: record.body.slice() });
  } finally {
    await log.close();
  }
  return records;
}

t.test('an export holds exactly the tenant chain and none of another tenant\'s bytes (property)', async (t) => {
  let runs = 0;
  await fc.assert(fc.asyncProperty(workload, fc.nat(), async (w, pick) => {
    const dir = freshDir();
    await build(dir, w);
    const tenant = w.tenants[pick % w.tenants.length] as number;
    const out = `${dir}.vdbx`;
    const r = await run(['export', '--tenant', String(tenant), '--out', out, '--data-dir', dir, '--json']);
    if (r.code !== EXIT_OK) throw new Error(r.err);
    const file = await readFile(out);
    const check = await verifyExport(file);
    if (!check.ok) throw new Error(check.message);
    const records = await logRecords(dir);
    const mine = records.filter((record) => record.tenant === tenant);
    if (check.statement.records !== mine.length) throw new Error(`export has ${check.statement.records} records, the log ${mine.length}`);
    if (check.statement.logHead.position !== records.length) throw new Error('log head');
    for (const other of w.tenants.filter((x) => x !== tenant)) {
      for (const what of ['name', ...w.writes.filter(([x]) => x === other).map(([, id]) => `row${id}`)]) {
        if (file.includes(marker(other, what))) throw new Error(`tenant ${other}'s ${what} appears in tenant ${tenant}'s export`);
      }
    }
    const mineBodies = mine.map((record) => Buffer.from(record.body));
    for (const record of records.filter((x) => x.tenant !== tenant)) {
      const body = Buffer.from(record.body);
      if (!mineBodies.some((b) => b.equals(body)) && file.includes(body)) throw new Error(`the body of position ${record.position} (tenant ${record.tenant}) appears`);
    }
    if (!file.includes(marker(tenant, 'name'))) throw new Error('the tenant\'s own data is missing');
    runs++;
  }), { seed, numRuns: 4 });
  t.equal(runs, 4, 'every generated database was exported and checked');
});

/** One export with several records of tenant 2 interleaved with tenant 1's, for tampering. */
const fixture = await (async () => {
  const dir = freshDir();
  await build(dir, { tenants: [1, 2], writes: [[1, 1], [2, 1], [2, 2], [1, 2], [2, 3], [2, 3], [1, 3], [2, 4]] });
  const out = `${dir}.vdbx`;
  const r = await run(['export', '--tenant', '2', '--out', out, '--data-dir', dir]);
  if (r.code !== EXIT_OK) throw new Error(r.err);
  const bytes = new Uint8Array(await readFile(out));
  const statementLength = Buffer.from(bytes).readUInt32LE(8);
  const recordsOffset = EXPORT_PREAMBLE_BYTES + statementLength + 64;
  const frames: Uint8Array[] = [];
  for (let at = recordsOffset; at < bytes.length;) {
    const length = Buffer.from(bytes).readUInt32LE(at) + 8;
    frames.push(bytes.slice(at, at + length));
    at += length;
  }
  const statement = parseStatement(bytes.subarray(EXPORT_PREAMBLE_BYTES, EXPORT_PREAMBLE_BYTES + statementLength)) as HeadStatement;
  return { dir, out, bytes, statementLength, recordsOffset, frames, head: bytes.slice(0, recordsOffset), statement };
})();

function withFrames(frames: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat([fixture.head, ...frames]);
}

t.test('a good export verifies, through the CLI too', async (t) => {
  t.equal(fixture.frames.length, 7, 'tenant 2: create, create table, 5 inserts (one rejected)');
  const check = await verifyExport(fixture.bytes);
  t.ok(check.ok);
  let r = await run(['verify-export', fixture.out]);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(r.out, /^ok: tenant 2, 7 record\(s\): every hash and per-tenant link verified/);
  t.match(r.out, /note: checked against the key named in the file/);
  r = await run(['verify-export', fixture.out, '--public-key', fixture.statement.publicKey, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  t.match(JSON.parse(r.out), { ok: true, tenant: 2, records: 7, keyPinned: true });
  r = await run(['verify-export']);
  t.equal(r.code, EXIT_USAGE);
  r = await run(['verify-export', fixture.out, '--data-dir', fixture.dir]);
  t.equal(r.code, EXIT_USAGE, 'verify-export is offline');
  r = await run(['verify-export', join(root, 'missing.vdbx')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: .*ENOENT[^\n]*\n$/);
});

t.test('a flipped byte anywhere is detected and named by where it is (property)', async (t) => {
  const signatureStart = EXPORT_PREAMBLE_BYTES + fixture.statementLength;
  const frameStarts: number[] = [];
  for (let at = fixture.recordsOffset, i = 0; i < fixture.frames.length; i++) {
    frameStarts.push(at);
    at += (fixture.frames[i] as Uint8Array).length;
  }
  let checked = 0;
  await fc.assert(fc.asyncProperty(fc.nat({ max: fixture.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, mask) => {
    const bytes = fixture.bytes.slice();
    bytes[at] = (bytes[at] as number) ^ mask;
    const check = await verifyExport(bytes);
    if (check.ok) throw new Error(`flip at ${at} not detected`);
    if (at < EXPORT_PREAMBLE_BYTES) {
      if (check.fault !== 'format' && check.fault !== 'statement') throw new Error(`preamble flip reported as ${check.fault}: ${check.message}`);
    } else if (at < signatureStart) {
      if (check.fault !== 'statement' && check.fault !== 'signature') throw new Error(`statement flip reported as ${check.fault}: ${check.message}`);
    } else if (at < fixture.recordsOffset) {
      if (check.fault !== 'signature') throw new Error(`signature flip reported as ${check.fault}: ${check.message}`);
    } else {
      const index = frameStarts.filter((start) => start <= at).length;
      if (check.fault !== 'record' || check.record !== index) throw new Error(`flip in record ${index} reported as ${check.fault} ${check.record}: ${check.message}`);
    }
    checked++;
  }), { seed, numRuns: 400 });
  t.equal(checked, 400);
  const bytes = fixture.bytes.slice();
  bytes[fixture.recordsOffset + 8 + 224] = (bytes[fixture.recordsOffset + 8 + 224] as number) ^ 0x01;
  await writeFile(join(root, 'flipped.vdbx'), bytes);
  const r = await run(['verify-export', join(root, 'flipped.vdbx')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: .*flipped\.vdbx: record 1 \(file offset \d+, claims position 3\) is damaged: record CRC mismatch\n$/);
});

t.test('a removed, reordered or appended record is detected with a precise message', async (t) => {
  const f = fixture.frames;
  const last = f.length - 1;
  const cases: [string, Uint8Array[], string, RegExp][] = [
    ['first removed', f.slice(1), 'missing', /^the chain does not start at tenant 2's first record: record 1 \(position \d+\) links to position \d+, which is not in the export$/],
    ['middle removed', [...f.slice(0, 3), ...f.slice(4)], 'missing', /^record 4 \(position \d+\) links to position \d+, but the previous record in the export is position \d+: a record is missing$/],
    ['last removed', f.slice(0, last), 'missing', /^the export ends at position \d+, but the signed tenant head is position \d+: records are missing at the end$/],
    ['two swapped', [f[0], f[2], f[1], ...f.slice(3)] as Uint8Array[], 'order', /^record 3 \(position \d+\) follows position \d+: records are out of order$/],
    ['first two swapped', [f[1], f[0], ...f.slice(2)] as Uint8Array[], 'order', /^record 2 \(position \d+\) follows position \d+: records are out of order$/],
    ['one duplicated', [...f, f[last] as Uint8Array], 'order', /^record 8 \(position \d+\) follows position \d+: records are out of order$/],
    ['cut short', [...f.slice(0, last), (f[last] as Uint8Array).subarray(0, 100)], 'record', /^record 7 \(file offset \d+\) is damaged: record prefix|record of \d+ bytes is cut short/],
    ['none left', [], 'missing', /^the export holds no records, the signed statement says 7$/],
  ];
  for (const [name, frames, kind, message] of cases) {
    const check = await verifyExport(withFrames(frames));
    t.notOk(check.ok, name);
    if (!check.ok) {
      t.equal(check.fault, kind, name);
      t.match(check.message, message, name);
    }
  }
});

t.test('a forged head statement or signature is detected', async (t) => {
  const statementBytes = encodeStatement(fixture.statement);
  const signature = fixture.head.subarray(EXPORT_PREAMBLE_BYTES + fixture.statementLength);
  const records = fixture.frames;
  const forge = (statement: HeadStatement, sig: Uint8Array): Uint8Array => Buffer.concat([encodeExportHead(encodeStatement(statement), sig), ...records]);

  let check = await verifyExport(forge({ ...fixture.statement, logHead: { ...fixture.statement.logHead, position: fixture.statement.logHead.position + 1 } }, signature));
  t.match(check, { ok: false, fault: 'signature' }, 'an edited statement with the old signature');
  t.match(check.ok ? '' : check.message, /^the head statement's signature does not verify with key [0-9a-f]{16}: the statement or the signature was altered$/);

  const attacker = ed25519Keygen();
  const forged: HeadStatement = {
    ...fixture.statement, logHead: { ...fixture.statement.logHead, position: fixture.statement.logHead.position + 5 },
    publicKey: Buffer.from(attacker.publicKey).toString('hex'), keyId: keyId(attacker.publicKey),
  };
  const forgedFile = forge(forged, ed25519Sign(attacker.secretKey, signedMessage(encodeStatement(forged))));
  check = await verifyExport(forgedFile);
  t.ok(check.ok && !check.keyPinned, 'a self-consistent forgery passes only unpinned (the CLI says so)');
  const trusted = new Uint8Array(Buffer.from(fixture.statement.publicKey, 'hex'));
  check = await verifyExport(forgedFile, trusted);
  t.match(check, { ok: false, fault: 'key' }, 'pinned to the cluster key, the forgery is refused');
  t.match(check.ok ? '' : check.message, /names key [0-9a-f]{16}, not the trusted key [0-9a-f]{16}: it was not signed by your cluster/);
  await writeFile(join(root, 'forged.vdbx'), forgedFile);
  await writeFile(join(root, 'cluster.pub'), `${fixture.statement.publicKey}\n`);
  const r = await run(['verify-export', join(root, 'forged.vdbx'), '--public-key', join(root, 'cluster.pub')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /not signed by your cluster\n$/);

  const otherDomain = ed25519Sign(new Uint8Array(32).fill(7), statementBytes);
  check = await verifyExport(forge(fixture.statement, otherDomain));
  t.match(check, { ok: false, fault: 'signature' }, 'a signature over the bare statement (another domain) does not verify');
  t.ok((await verifyExport(forge(fixture.statement, signature), trusted)).ok, 'the untouched parts reassemble into a valid export');
});

t.test('export refusals: unknown tenant, no key, a key for a remote export, missing flags', async (t) => {
  let r = await run(['export', '--tenant', '9', '--out', join(root, 'x.vdbx'), '--data-dir', fixture.dir]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: TenantNotFound: tenant 9 has no records in /);
  const bare = freshDir();
  const db = await Verity.open(bare);
  await db.createTenant({ id: 1, name: 'a' });
  await db.close();
  r = await run(['export', '--tenant', '1', '--out', join(root, 'y.vdbx'), '--data-dir', bare]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: NoAdminKey: .*keys\/admin\.key does not exist: start vdb-server once on this data dir/);
  r = await run(['export', '--tenant', '1', '--out', join(root, 'y.vdbx'), '--addresses', '127.0.0.1:1', '--token', 't', '--admin-key', 'k']);
  t.equal(r.code, EXIT_USAGE, 'a remote export is signed by the server: --admin-key is refused');
  t.match(r.err, /does not take --admin-key/);
  r = await run(['export', '--tenant', '1', '--data-dir', bare]);
  t.equal(r.code, EXIT_USAGE);
  t.match(r.err, /--out is required/);
  r = await run(['export', '--tenant', '2', '--out', join(root, 'z.vdbx'), '--data-dir', join(root, 'nothing-here')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /NoDatabase: .* holds no database/);
});
