import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '@veritydb/storage';
import { VerityError } from '@veritydb/types';

/**
 * One process at a time per data directory: two appliers of one log would corrupt it. The
 * lock file holds the owner's pid; a lock whose owner is gone (crash, SIGKILL) is taken over.
 */
const LOCK_FILE = 'LOCK';

export interface DirectoryLock {
  release(): Promise<void>;
}

export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new VerityError('DirectoryLocked', `${dir} is in use by process ${owner}`, { dir, pid: owner });
      }
      if (owner === process.pid) throw new VerityError('DirectoryLocked', `${dir} is already open in this process`, { dir });
      await unlink(path).catch(() => undefined);
    }
  }
  throw new VerityError('DirectoryLocked', `could not lock ${dir}`, { dir });
}

