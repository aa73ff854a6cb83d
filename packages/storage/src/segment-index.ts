import { crc32 } from '@veritydb/crypto';
import type { ClusterId, Position } from '@veritydb/types';
import { dataView, readU128, readU64, writeU128, writeU64 } from './bytes.js';
import { RECORD_HEADER_BYTES, RECORD_PREFIX_BYTES } from './record.js';

/**
 * The per-segment header index (`NNNNNNNN.index`): a 64-byte file header, then one fixed-size
 * slot per record, slot i describing position `firstPosition + i`. A slot holds the record's
 * offset and frame length in the segment and a redundant copy of its 224-byte header, so a
 * position maps to its bytes in O(1) and a damaged record still has a trusted header (its hash)
 * to be repaired against.
 *
 *   file header: 0 magic u32 "VDBI"  4 version u16  6 reserved u16  8 segment u32  12 reserved u32
 *                16 firstPosition u64  24 cluster u128  40 reserved (20 bytes)  60 crc32 of [0, 60)
 *   slot:        0 offset u32  4 frameBytes u32  8 header[224]  232 crc32 of [0, 232)
 */

export const INDEX_MAGIC = 0x49424456; // "VDBI" little endian
export const INDEX_VERSION = 1;
export const INDEX_HEADER_BYTES = 64;
export const INDEX_SLOT_BYTES = 8 + RECORD_HEADER_BYTES + 4;
const INDEX_HEADER_CRC = 60;
const SLOT_CRC = 8 + RECORD_HEADER_BYTES;

export interface IndexHeader {
  readonly segment: number;
  readonly firstPosition: Position;
  readonly cluster: ClusterId;
}

export interface IndexSlot {
  readonly offset: number;
  readonly frameBytes: number;
  /** The copy of the record header (224 bytes). */
  readonly header: Uint8Array;
}

export function encodeIndexHeader(header: IndexHeader): Uint8Array {
  const bytes = new Uint8Array(INDEX_HEADER_BYTES);
  const view = dataView(bytes);
  view.setUint32(0, INDEX_MAGIC, true);
  view.setUint16(4, INDEX_VERSION, true);
  view.setUint32(8, header.segment, true);
  writeU64(view, 16, header.firstPosition);
  writeU128(view, 24, header.cluster);
  view.setUint32(INDEX_HEADER_CRC, crc32(bytes.subarray(0, INDEX_HEADER_CRC)), true);
  return bytes;
}

export function decodeIndexHeader(bytes: Uint8Array): IndexHeader | string {
  if (bytes.length < INDEX_HEADER_BYTES) return `index header cut short (${bytes.length} bytes)`;
  const view = dataView(bytes);
  if (crc32(bytes.subarray(0, INDEX_HEADER_CRC)) !== view.getUint32(INDEX_HEADER_CRC, true)) return 'index header CRC mismatch';
  if (view.getUint32(0, true) !== INDEX_MAGIC) return 'bad index magic';
  if (view.getUint16(4, true) !== INDEX_VERSION) return `unknown index version ${view.getUint16(4, true)}`;
  const firstPosition = readU64(view, 16);
  if (firstPosition < 1) return 'index first position out of range';
  return { segment: view.getUint32(8, true), firstPosition: firstPosition as Position, cluster: readU128(view, 24) as ClusterId };
}

/** Writes a slot for the frame at `frameOffset` in `frame` (prefix + header + body). */
export function encodeIndexSlotInto(target: Uint8Array, at: number, segmentOffset: number, frame: Uint8Array, frameStart: number, frameBytes: number): void {
  const view = viewOf(target);
  view.setUint32(at, segmentOffset, true);
  view.setUint32(at + 4, frameBytes, true);
  const headerStart = frameStart + RECORD_PREFIX_BYTES;
  target.set(frame.subarray(headerStart, headerStart + RECORD_HEADER_BYTES), at + 8);
  view.setUint32(at + SLOT_CRC, crc32(target.subarray(at, at + SLOT_CRC)), true);
}

// Slots are encoded by the thousand into the same buffer: reuse its DataView.
let lastTarget: Uint8Array | undefined;
let lastView: DataView | undefined;

function viewOf(target: Uint8Array): DataView {
  if (target !== lastTarget || lastView === undefined) {
    lastTarget = target;
    lastView = dataView(target);
  }
  return lastView;
}

/** Decodes a slot, or undefined when its CRC fails (torn or damaged). */
export function decodeIndexSlot(bytes: Uint8Array, at: number): IndexSlot | undefined {
  if (bytes.length - at < INDEX_SLOT_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, INDEX_SLOT_BYTES);
  if (crc32(bytes.subarray(at, at + SLOT_CRC)) !== view.getUint32(SLOT_CRC, true)) return undefined;
  return { offset: view.getUint32(0, true), frameBytes: view.getUint32(4, true), header: bytes.subarray(at + 8, at + 8 + RECORD_HEADER_BYTES) };
}

export function slotFileOffset(slot: number): number {
  return INDEX_HEADER_BYTES + slot * INDEX_SLOT_BYTES;
}

export function segmentFileName(segment: number): string {
  return `${segment.toString().padStart(8, '0')}.segment`;
}

export function indexFileName(segment: number): string {
  return `${segment.toString().padStart(8, '0')}.index`;
}
