import {
  CHECKSUM_BYTES, VerityError, checksumEqual, type Checksum, type ClusterId, type Position, type TenantId,
} from '@veritydb/types';
import { dataView, readU64 } from './bytes.js';
import {
  HEADER, RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_PREFIX_BYTES, decodeRecordAt, type RecordFault,
} from './record.js';
import { INDEX_HEADER_BYTES, INDEX_SLOT_BYTES, decodeIndexSlot, encodeIndexSlotInto, type IndexSlot } from './segment-index.js';

/**
 * Recovery of one segment from its bytes and its index's bytes: pure, so it is tested directly
 * and the log only does the I/O. It walks the segment record by record, checks each record
 * (CRC, hashes, position, cluster, chain link) and its index slot, and classifies what it finds:
 *
 * - a record that fails like a torn write (short, bad length, bad CRC) with no valid record
 *   anywhere after it, in the last segment: the torn tail, cut;
 * - any other bad record: a fault. It may have been acknowledged, so it is never cut: with
 *   `faults: 'fail'` recovery throws a `VerityError` naming the file and position; with
 *   `'report'` it is listed (with the hash it must have, when known) for repair from a peer;
 * - index slots missing at the end of the last segment's index (the index write raced the
 *   crash): rebuilt from the verified records;
 * - any other index damage or disagreement: an error in `'fail'` mode, rebuilt from the verified
 *   record and reported in `'report'` mode.
 */

export type FaultMode = 'fail' | 'report';

/** What the log needs to know about each record to rebuild its chain heads. */
export interface HeaderSummary {
  readonly position: Position;
  readonly tenant: TenantId;
  readonly hash: Checksum;
}

/** A record that is damaged and must be repaired (`Log.repair`) before it can be read. */
export interface FaultyRecord {
  readonly position: Position;
  readonly file: string;
  readonly reason: string;
  /** The hash the record must have, from its index copy or its successor's prevHash. */
  readonly expectedHash: Checksum | undefined;
  /** Where the record lives in its segment. */
  readonly offset: number;
  readonly frameBytes: number;
}

export interface SegmentAuditInput {
  readonly segmentBytes: Uint8Array;
  readonly indexBytes: Uint8Array;
  readonly firstPosition: number;
  /** Hash of the record before this segment's first (zero for position 1); undefined if unknown. */
  readonly prevHash: Uint8Array | undefined;
  readonly cluster: ClusterId;
  readonly isLast: boolean;
  readonly segmentFile: string;
  readonly indexFile: string;
  readonly mode: FaultMode;
}

export interface SegmentAudit {
  /** Records kept (faulty ones included). */
  readonly count: number;
  /** Segment bytes kept. */
  readonly bytes: number;
  /** Hash of the last record kept, if known. */
  readonly lastHash: Uint8Array | undefined;
  readonly headers: HeaderSummary[];
  /** Index slots to rewrite (slot number → slot bytes). */
  readonly slotWrites: { readonly slot: number; readonly bytes: Uint8Array }[];
  /** Positions whose index slot was rebuilt although not at the torn end of the index. */
  readonly indexRepairs: Position[];
  readonly truncated: { readonly position: Position; readonly bytes: number } | undefined;
  readonly faulty: FaultyRecord[];
}

const TORN_FAULTS: ReadonlySet<string> = new Set<RecordFault>(['short', 'length', 'crc']);

export function peekHeader(header: Uint8Array): HeaderSummary {
  const view = dataView(header);
  return {
    position: readU64(view, HEADER.position) as Position,
    tenant: readU64(view, HEADER.tenant) as TenantId,
    hash: header.slice(HEADER.hash, HEADER.hash + CHECKSUM_BYTES) as Checksum,
  };
}

export function decodeSlots(indexBytes: Uint8Array): { slots: (IndexSlot | undefined)[]; tornBytes: number } {
  const available = Math.max(0, indexBytes.length - INDEX_HEADER_BYTES);
  const count = Math.floor(available / INDEX_SLOT_BYTES);
  const slots: (IndexSlot | undefined)[] = [];
  for (let i = 0; i < count; i++) slots.push(decodeIndexSlot(indexBytes, INDEX_HEADER_BYTES + i * INDEX_SLOT_BYTES));
  return { slots, tornBytes: available - count * INDEX_SLOT_BYTES };
}

function slotImage(segmentBytes: Uint8Array, offset: number, frameBytes: number): Uint8Array {
  const bytes = new Uint8Array(INDEX_SLOT_BYTES);
  encodeIndexSlotInto(bytes, 0, offset, segmentBytes, offset, frameBytes);
  return bytes;
}

function slotAgrees(slot: IndexSlot, segmentBytes: Uint8Array, offset: number, frameBytes: number): boolean {
  if (slot.offset !== offset || slot.frameBytes !== frameBytes) return false;
  const header = segmentBytes.subarray(offset + RECORD_PREFIX_BYTES, offset + RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES);
  return checksumEqual(slot.header, header);
}

/** True when any valid record lies after `offset` (found through the index or by its magic). */
function validRecordAfter(input: SegmentAuditInput, slots: readonly (IndexSlot | undefined)[], offset: number, slotIndex: number): boolean {
  for (let j = slotIndex + 1; j < slots.length; j++) {
    const slot = slots[j];
    if (slot === undefined || slot.offset <= offset) continue;
    const decoded = decodeRecordAt(input.segmentBytes, slot.offset);
    if (decoded.ok) return true;
  }
  const bytes = Buffer.from(input.segmentBytes.buffer, input.segmentBytes.byteOffset, input.segmentBytes.byteLength);
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC);
  let at = bytes.indexOf(magic, offset + 1 + RECORD_PREFIX_BYTES);
  while (at !== -1) {
    const start = at - RECORD_PREFIX_BYTES;
    if (start > offset && decodeRecordAt(input.segmentBytes, start).ok) return true;
    at = bytes.indexOf(magic, at + 1);
  }
  return false;
}

