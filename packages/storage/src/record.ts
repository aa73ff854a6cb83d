import { blake3, blake3Into, crc32 } from '@veritydb/crypto';
import {
  CHECKSUM_BYTES, U128_MAX, limits, type Checksum, type ClientId, type ClusterId, type Position, type TenantId, type View,
} from '@veritydb/types';
import { dataView, readU128, readU64, writeU128, writeU64 } from './bytes.js';

/**
 * The on-disk record (DESIGN §4):
 *
 *   | length u32 | crc32 u32 | header (224 bytes, little endian) | body |
 *
 * `length` = header + body bytes; `crc32` covers header + body. Header fields, by offset:
 *
 *     0 magic u32 "VDBR"     4 version u16 (1 = BLAKE3-256)   6 reserved u16 (zero)
 *     8 cluster u128        24 view u32          28 position u64     36 commit u64
 *    44 timestamp u64 (µs)  52 client u128       68 request u32      72 tenant u64
 *    80 tenantPrevPosition u64                   88 operation u8     89 reserved (7 bytes, zero)
 *    96 bodyHash[32]       128 prevHash[32]     160 tenantPrevHash[32]
 *   192 hash[32] = BLAKE3-256 of header bytes [0, 192)
 *
 * The format version names the hash algorithm: a reader that meets an unknown version refuses
 * the record instead of guessing.
 */

export const RECORD_MAGIC = 0x52424456; // "VDBR" little endian
/** Format version 1: BLAKE3-256 for bodyHash, hash and the chains. */
export const RECORD_VERSION_BLAKE3 = 1;
export const RECORD_PREFIX_BYTES = 8;
export const RECORD_HEADER_BYTES = 224;
/** Smallest frame on disk: prefix + header, empty body. */
export const RECORD_FRAME_BYTES_MIN = RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES;
export const RECORD_FRAME_BYTES_MAX = RECORD_FRAME_BYTES_MIN + limits.recordBodyBytesMax;

export const HEADER = Object.freeze({
  magic: 0, version: 4, reserved: 6, cluster: 8, view: 24, position: 28, commit: 36, timestamp: 44, client: 52,
  request: 68, tenant: 72, tenantPrevPosition: 80, operation: 88, reserved2: 89, bodyHash: 96, prevHash: 128,
  tenantPrevHash: 160, hash: 192,
});
const RESERVED2_BYTES = HEADER.bodyHash - HEADER.reserved2;

/** What the caller supplies for each record it appends. */
export interface RecordFields {
  readonly view: View;
  readonly position: Position;
  /** The commit number known when the record was prepared. */
  readonly commit: Position;
  /** Microseconds since the Unix epoch, stamped by the primary. */
  readonly timestamp: number;
  readonly client: ClientId;
  readonly request: number;
  readonly tenant: TenantId;
  readonly operation: number;
  readonly body: Uint8Array;
}

/** Fields the log adds: the cluster and the links of the global and per-tenant chains. */
export interface RecordLinks {
  readonly cluster: ClusterId;
  readonly tenantPrevPosition: Position;
  readonly prevHash: Checksum;
  readonly tenantPrevHash: Checksum;
}

export interface RecordHeader extends Omit<RecordFields, 'body'>, RecordLinks {
  readonly bodyHash: Checksum;
  readonly hash: Checksum;
  readonly bodyBytes: number;
}

export interface LogRecord extends RecordHeader {
  /** The body; for decoded records a view into the bytes decoded (no copy). */
  readonly body: Uint8Array;
}

export type RecordFault =
  | 'short' | 'length' | 'crc' | 'magic' | 'version' | 'reserved' | 'range' | 'body-hash' | 'hash';

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly fault: RecordFault; readonly reason: string };

function fail(fault: RecordFault, reason: string): { ok: false; fault: RecordFault; reason: string } {
  return { ok: false, fault, reason };
}

/** Checks caller-supplied fields; a violation is a bug in the caller (assert-level). */
export function recordFieldsProblem(fields: RecordFields): string | undefined {
  if (!Number.isInteger(fields.view) || fields.view < 0 || fields.view > 0xffff_ffff) return `view ${fields.view} is not a u32`;
  if (!Number.isSafeInteger(fields.position) || fields.position < 1) return `position ${fields.position} is not >= 1`;
  if (!Number.isSafeInteger(fields.commit) || fields.commit < 0 || fields.commit >= fields.position) return `commit ${fields.commit} must be in [0, position)`;
  if (!Number.isSafeInteger(fields.timestamp) || fields.timestamp < 0) return `timestamp ${fields.timestamp} is not a safe u64`;
  if (fields.client < 0n || fields.client > U128_MAX) return `client ${fields.client} is not a u128`;
  if (!Number.isInteger(fields.request) || fields.request < 0 || fields.request > 0xffff_ffff) return `request ${fields.request} is not a u32`;
  if (!Number.isSafeInteger(fields.tenant) || fields.tenant < 0) return `tenant ${fields.tenant} is not a safe u64`;
  if (!Number.isInteger(fields.operation) || fields.operation < 0 || fields.operation > 0xff) return `operation ${fields.operation} is not a u8`;
  if (fields.body.length > limits.recordBodyBytesMax) return `body of ${fields.body.length} bytes exceeds ${limits.recordBodyBytesMax}`;
  return undefined;
}

