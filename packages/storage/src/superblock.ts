import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { blake3, initCrypto } from '@veritydb/crypto';
import { CHECKSUM_BYTES, VerityError, assert, checksumEqual, limits } from '@veritydb/types';
import { dataView, readU64, writeU64 } from './bytes.js';
import { syncDirectory, writeFully } from './files.js';

/**
 * The superblock (DESIGN §5.5): a small opaque payload (the consensus layer's durable state)
 * kept in `limits.superblockCopies` checksummed copies in one file. Every write updates the
 * copies one after another, each followed by fdatasync, under a new sequence number; so a crash
 * tears at most one copy and every other copy holds either the new or the previous state. Open
 * returns the newest valid copy and reports which copies were bad.
 *
 *   copy: 0 magic u32 "VDSB"  4 version u16  6 copy u16  8 sequence u64  16 payloadBytes u32
 *         20 reserved u32  24 checksum[32] = BLAKE3-256 of [0, 24) and the payload  56 payload
 *
 * @example
 *   const sb = await Superblock.create(path, payload);
 *   await sb.write(nextPayload);
 *   const again = await Superblock.open(path); again.payload
 */

export const SUPERBLOCK_MAGIC = 0x42534456; // "VDSB" little endian
export const SUPERBLOCK_VERSION = 1;
export const SUPERBLOCK_COPY_HEADER_BYTES = 56;
/** Each copy occupies a fixed, 4 KiB-aligned region of the file. */
export const SUPERBLOCK_COPY_BYTES = Math.ceil((SUPERBLOCK_COPY_HEADER_BYTES + limits.superblockPayloadBytesMax) / 4096) * 4096;
const CHECKSUM_AT = 24;

export interface SuperblockCopyState {
  readonly copy: number;
  readonly sequence: number;
  readonly payload: Uint8Array;
}

/** Encodes one copy (header + payload, unpadded). */
export function encodeSuperblockCopy(copy: number, sequence: number, payload: Uint8Array): Uint8Array {
  assert(payload.length <= limits.superblockPayloadBytesMax, `superblock payload of ${payload.length} bytes exceeds ${limits.superblockPayloadBytesMax}`);
  const bytes = new Uint8Array(SUPERBLOCK_COPY_HEADER_BYTES + payload.length);
  const view = dataView(bytes);
  view.setUint32(0, SUPERBLOCK_MAGIC, true);
  view.setUint16(4, SUPERBLOCK_VERSION, true);
  view.setUint16(6, copy, true);
  writeU64(view, 8, sequence);
  view.setUint32(16, payload.length, true);
  bytes.set(payload, SUPERBLOCK_COPY_HEADER_BYTES);
  bytes.set(copyChecksum(bytes, payload.length), CHECKSUM_AT);
  return bytes;
}

function copyChecksum(bytes: Uint8Array, payloadBytes: number): Uint8Array {
  const input = new Uint8Array(CHECKSUM_AT + payloadBytes);
  input.set(bytes.subarray(0, CHECKSUM_AT), 0);
  input.set(bytes.subarray(SUPERBLOCK_COPY_HEADER_BYTES, SUPERBLOCK_COPY_HEADER_BYTES + payloadBytes), CHECKSUM_AT);
  return blake3(input);
}

/** Decodes the copy stored in region `copy` of the file bytes, or a reason it is unusable. */
export function decodeSuperblockCopy(file: Uint8Array, copy: number): SuperblockCopyState | string {
  const start = copy * SUPERBLOCK_COPY_BYTES;
  if (file.length < start + SUPERBLOCK_COPY_HEADER_BYTES) return 'cut short';
  const bytes = file.subarray(start, Math.min(file.length, start + SUPERBLOCK_COPY_BYTES));
  const view = dataView(bytes);
  if (view.getUint32(0, true) !== SUPERBLOCK_MAGIC) return 'bad magic';
  const payloadBytes = view.getUint32(16, true);
  if (payloadBytes > limits.superblockPayloadBytesMax || SUPERBLOCK_COPY_HEADER_BYTES + payloadBytes > bytes.length) return 'bad payload length';
  if (!checksumEqual(copyChecksum(bytes, payloadBytes), bytes.subarray(CHECKSUM_AT, CHECKSUM_AT + CHECKSUM_BYTES))) return 'checksum mismatch';
  if (view.getUint16(4, true) !== SUPERBLOCK_VERSION) return `unknown version ${view.getUint16(4, true)}`;
  if (view.getUint16(6, true) !== copy) return `holds copy ${view.getUint16(6, true)} (misdirected write)`;
  if (view.getUint32(20, true) !== 0) return 'reserved bytes are not zero';
  const sequence = readU64(view, 8);
  if (sequence < 1) return 'bad sequence number';
  return { copy, sequence, payload: bytes.slice(SUPERBLOCK_COPY_HEADER_BYTES, SUPERBLOCK_COPY_HEADER_BYTES + payloadBytes) };
}