function corrupt(code: string, message: string, details: Record<string, unknown>): VerityError {
  return new VerityError(code, message, details);
}

/** Recovers one segment; see the module comment. Throws `VerityError` in `'fail'` mode. */
export function auditSegment(input: SegmentAuditInput): SegmentAudit {
  const { segmentBytes, indexFile, segmentFile, mode } = input;
  const { slots, tornBytes } = decodeSlots(input.indexBytes);
  const headers: HeaderSummary[] = [];
  const slotWrites: { slot: number; bytes: Uint8Array }[] = [];
  const indexRepairs: Position[] = [];
  const faulty: FaultyRecord[] = [];
  let truncated: { position: Position; bytes: number } | undefined;
  let lastHash = input.prevHash;
  let awaitingHash: { index: number } | undefined;
  let offset = 0;
  let i = 0;

  // Slots that fail their CRC but are followed by a good slot are damage, not a torn end.
  let lastGoodSlot = -1;
  for (let j = 0; j < slots.length; j++) if (slots[j] !== undefined) lastGoodSlot = j;

  const indexFault = (position: Position, reason: string): void => {
    if (mode === 'fail') {
      throw corrupt('IndexMismatch', `${indexFile}: index slot for position ${position} ${reason}`, { file: indexFile, position, reason });
    }
    indexRepairs.push(position);
  };

  while (offset < segmentBytes.length) {
    const position = (input.firstPosition + i) as Position;
    const slot = slots[i];
    const decoded = decodeRecordAt(segmentBytes, offset);
    let fault: RecordFault | 'position' | 'cluster' | 'link' | undefined;
    let reason = '';
    if (!decoded.ok) {
      fault = decoded.fault;
      reason = decoded.reason;
    } else if (decoded.value.position !== position) {
      fault = 'position';
      reason = `record says position ${decoded.value.position}, expected ${position}`;
    } else if (decoded.value.cluster !== input.cluster) {
      fault = 'cluster';
      reason = `record belongs to cluster ${decoded.value.cluster}`;
    } else if (lastHash !== undefined && !checksumEqual(decoded.value.prevHash, lastHash)) {
      fault = 'link';
      reason = 'prevHash does not match the previous record';
    }

    if (fault === undefined && decoded.ok) {
      const record = decoded.value;
      const frameBytes = RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES + record.bodyBytes;
      if (awaitingHash !== undefined) {
        const pending = faulty[awaitingHash.index];
        if (pending !== undefined) faulty[awaitingHash.index] = { ...pending, expectedHash: record.prevHash };
        awaitingHash = undefined;
      }
      if (slot === undefined) {
        if (i <= lastGoodSlot || !input.isLast) indexFault(position, i < slots.length ? 'fails its CRC' : 'is missing');
        slotWrites.push({ slot: i, bytes: slotImage(segmentBytes, offset, frameBytes) });
      } else if (!slotAgrees(slot, segmentBytes, offset, frameBytes)) {
        indexFault(position, 'disagrees with the segment');
        slotWrites.push({ slot: i, bytes: slotImage(segmentBytes, offset, frameBytes) });
      }
      headers.push({ position, tenant: record.tenant, hash: record.hash });
      lastHash = record.hash;
      offset += frameBytes;
      i++;
      continue;
    }

    const torn = TORN_FAULTS.has(fault ?? 'link');
    if (torn && input.isLast && !validRecordAfter(input, slots, offset, i)) {
      truncated = { position, bytes: segmentBytes.length - offset };
      break;
    }
    if (mode === 'fail') {
      throw corrupt('CorruptRecord', `${segmentFile}: record at position ${position} is corrupt (${reason}) and is not a torn tail`,
        { file: segmentFile, position, fault, reason });
    }
    const next = slots[i + 1];
    const frameBytes = slot !== undefined && slot.offset === offset ? slot.frameBytes
      : next !== undefined && next.offset > offset ? next.offset - offset : 0;
    if (frameBytes === 0 || offset + frameBytes > segmentBytes.length) {
      throw corrupt('CorruptRecord', `${segmentFile}: record at position ${position} is corrupt (${reason}) and its extent cannot be recovered from the index`,
        { file: segmentFile, position, fault, reason });
    }
    const expectedHash = slot !== undefined && slot.offset === offset ? peekHeader(slot.header).hash : undefined;
    faulty.push({ position, file: segmentFile, reason, expectedHash, offset, frameBytes });
    if (expectedHash === undefined) awaitingHash = { index: faulty.length - 1 };
    if (slot !== undefined && slot.offset === offset) headers.push(peekHeader(slot.header));
    lastHash = expectedHash;
    offset += frameBytes;
    i++;
  }

  if (slots.length > i || tornBytes > 0) {
    // The index runs past the records kept: its tail describes the torn records (last segment)
    // or it disagrees with a sealed segment.
    if (!input.isLast && truncated === undefined) {
      const position = (input.firstPosition + i) as Position;
      indexFault(position, 'describes records the segment does not hold');
    }
  }
  return { count: i, bytes: offset, lastHash, headers, slotWrites, indexRepairs, truncated, faulty };
}
