import { randomBytes } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { U128_MAX, VerityError } from '@veritydb/types';
import { syncDirectory } from '@veritydb/storage';

export const CLUSTER_ID_FILE = 'cluster.id';

/**
 * Reads `<dir>/cluster.id` (hex), creating it on a fresh dir with `configured`, else with
 * `fresh`, else with a random id. A mismatch with the configured id fails closed: a data dir
 * belongs to one cluster for life.
 */
export async function clusterIdentity(dir: string, configured: bigint | null, fresh: bigint | undefined): Promise<bigint> {
  const path = join(dir, CLUSTER_ID_FILE);
  let text: string | null = null;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== null) {
    if (!/^[0-9a-f]{1,32}$/.test(text)) throw new VerityError('CorruptIdentity', `${path} does not hold a hex cluster id`);
    const stored = BigInt(`0x${text}`);
    if (configured !== null && configured !== stored) {
      throw new VerityError('ClusterMismatch', `${dir} belongs to cluster 0x${text}, the configuration says 0x${configured.toString(16)}`);
    }
    return stored;
  }
  const id = configured ?? fresh ?? (BigInt(`0x${randomBytes(16).toString('hex')}`) & U128_MAX) | 1n;
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w', 0o644);
  try {
    await file.writeFile(`${id.toString(16)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  await syncDirectory(dir);
  return id;
}