export class Superblock {
  readonly path: string;
  /** Copies found unusable at open, with the reason (they are rewritten by the next `write`). */
  readonly badCopies: readonly { readonly copy: number; readonly reason: string }[];
  #handle: FileHandle;
  #sequence: number;
  #payload: Uint8Array;
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, handle: FileHandle, state: SuperblockCopyState, badCopies: { copy: number; reason: string }[]) {
    this.path = path;
    this.#handle = handle;
    this.#sequence = state.sequence;
    this.#payload = state.payload;
    this.badCopies = badCopies;
  }

  /** Creates the superblock file (refusing to overwrite one) with sequence 1. */
  static async create(path: string, payload: Uint8Array): Promise<Superblock> {
    await initCrypto();
    const temporary = `${path}.creating`;
    await rm(temporary, { force: true });
    const handle = await open(temporary, 'wx');
    try {
      for (let copy = 0; copy < limits.superblockCopies; copy++) {
        await writeFully(handle, encodeSuperblockCopy(copy, 1, payload), copy * SUPERBLOCK_COPY_BYTES);
      }
      await handle.truncate(limits.superblockCopies * SUPERBLOCK_COPY_BYTES);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const existing = await open(path, 'r').then(async (h) => { await h.close(); return true; }, () => false);
    if (existing) {
      await rm(temporary, { force: true });
      throw new VerityError('SuperblockExists', `${path} already exists`, { file: path });
    }
    await rename(temporary, path);
    await syncDirectory(dirname(path));
    return Superblock.open(path);
  }

  /**
   * Opens the superblock at `path`, returning the newest valid copy. Throws `VerityError`
   * `SuperblockMissing` when there is no file and `SuperblockCorrupt` when no copy is valid.
   */
  static async open(path: string): Promise<Superblock> {
    await initCrypto();
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new VerityError('SuperblockMissing', `superblock ${path} does not exist`, { file: path });
      throw error;
    }
    let newest: SuperblockCopyState | undefined;
    const badCopies: { copy: number; reason: string }[] = [];
    for (let copy = 0; copy < limits.superblockCopies; copy++) {
      const decoded = decodeSuperblockCopy(bytes, copy);
      if (typeof decoded === 'string') badCopies.push({ copy, reason: decoded });
      else if (newest === undefined || decoded.sequence > newest.sequence) newest = decoded;
    }
    if (newest === undefined) {
      throw new VerityError('SuperblockCorrupt',
        `superblock ${path}: none of its ${limits.superblockCopies} copies is valid (${badCopies.map((b) => `copy ${b.copy}: ${b.reason}`).join('; ')})`,
        { file: path, badCopies });
    }
    const handle = await open(path, 'r+');
    return new Superblock(path, handle, newest, badCopies);
  }

  get sequence(): number {
    return this.#sequence;
  }

  get payload(): Uint8Array {
    return this.#payload;
  }

  /** Durably replaces the payload; resolves once every copy is written and synced. */
  write(payload: Uint8Array): Promise<void> {
    assert(payload.length <= limits.superblockPayloadBytesMax, `superblock payload of ${payload.length} bytes exceeds ${limits.superblockPayloadBytesMax}`);
    const copyOfPayload = Uint8Array.from(payload);
    const run = this.#writing.then(async () => {
      const sequence = this.#sequence + 1;
      for (let copy = 0; copy < limits.superblockCopies; copy++) {
        await writeFully(this.#handle, encodeSuperblockCopy(copy, sequence, copyOfPayload), copy * SUPERBLOCK_COPY_BYTES);
        await this.#handle.datasync();
      }
      this.#sequence = sequence;
      this.#payload = copyOfPayload;
    });
    this.#writing = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#writing;
    await this.#handle.close();
  }
}
