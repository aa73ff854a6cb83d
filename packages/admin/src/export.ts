import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CLUSTER_ID_FILE, prepareTenantExport, type HeadStatement } from '@veritydb/runtime';
import { Log, syncDirectory } from '@veritydb/storage';
import { clusterId as toClusterId, VerityError } from '@veritydb/types';
import type { AdminKey } from './keys.js';

export interface ExportSummary {
  readonly out: string;
  readonly bytes: number;
  readonly statement: HeadStatement;
}

/**
 * Writes tenant `tenant`'s chain from the log of `dataDir` to `out` (docs/EXPORT.md, written by
 * the runtime's `prepareTenantExport`, as a server's export request is): the data dir must not
 * be open elsewhere (the log's lock says so). The file appears complete or not at all (temp
 * file, fsync, rename).
 */
export async function exportTenant(dataDir: string, tenant: number, out: string, key: AdminKey, now: Date): Promise<ExportSummary> {
  const { log, cluster } = await openLog(dataDir);
  try {
    const prepared = await prepareTenantExport(log, cluster, tenant, key, now);
    if (prepared === null) throw new VerityError('TenantNotFound', `tenant ${tenant} has no records in ${dataDir}`);
    const bytes = await writeAtomically(out, async (write) => {
      await write(prepared.head);
      for await (const frame of prepared.records()) await write(frame);
    });
    return { out, bytes, statement: prepared.statement };
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