/** Bytes the record for a body of this size occupies on disk. */
export function recordFrameBytes(bodyBytes: number): number {
  return RECORD_FRAME_BYTES_MIN + bodyBytes;
}

/**
 * Encodes a record into `target` at `offset` (which must have `recordFrameBytes` room),
 * computing bodyHash, hash and crc32 in place. Returns the record's hash. Pure apart from
 * writing `target`.
 */
export function encodeRecordInto(fields: RecordFields, links: RecordLinks, target: Uint8Array, offset: number): Checksum {
  const view = viewOf(target);
  const h = offset + RECORD_PREFIX_BYTES;
  view.setUint32(offset, RECORD_HEADER_BYTES + fields.body.length, true);
  view.setUint32(h + HEADER.magic, RECORD_MAGIC, true);
  view.setUint16(h + HEADER.version, RECORD_VERSION_BLAKE3, true);
  view.setUint16(h + HEADER.reserved, 0, true);
  target.set(clusterBytes.of(links.cluster), h + HEADER.cluster);
  view.setUint32(h + HEADER.view, fields.view, true);
  writeU64(view, h + HEADER.position, fields.position);
  writeU64(view, h + HEADER.commit, fields.commit);
  writeU64(view, h + HEADER.timestamp, fields.timestamp);
  target.set(clientBytes.of(fields.client), h + HEADER.client);
  view.setUint32(h + HEADER.request, fields.request, true);
  writeU64(view, h + HEADER.tenant, fields.tenant);
  writeU64(view, h + HEADER.tenantPrevPosition, links.tenantPrevPosition);
  view.setUint8(h + HEADER.operation, fields.operation);
  const headerStart = h;
  target.fill(0, headerStart + HEADER.reserved2, headerStart + HEADER.bodyHash);
  const bodyStart = headerStart + RECORD_HEADER_BYTES;
  target.set(fields.body, bodyStart);
  // Digests go straight into the frame: no per-record allocation but the returned hash.
  blake3Into(fields.body, target, headerStart + HEADER.bodyHash);
  target.set(links.prevHash, headerStart + HEADER.prevHash);
  target.set(links.tenantPrevHash, headerStart + HEADER.tenantPrevHash);
  const hashStart = headerStart + HEADER.hash;
  blake3Into(target.subarray(headerStart, hashStart), target, hashStart);
  view.setUint32(offset + 4, crc32(target.subarray(headerStart, bodyStart + fields.body.length)), true);
  // A copy: the frame's buffer is reused once the frame is on disk.
  return target.slice(hashStart, hashStart + CHECKSUM_BYTES) as Checksum;
}

// The hot path encodes thousands of records into the same buffer, mostly with the same cluster
// and client: reuse the DataView and the u128 encodings instead of allocating per record.
let lastTarget: Uint8Array | undefined;
let lastView: DataView | undefined;

function viewOf(target: Uint8Array): DataView {
  if (target !== lastTarget || lastView === undefined) {
    lastTarget = target;
    lastView = dataView(target);
  }
  return lastView;
}

class U128Cache {
  #value = -1n;
  #bytes = new Uint8Array(16);

  of(value: bigint): Uint8Array {
    if (value !== this.#value) {
      const bytes = new Uint8Array(16);
      writeU128(dataView(bytes), 0, value);
      this.#bytes = bytes;
      this.#value = value;
    }
    return this.#bytes;
  }
}
const clusterBytes = new U128Cache();
const clientBytes = new U128Cache();

/**
 * Encodes one record as a fresh frame.
 *
 * @example const { bytes, record } = encodeRecord(fields, links); decodeRecord(bytes).ok === true
 */
export function encodeRecord(fields: RecordFields, links: RecordLinks): { bytes: Uint8Array; record: LogRecord } {
  const bytes = new Uint8Array(recordFrameBytes(fields.body.length));
  encodeRecordInto(fields, links, bytes, 0);
  const decoded = decodeRecord(bytes);
  if (!decoded.ok) throw new Error(`encodeRecord produced an undecodable record: ${decoded.reason}`);
  return { bytes, record: decoded.value };
}

/**
 * Decodes the 224-byte header: magic, version, reserved bytes, field ranges and `hash`. Does not
 * check the body (see `decodeRecord`).
 */
