import { open, rename, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { blake3 } from '@veritydb/crypto';
import { checksumEqual, VerityError } from '@veritydb/types';

/**
 * The embedded engine's checkpoint on disk: one file, replaced atomically (write a temporary
 * file, fsync it, rename it over the old one, fsync the directory), so a crash leaves either
 * the old checkpoint or the new one, never a mix.
 *
 *   magic "VDBC" u32 | version u32 | position u64 | payload length u64 |
 *   hash of the log record at `position` [32] | checksum [32] | payload
 *
 *   checksum = BLAKE3(header bytes [0, 56) ‖ BLAKE3(payload)): it covers every field.
 *
 * The record hash ties the checkpoint to the log it was taken from: on open, a checkpoint
 * whose position's record has another hash belongs to another history and is refused.
 * A checkpoint that fails its checksum or has an unknown version stops the engine (fail
 * closed, DESIGN §12): it is never silently skipped, since the log before it may be gone.
 */
export const CHECKPOINT_FILE = 'checkpoint';
const CHECKPOINT_TEMP = 'checkpoint.tmp';
const MAGIC = 0x56444243;
const VERSION = 1;
const HEADER_BYTES = 4 + 4 + 8 + 8 + 32 + 32;

export interface CheckpointFile {
  readonly position: number;
  /** Hash of the log record at `position` (all zero at position 0). */
  readonly recordHash: Uint8Array;
  readonly payload: Uint8Array;
}

export async function writeCheckpointFile(dir: string, checkpoint: CheckpointFile): Promise<void> {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setBigUint64(8, BigInt(checkpoint.position), true);
  view.setBigUint64(16, BigInt(checkpoint.payload.length), true);
  header.set(checkpoint.recordHash, 24);
  header.set(headerChecksum(header, checkpoint.payload), 56);
  const temp = join(dir, CHECKPOINT_TEMP);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writev([header, checkpoint.payload]);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, join(dir, CHECKPOINT_FILE));
  await syncDirectory(dir);
}

export async function readCheckpointFile(dir: string): Promise<CheckpointFile | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(join(dir, CHECKPOINT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const corrupt = (why: string): never => {
    throw new VerityError('CorruptCheckpoint', `checkpoint ${join(dir, CHECKPOINT_FILE)} is unusable: ${why}`);
  };
  if (bytes.length < HEADER_BYTES) corrupt('shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) corrupt('bad magic');
  const version = view.getUint32(4, true);
  if (version !== VERSION) corrupt(`unknown version ${version}`);
  const position = Number(view.getBigUint64(8, true));
  const length = Number(view.getBigUint64(16, true));
  if (!Number.isSafeInteger(position) || length !== bytes.length - HEADER_BYTES) corrupt('length mismatch');
  const payload = bytes.subarray(HEADER_BYTES);
  if (!checksumEqual(headerChecksum(bytes, payload), bytes.subarray(56, 88))) corrupt('checksum mismatch');
  return { position, recordHash: bytes.slice(24, 56), payload };
}

function headerChecksum(header: Uint8Array, payload: Uint8Array): Uint8Array {
  const input = new Uint8Array(56 + 32);
  input.set(header.subarray(0, 56));
  input.set(blake3(payload), 56);
  return blake3(input);
}

/** Removes a temporary file a crash left behind mid-write. */
export async function removeStaleCheckpointTemp(dir: string): Promise<void> {
  await unlink(join(dir, CHECKPOINT_TEMP)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
