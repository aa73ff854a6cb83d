import { CHECKSUM_BYTES, checksum, checksumEqual, type Checksum, type ClusterId } from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeError } from './bytes.js';
import { decodeHeader, encodeHeader, hash } from './header.js';
import type { Superblock } from './storage.js';

/** Version of the superblock encoding below. Version 1 (no checkpoint hash) is still read; any other is refused. */
export const SUPERBLOCK_FORMAT_VERSION = 2;

const FLAG_CHECKPOINT_HASH = 1;
const FLAG_AMNESIA = 2;

/**
 * The superblock as bytes, for drivers that keep it on a real disk:
 *
 *   checksum[32] version:u16 cluster:u128 replica:u8 replicaCount:u8 view:u32 logView:u32
 *   commitMax:u64 checkpoint:u64 flags:u8 checkpointHash[32 if flags bit 0] viewHeaders:u16 header…
 *
 * flags: bit 0 = a checkpoint hash follows, bit 1 = amnesia. (Version 1 had no flags/checkpointHash.)
 *
 * `checksum` is BLAKE3 over every byte after it; `decodeSuperblock` checks it (and the version)
 * before trusting any field, and re-verifies every view header's own checksum.
 */
export function encodeSuperblock(superblock: Superblock): Uint8Array {
  const writer = new ByteWriter();
  writer.bytes(new Uint8Array(CHECKSUM_BYTES)).u16(SUPERBLOCK_FORMAT_VERSION).u128(superblock.cluster)
    .u8(superblock.replica).u8(superblock.replicaCount).u32(superblock.view).u32(superblock.logView)
    .u64(superblock.commitMax).u64(superblock.checkpoint)
    .u8((superblock.checkpointHash === undefined ? 0 : FLAG_CHECKPOINT_HASH) | (superblock.amnesia === true ? FLAG_AMNESIA : 0));
  if (superblock.checkpointHash !== undefined) writer.bytes(superblock.checkpointHash);
  writer.u16(superblock.viewHeaders.length);
  for (const header of superblock.viewHeaders) encodeHeader(writer, header);
  const bytes = writer.finish();
  bytes.set(hash(bytes.subarray(CHECKSUM_BYTES)), 0);
  return bytes;
}

export type SuperblockDecode =
  | { readonly ok: true; readonly superblock: Superblock }
  | { readonly ok: false; readonly reason: string };

/** Decodes and verifies superblock bytes; a torn, corrupt or foreign-version copy is a reason, never a throw. */
export function decodeSuperblock(bytes: Uint8Array): SuperblockDecode {
  if (bytes.length < CHECKSUM_BYTES + 2) return { ok: false, reason: `${bytes.length} bytes is shorter than a superblock` };
  if (!checksumEqual(checksum(bytes.subarray(0, CHECKSUM_BYTES)), hash(bytes.subarray(CHECKSUM_BYTES)))) {
    return { ok: false, reason: 'superblock checksum mismatch' };
  }
  try {
    const reader = new ByteReader(bytes, CHECKSUM_BYTES);
    const version = reader.u16();
    if (version !== SUPERBLOCK_FORMAT_VERSION && version !== 1) {
      return { ok: false, reason: `superblock format version ${version} is not a supported one (1, ${SUPERBLOCK_FORMAT_VERSION})` };
    }
    const cluster = reader.u128() as ClusterId;
    const replica = reader.u8();
    const replicaCount = reader.u8();
    const view = reader.u32();
    const logView = reader.u32();
    const commitMax = reader.u64();
    const checkpoint = reader.u64();
    let checkpointHash: Checksum | undefined;
    let amnesia = false;
    if (version >= 2) {
      const flags = reader.u8();
      if ((flags & ~(FLAG_CHECKPOINT_HASH | FLAG_AMNESIA)) !== 0) return { ok: false, reason: `unknown superblock flags ${flags}` };
      if ((flags & FLAG_CHECKPOINT_HASH) !== 0) checkpointHash = checksum(reader.bytes(CHECKSUM_BYTES));
      amnesia = (flags & FLAG_AMNESIA) !== 0;
    }
    const count = reader.u16();
    const viewHeaders = [];
    for (let i = 0; i < count; i++) viewHeaders.push(decodeHeader(reader));
    if (reader.remaining !== 0) return { ok: false, reason: `${reader.remaining} trailing bytes after the superblock` };
    return {
      ok: true,
      superblock: { cluster, replica, replicaCount, view, logView, commitMax, checkpoint, ...(checkpointHash === undefined ? {} : { checkpointHash }),
        ...(amnesia ? { amnesia } : {}), viewHeaders },
    };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, reason: `superblock: ${error.message}` };
    throw error;
  }
}