export function decodeHeader(header: Uint8Array, bodyBytes: number): Decoded<RecordHeader> {
  if (header.length !== RECORD_HEADER_BYTES) return fail('short', `header of ${header.length} bytes, want ${RECORD_HEADER_BYTES}`);
  const view = dataView(header);
  if (view.getUint32(HEADER.magic, true) !== RECORD_MAGIC) return fail('magic', 'bad record magic');
  const version = view.getUint16(HEADER.version, true);
  if (version !== RECORD_VERSION_BLAKE3) return fail('version', `unknown record format version ${version}`);
  if (view.getUint16(HEADER.reserved, true) !== 0) return fail('reserved', 'reserved header bytes are not zero');
  for (let i = 0; i < RESERVED2_BYTES; i++) if (header[HEADER.reserved2 + i] !== 0) return fail('reserved', 'reserved header bytes are not zero');
  const position = readU64(view, HEADER.position);
  const commit = readU64(view, HEADER.commit);
  const timestamp = readU64(view, HEADER.timestamp);
  const tenant = readU64(view, HEADER.tenant);
  const tenantPrevPosition = readU64(view, HEADER.tenantPrevPosition);
  if (position < 1 || commit < 0 || commit >= position || timestamp < 0 || tenant < 0 || tenantPrevPosition < 0 || tenantPrevPosition >= position) {
    return fail('range', `header fields out of range (position ${position}, commit ${commit}, tenantPrevPosition ${tenantPrevPosition})`);
  }
  const hash = blake3(header.subarray(0, HEADER.hash));
  if (Buffer.compare(hash, header.subarray(HEADER.hash, HEADER.hash + CHECKSUM_BYTES)) !== 0) return fail('hash', `header hash mismatch at position ${position}`);
  const slice = (at: number): Checksum => header.slice(at, at + CHECKSUM_BYTES) as Checksum;
  return {
    ok: true,
    value: {
      cluster: readU128(view, HEADER.cluster) as ClusterId,
      view: view.getUint32(HEADER.view, true) as View,
      position: position as Position,
      commit: commit as Position,
      timestamp,
      client: readU128(view, HEADER.client) as ClientId,
      request: view.getUint32(HEADER.request, true),
      tenant: tenant as TenantId,
      tenantPrevPosition: tenantPrevPosition as Position,
      operation: view.getUint8(HEADER.operation),
      bodyHash: slice(HEADER.bodyHash),
      prevHash: slice(HEADER.prevHash),
      tenantPrevHash: slice(HEADER.tenantPrevHash),
      hash: hash,
      bodyBytes,
    },
  };
}

/** Length of the frame starting at `offset`, or a fault when the prefix is short or absurd. */
export function frameBytesAt(bytes: Uint8Array, offset: number): Decoded<number> {
  if (bytes.length - offset < RECORD_PREFIX_BYTES) return fail('short', 'record prefix is cut short');
  const length = dataView(bytes).getUint32(offset, true);
  if (length < RECORD_HEADER_BYTES || length > RECORD_HEADER_BYTES + limits.recordBodyBytesMax) return fail('length', `record length ${length} out of range`);
  const frame = RECORD_PREFIX_BYTES + length;
  if (bytes.length - offset < frame) return fail('short', `record of ${frame} bytes is cut short at ${bytes.length - offset}`);
  return { ok: true, value: frame };
}

/**
 * Decodes the frame at `offset` of `bytes`, checking length, CRC, header, bodyHash and hash.
 * The returned body is a view into `bytes`.
 */
export function decodeRecordAt(bytes: Uint8Array, offset: number): Decoded<LogRecord> {
  const frame = frameBytesAt(bytes, offset);
  if (!frame.ok) return frame;
  const headerStart = offset + RECORD_PREFIX_BYTES;
  const end = offset + frame.value;
  const stored = dataView(bytes).getUint32(offset + 4, true);
  if (crc32(bytes.subarray(headerStart, end)) !== stored) return fail('crc', 'record CRC mismatch');
  const bodyStart = headerStart + RECORD_HEADER_BYTES;
  const header = decodeHeader(bytes.subarray(headerStart, bodyStart), end - bodyStart);
  if (!header.ok) return header;
  const body = bytes.subarray(bodyStart, end);
  if (Buffer.compare(blake3(body), header.value.bodyHash) !== 0) return fail('body-hash', `body hash mismatch at position ${header.value.position}`);
  return { ok: true, value: { ...header.value, body } };
}

/**
 * Decodes exactly one frame (no trailing bytes).
 *
 * @example const r = decodeRecord(bytes); if (!r.ok) console.log(r.reason);
 */
export function decodeRecord(bytes: Uint8Array): Decoded<LogRecord> {
  const decoded = decodeRecordAt(bytes, 0);
  if (!decoded.ok) return decoded;
  if (recordFrameBytes(decoded.value.bodyBytes) !== bytes.length) return fail('length', 'trailing bytes after the record');
  return decoded;
}
