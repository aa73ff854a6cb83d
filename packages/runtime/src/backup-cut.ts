import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { readAt, type LogPrefixFile } from '@veritydb/storage';
import { assert, VerityError, type Checksum, type Position } from '@veritydb/types';
import { CHECKPOINT_FILE } from './checkpoint-file.js';

/**
 * What a backup of a serving data dir copies (`SingleNodeEngine.backupCut`), so that the copy is
 * a data dir that opens at exactly `position` with `stateHash`, whatever the engine writes
 * meanwhile:
 *
 * - `checkpoint`: the checkpoint written for the cut, read through a handle opened right after it
 *   was written (later checkpoints replace the file by rename; the handle keeps this one);
 * - `log/…`: every segment and index up to the one holding `position`, each only up to the end of
 *   that record and its slot (`Log.prefixFiles`: bytes that never change). Segments after it are
 *   left out, so the copy's log ends at `position` with no torn tail;
 * - every other file (the cluster id, `keys/`, `admin.token`, …) whole, as it is when the cut is
 *   taken; lock and temp files are left out, as the embedded backup leaves them out.
 */
export interface BackupCut {
  readonly clusterId: bigint;
  /** The checkpoint's position: the last position in the copy. */
  readonly position: Position;
  /** The state hash at `position` (`Kernel.stateHash`). */
  readonly stateHash: Checksum;
  /** Sorted by path. */
  readonly files: readonly BackupSource[];
  /** Closes the checkpoint's handle. Idempotent; call it when the copy is done or abandoned. */
  release(): Promise<void>;
}

export interface BackupSource {
  /** Relative to the data dir, '/'-separated. */
  readonly path: string;
  readonly bytes: number;
  /** Permission bits (0..0o777). */
  readonly mode: number;
  /**
   * The file's `bytes` bytes in order, in chunks of at most `chunkBytes` (one empty chunk for an
   * empty file). Throws `BackupSourceChanged` if the file no longer holds them.
   */
  chunks(chunkBytes: number): AsyncGenerator<Uint8Array>;
}

/** Lock files belong to the process that holds them; temp files to a write in progress. */
export const BACKUP_SKIPPED = /(^|\/)LOCK$|\.tmp(-\d+)?$/;
const LOG_FILE = /^log\/\d{8}\.(segment|index)$/;

/**
 * The sources of a cut of `dir`: `checkpoint` pinned open, the log's prefix files, the rest as
 * listed now. Takes ownership of `checkpoint` (closed by `release`, or here on failure).
 */
export async function describeCut(
  dir: string, cut: { readonly clusterId: bigint; readonly position: Position; readonly stateHash: Checksum },
  checkpoint: FileHandle, logPrefix: readonly LogPrefixFile[],
): Promise<BackupCut> {
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    await checkpoint.close();
  };
  try {
    const prefix = new Map(logPrefix.map((file) => [relativePath(dir, file.path), file.bytes]));
    const pinned = await checkpoint.stat();
    const files: BackupSource[] = [handleSource(CHECKPOINT_FILE, pinned.size, pinned.mode & 0o777, checkpoint)];
    let logFilesSeen = 0;
    for (const path of await listFiles(dir)) {
      if (BACKUP_SKIPPED.test(path) || path === CHECKPOINT_FILE) continue;
      const full = join(dir, path);
      const info = await stat(full);
      if (LOG_FILE.test(path)) {
        const bytes = prefix.get(path);
        // Segments after the cut's are not part of it.
        if (bytes === undefined) continue;
        logFilesSeen++;
        files.push(pathSource(path, bytes, info.mode & 0o777, full));
        continue;
      }
      files.push(pathSource(path, info.size, info.mode & 0o777, full));
    }
    assert(logFilesSeen === prefix.size, `the log prefix names ${prefix.size} files, ${logFilesSeen} are in ${dir}`);
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { ...cut, files, release };
  } catch (error) {
    await release();
    throw error;
  }
}

function relativePath(dir: string, path: string): string {
  return relative(dir, path).split(sep).join('/');
}

/** Every regular file under `dir`, relative and '/'-separated (bounded by the tree itself). */
async function listFiles(dir: string, base = dir): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...await listFiles(path, base));
    else if (entry.isFile()) found.push(relativePath(base, path));
  }
  return found;
}

function handleSource(path: string, bytes: number, mode: number, handle: FileHandle): BackupSource {
  return { path, bytes, mode, chunks: (chunkBytes) => readChunks(path, handle, bytes, chunkBytes) };
}

function pathSource(path: string, bytes: number, mode: number, full: string): BackupSource {
  return {
    path, bytes, mode,
    async *chunks(chunkBytes) {
      const handle = await open(full, 'r');
      try {
        yield* readChunks(path, handle, bytes, chunkBytes);
      } finally {
        await handle.close();
      }
    },
  };
}

async function* readChunks(path: string, handle: FileHandle, bytes: number, chunkBytes: number): AsyncGenerator<Uint8Array> {
  assert(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1, `chunk size ${chunkBytes}`);
  if (bytes === 0) {
    yield new Uint8Array(0);
    return;
  }
  for (let offset = 0; offset < bytes; offset += chunkBytes) {
    const length = Math.min(chunkBytes, bytes - offset);
    const chunk = await readAt(handle, offset, length);
    if (chunk.length !== length) {
      throw new VerityError('BackupSourceChanged', `${path} holds ${offset + chunk.length} bytes, the backup's cut took ${bytes}: it changed during the backup`, { file: path });
    }
    yield chunk;
  }
}
