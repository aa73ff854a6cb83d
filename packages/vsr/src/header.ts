import { blake3 } from '@veritydb/crypto';
import {
  assert, checksum, checksumEqual, CHECKSUM_BYTES, CHECKSUM_ZERO, type Checksum, type ClusterId,
} from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeError } from './bytes.js';

/** What a log entry does: the root entry (op 0), a client session registration, or a state machine operation. */
export const OPERATIONS = ['root', 'register', 'normal'] as const;
export type Operation = (typeof OPERATIONS)[number];

/**
 * The header of one prepared log entry. `checksum` covers every other field, `bodyChecksum`
 * included, and `parent` is the checksum of the header at `op - 1`: the log is a hash chain, so
 * one trusted header vouches for every entry below it.
 */
export interface Header {
  readonly checksum: Checksum;
  readonly parent: Checksum;
  readonly bodyChecksum: Checksum;
  readonly cluster: ClusterId;
  readonly client: bigint;
  /** The client's session (op of its register; 0 for register and root entries). */
  readonly session: number;
  readonly op: number;
  /** Wall clock of the primary at prepare, µs; strictly increasing along the log. */
  readonly timestampUs: number;
  readonly request: number;
  /** View in which the entry was prepared. */
  readonly view: number;
  readonly operation: Operation;
  readonly bodySize: number;
}

/** A header together with its body: what a prepare carries and the journal stores. */
export interface Entry {
  readonly header: Header;
  readonly body: Uint8Array;
}

export const HEADER_BYTES = CHECKSUM_BYTES * 3 + 16 + 16 + 8 + 8 + 8 + 4 + 4 + 1 + 4;

/**
 * BLAKE3-256 of `bytes`, branded: `@veritydb/crypto`'s, which runs WebAssembly once a driver has
 * awaited `initCrypto()` and the reference implementation before (identical digests either way).
 */
export function hash(bytes: Uint8Array): Checksum {
  return blake3(bytes);
}

function writeFields(writer: ByteWriter, fields: Omit<Header, 'checksum'>): void {
  writer.bytes(fields.parent).bytes(fields.bodyChecksum).u128(fields.cluster).u128(fields.client)
    .u64(fields.session).u64(fields.op).u64(fields.timestampUs).u32(fields.request).u32(fields.view)
    .u8(OPERATIONS.indexOf(fields.operation)).u32(fields.bodySize);
}

function fieldsChecksum(fields: Omit<Header, 'checksum'>): Checksum {
  const writer = new ByteWriter();
  writeFields(writer, fields);
  return hash(writer.finish());
}

/** Builds a header, computing its checksum. */
export function makeHeader(fields: Omit<Header, 'checksum' | 'bodyChecksum' | 'bodySize'>, body: Uint8Array): Header {
  assert(OPERATIONS.includes(fields.operation), 'known operation');
  const withBody = { ...fields, bodyChecksum: hash(body), bodySize: body.length };
  return { ...withBody, checksum: fieldsChecksum(withBody) };
}

/** The op-0 entry every log starts with; identical on every replica of a cluster. */
export function rootHeader(cluster: ClusterId): Header {
  return makeHeader({
    parent: CHECKSUM_ZERO, cluster, client: 0n, session: 0, op: 0, timestampUs: 0, request: 0, view: 0, operation: 'root',
  }, new Uint8Array(0));
}

/** True when the header's checksum matches its fields (it was not corrupted or forged by accident). */
export function headerValid(header: Header): boolean {
  return checksumEqual(header.checksum, fieldsChecksum(header));
}

/** True when `body` is the body `header` describes. */
export function bodyMatches(header: Header, body: Uint8Array): boolean {
  return body.length === header.bodySize && checksumEqual(header.bodyChecksum, hash(body));
}

/** True when `child` is the entry right after `parent` in the same chain. */
export function linksTo(child: Header, parent: Header): boolean {
  return child.op === parent.op + 1 && checksumEqual(child.parent, parent.checksum)
    && child.timestampUs > parent.timestampUs;
}

export function encodeHeader(writer: ByteWriter, header: Header): void {
  writer.bytes(header.checksum);
  writeFields(writer, header);
}

/** Decodes a header and verifies its checksum before returning it. */
export function decodeHeader(reader: ByteReader): Header {
  const headerChecksum = checksum(reader.bytes(CHECKSUM_BYTES));
  const parent = checksum(reader.bytes(CHECKSUM_BYTES));
  const bodyChecksum = checksum(reader.bytes(CHECKSUM_BYTES));
  const cluster = reader.u128() as ClusterId;
  const client = reader.u128();
  const session = reader.u64();
  const op = reader.u64();
  const timestampUs = reader.u64();
  const request = reader.u32();
  const view = reader.u32();
  const operation = OPERATIONS[reader.u8()];
  if (operation === undefined) throw new DecodeError('unknown operation');
  const bodySize = reader.u32();
  const header: Header = {
    checksum: headerChecksum, parent, bodyChecksum, cluster, client, session, op, timestampUs, request, view, operation, bodySize,
  };
  if (!headerValid(header)) throw new DecodeError(`header checksum mismatch at op ${op}`);
  return header;
}

/** Encodes one entry as its on-disk/record form: header then body. */
export function encodeEntry(entry: Entry): Uint8Array {
  const writer = new ByteWriter();
  encodeHeader(writer, entry.header);
  writer.bytes(entry.body);
  return writer.finish();
}

/** Decodes and verifies an entry; `undefined` when it is torn or corrupt. */
export function decodeEntry(bytes: Uint8Array): Entry | undefined {
  try {
    const reader = new ByteReader(bytes);
    const header = decodeHeader(reader);
    if (reader.remaining !== header.bodySize) return undefined;
    const body = reader.bytes(header.bodySize);
    return bodyMatches(header, body) ? { header, body } : undefined;
  } catch (error) {
    if (error instanceof DecodeError) return undefined;
    throw error;
  }
}
