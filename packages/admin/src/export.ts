import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createBlake3Hasher, ed25519Sign } from '@veritydb/crypto';
import { CLUSTER_ID_FILE } from '@veritydb/runtime';
import { encodeRecord, Log, RECORD_VERSION_BLAKE3, syncDirectory, type LogRecord } from '@veritydb/storage';
import {
  assert, checksumEqual, checksumHex, clusterId as toClusterId, position as toPosition, tenantId as toTenantId, VerityError,
} from '@veritydb/types';
import { encodeExportHead, encodeStatement, signedMessage, type HeadStatement } from './export-format.js';
import { keyId, type AdminKey } from './keys.js';

export interface ExportSummary {
  readonly out: string;
  readonly bytes: number;
  readonly statement: HeadStatement;
}

/**
 * Writes tenant `tenant`'s chain from the log of `dataDir` to `out` (format in
 * export-format.ts): the data dir must not be open elsewhere (the log's lock says so). The file
 * appears complete or not at all (temp file, fsync, rename).
 */
export async function exportTenant(dataDir: string, tenant: number, out: string, key: AdminKey, now: Date): Promise<ExportSummary> {
  const { log, cluster } = await openLog(dataDir);
  try {
    const head = log.head();
    const tenantHead = log.tenantHead(toTenantId(tenant));
    if (tenantHead === undefined) throw new VerityError('TenantNotFound', `tenant ${tenant} has no records in ${dataDir}`);
    const positions = await chainPositions(log, tenant, tenantHead.position);
    const digest = await createBlake3Hasher();
    for (const p of positions) digest.update(frameOf(await readRecord(log, p, tenant)));
    const statement: HeadStatement = {
      format: 'veritydb-export', version: 1, hash: 'blake3-256', recordVersion: RECORD_VERSION_BLAKE3,
      cluster: `0x${cluster.toString(16)}`, tenant, exportedAt: now.toISOString(),
      logHead: { position: head.position, hash: checksumHex(head.hash) },
      tenantHead: { position: tenantHead.position, hash: checksumHex(tenantHead.hash) },
      records: positions.length, recordsHash: checksumHex(digest.digest()),
      publicKey: Buffer.from(key.publicKey).toString('hex'), keyId: keyId(key.publicKey),
    };
    const statementBytes = encodeStatement(statement);
    const headBytes = encodeExportHead(statementBytes, ed25519Sign(key.secretKey, signedMessage(statementBytes)));
    const bytes = await writeAtomically(out, async (write) => {
      await write(headBytes);
      for (const p of positions) await write(frameOf(await readRecord(log, p, tenant)));
    });
    return { out, bytes, statement };
  } finally {
    await log.close();
  }
}

/** Opens the data dir's log (recovering it as any opener does); refuses a dir in use. */
export async function openLog(dataDir: string): Promise<{ log: Log; cluster: bigint }> {
  const cluster = await clusterOf(dataDir);
  try {
    return { log: await Log.open(dataDir, { cluster: toClusterId(cluster) }), cluster };
  } catch (error) {
    throw inUse(error, dataDir);
  }
}

/** The cluster id a data dir belongs to (`cluster.id`, written at its first open). */
export async function clusterOf(dataDir: string): Promise<bigint> {
  const path = join(dataDir, CLUSTER_ID_FILE);
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new VerityError('NoDatabase', `${dataDir} holds no database (no ${CLUSTER_ID_FILE})`);
    throw error;
  }
  if (!/^[0-9a-f]{1,32}$/.test(text)) throw new VerityError('CorruptIdentity', `${path} does not hold a hex cluster id`);
  try {
    await stat(join(dataDir, 'log'));
  } catch {
    throw new VerityError('NoDatabase', `${dataDir} holds no log directory`);
  }
  return BigInt(`0x${text}`);
}

/** A lock held by another process, said the way an operator acts on it. */
export function inUse(error: unknown, dataDir: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'LogLocked' && code !== 'DirectoryLocked') return error;
  const pid = (error as { details?: { pid?: unknown } }).details?.pid;
  return new VerityError('DirectoryLocked', `${dataDir} is in use${typeof pid === 'number' ? ` by process ${pid}` : ''} (a running vdb-server or another vdb-admin?): ` +
    'stop it first; embedded commands need the data dir to themselves');
}

/** The tenant's chain, oldest first, walked back from its head along tenantPrevPosition. */
async function chainPositions(log: Log, tenant: number, head: number): Promise<number[]> {
  const positions: number[] = [];
  let next = head;
  // Bounded: every step goes to a strictly smaller position (the record format guarantees it).
  while (next > 0) {
    const record = await readRecord(log, next, tenant);
    positions.push(next);
    assert(record.tenantPrevPosition < next, 'tenant links point backwards');
    next = record.tenantPrevPosition;
  }
  return positions.reverse();
}

async function readRecord(log: Log, p: number, tenant: number): Promise<LogRecord> {
  const record = await log.read(toPosition(p));
  if (record === undefined) throw new VerityError('CorruptLog', `tenant ${tenant}'s chain names position ${p}, beyond the log head`);
  if (record.tenant !== tenant) throw new VerityError('CorruptLog', `tenant ${tenant}'s chain names position ${p}, which is another tenant's record`);
  return record;
}

/** The record's frame exactly as on disk: encoding is deterministic, and the hash proves it. */
function frameOf(record: LogRecord): Uint8Array {
  const { bytes, record: encoded } = encodeRecord(record, record);
  assert(checksumEqual(encoded.hash, record.hash), `re-encoded record ${record.position} has the same hash`);
  return bytes;
}

/** Writes `path` via a temp file: fsync, rename, fsync of the directory. Returns the bytes written. */
export async function writeAtomically(path: string, fill: (write: (bytes: Uint8Array) => Promise<void>) => Promise<void>): Promise<number> {
  const temp = `${path}.tmp-${process.pid}`;
  const file = await open(temp, 'wx', 0o600);
  let written = 0;
  try {
    await fill(async (bytes) => {
      await file.write(bytes);
      written += bytes.length;
    });
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temp, { force: true });
    throw error;
  }
  await file.close();
  await rename(temp, path);
  await syncDirectory(dirname(resolve(path)));
  return written;
}
