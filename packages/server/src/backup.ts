import { createBlake3Hasher } from '@veritydb/crypto';
import type { BackupCut } from '@veritydb/runtime';
import { wireLimits, type BackupDone, type BackupFileChunk } from '@veritydb/wire';

/**
 * Backup over the wire (PROTOCOL.md §5): the engine's cut of its data dir (`BackupCut`: a fresh
 * checkpoint, the log up to its position, the other files) as `backupFile` chunks, each file's
 * last one with the BLAKE3-256 of the whole file, then the `backupDone` summary. The connection
 * streams them with its backpressure; this module knows nothing of sockets.
 */
export const backupLimits = Object.freeze({
  /** Bytes of a file per `backupFile` frame. */
  chunkBytes: wireLimits.backupChunkBytesMax,
});

/**
 * The chunks of every file of `cut`, file after file, read as they are taken (memory stays
 * bounded by about one chunk). Throws if a file no longer holds the bytes the cut took.
 */
export async function* backupChunks(cut: BackupCut): AsyncGenerator<BackupFileChunk> {
  for (const file of cut.files) {
    const hasher = await createBlake3Hasher();
    let offset = 0;
    for await (const data of file.chunks(backupLimits.chunkBytes)) {
      hasher.update(data);
      const end = offset + data.length;
      yield { path: file.path, mode: file.mode, bytes: file.bytes, offset, data, blake3: end === file.bytes ? hasher.digest() : null };
      offset = end;
    }
  }
}

/** The final frame's summary of `cut`. */
export function backupDone(cut: BackupCut): BackupDone {
  return {
    clusterId: cut.clusterId as BackupDone['clusterId'], position: cut.position, stateHash: cut.stateHash,
    files: cut.files.length, bytes: cut.files.reduce((sum, file) => sum + file.bytes, 0),
  };
}
