import {
  assert, assertNever, checksum, checksumEqual, CHECKSUM_BYTES, type ClusterId,
} from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeError } from './bytes.js';
import { vsrConstants } from './constants.js';
import { decodeHeader, encodeHeader, hash, HEADER_BYTES, OPERATIONS, type Header } from './header.js';
import { MESSAGE_KINDS, type Message } from './message.js';

/**
 * Fixed-layout little-endian frame for replica and client messages:
 *
 *   checksum[32] cluster:u128 size:u32 kind:u8 from:u8 payload…
 *
 * `checksum` is BLAKE3 over every byte after it. Decoding checks size, then checksum, then
 * cluster, and only then reads any field.
 */
export const FRAME_PREFIX_BYTES = CHECKSUM_BYTES + 16 + 4 + 1 + 1;

export type DecodeResult = { readonly ok: true; readonly value: Message } | { readonly ok: false; readonly reason: string };

export function encodeMessage(cluster: ClusterId, message: Message): Uint8Array {
  const writer = new ByteWriter();
  writer.bytes(new Uint8Array(CHECKSUM_BYTES)).u128(cluster).u32(0).u8(MESSAGE_KINDS.indexOf(message.kind)).u8(message.from);
  encodePayload(writer, message);
  const bytes = writer.finish();
  assert(bytes.length <= vsrConstants.messageBytesMax, `message too large: ${bytes.length}`);
  new DataView(bytes.buffer).setUint32(CHECKSUM_BYTES + 16, bytes.length, true);
  bytes.set(hash(bytes.subarray(CHECKSUM_BYTES)), 0);
  return bytes;
}

export function decodeMessage(cluster: ClusterId, bytes: Uint8Array): DecodeResult {
  if (bytes.length < FRAME_PREFIX_BYTES) return { ok: false, reason: `frame shorter than prefix: ${bytes.length}` };
  if (bytes.length > vsrConstants.messageBytesMax) return { ok: false, reason: `frame too large: ${bytes.length}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = view.getUint32(CHECKSUM_BYTES + 16, true);
  if (size !== bytes.length) return { ok: false, reason: `size field ${size} != frame length ${bytes.length}` };
  if (!checksumEqual(bytes.subarray(0, CHECKSUM_BYTES), hash(bytes.subarray(CHECKSUM_BYTES)))) {
    return { ok: false, reason: 'frame checksum mismatch' };
  }
  const reader = new ByteReader(bytes, CHECKSUM_BYTES);
  const frameCluster = reader.u128();
  if (frameCluster !== cluster) return { ok: false, reason: `cluster ${frameCluster} is not ${cluster}` };
  reader.u32();
  const kind = MESSAGE_KINDS[reader.u8()];
  if (kind === undefined) return { ok: false, reason: 'unknown message kind' };
  const from = reader.u8();
  try {
    const value = decodePayload(reader, kind, from);
    if (reader.remaining !== 0) return { ok: false, reason: `${reader.remaining} trailing bytes in ${kind}` };
    return { ok: true, value };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, reason: `${kind}: ${error.message}` };
    throw error;
  }
}

function encodeHeaders(writer: ByteWriter, headers: readonly Header[]): void {
  writer.u16(headers.length);
  for (const header of headers) encodeHeader(writer, header);
}

function decodeHeaders(reader: ByteReader): Header[] {
  const count = reader.u16();
  if (count > vsrConstants.viewHeadersMax) throw new DecodeError(`too many headers: ${count}`);
  if (count * HEADER_BYTES > reader.remaining) throw new DecodeError('header count beyond frame');
  const headers: Header[] = [];
  for (let i = 0; i < count; i++) headers.push(decodeHeader(reader));
  return headers;
}

function encodeBody(writer: ByteWriter, body: Uint8Array): void {
  writer.u32(body.length).bytes(body);
}

function decodeBody(reader: ByteReader): Uint8Array {
  const length = reader.u32();
  if (length > reader.remaining) throw new DecodeError(`body length ${length} beyond frame`);
  return reader.bytes(length);
}

function encodePayload(writer: ByteWriter, message: Message): void {
  switch (message.kind) {
    case 'request':
      writer.u128(message.client).u64(message.session).u32(message.request).u8(OPERATIONS.indexOf(message.operation));
      encodeBody(writer, message.body);
      return;
    case 'prepare':
      writer.u32(message.view).u64(message.commit);
      encodeHeader(writer, message.header);
      encodeBody(writer, message.body);
      return;
    case 'prepare_ok':
      writer.u32(message.view).u64(message.op).bytes(message.checksum);
      return;
    case 'commit':
      writer.u32(message.view).u64(message.commit).bytes(message.checksum);
      return;
    case 'pong':
    case 'request_start_view':
      writer.u32(message.view);
      return;
    case 'start_view_change':
      writer.u32(message.view).u8(message.joined ? 1 : 0);
      return;
    case 'do_view_change':
      writer.u32(message.view).u32(message.logView).u64(message.op).u64(message.commit);
      encodeHeaders(writer, message.headers);
      assert(message.present.length === message.headers.length, 'one present flag per header');
      for (const present of message.present) writer.u8(present ? 1 : 0);
      assert(message.faulty.length <= vsrConstants.viewHeadersMax, 'faulty ops bounded');
      writer.u16(message.faulty.length);
      for (const op of message.faulty) writer.u64(op);
      return;
    case 'start_view':
      writer.u32(message.view).u64(message.op).u64(message.commit);
      encodeHeaders(writer, message.headers);
      return;
    case 'request_headers':
      writer.u32(message.view).u64(message.opMin).u64(message.opMax);
      return;
    case 'headers':
      writer.u32(message.view);
      encodeHeaders(writer, message.headers);
      return;
    case 'request_prepare':
      writer.u32(message.view).u64(message.op).bytes(message.checksum);
      return;
    case 'reply':
      writer.u32(message.view).u128(message.client).u32(message.request).u64(message.session).u64(message.op);
      encodeBody(writer, message.body);
      return;
    case 'eviction':
      writer.u32(message.view).u128(message.client).u64(message.session);
      return;
    case 'checkpoint':
      writer.u64(message.op).bytes(message.stateHash);
      return;
    case 'request_state':
      writer.u32(message.view).u64(message.op);
      return;
    case 'state':
      writer.u32(message.view).u64(message.op);
      encodeHeader(writer, message.header);
      encodeBody(writer, message.sessions);
      encodeBody(writer, message.machine);
      return;
    default:
      assertNever(message);
  }
}

function decodePayload(reader: ByteReader, kind: Message['kind'], from: number): Message {
  switch (kind) {
    case 'request': {
      const client = reader.u128();
      const session = reader.u64();
      const request = reader.u32();
      const operation = OPERATIONS[reader.u8()];
      if (operation === undefined || operation === 'root') throw new DecodeError('bad request operation');
      return { kind, from, client, session, request, operation, body: decodeBody(reader) };
    }
    case 'prepare': {
      const view = reader.u32();
      const commit = reader.u64();
      const header = decodeHeader(reader);
      return { kind, from, view, commit, header, body: decodeBody(reader) };
    }
    case 'prepare_ok':
      return { kind, from, view: reader.u32(), op: reader.u64(), checksum: checksum(reader.bytes(CHECKSUM_BYTES)) };
    case 'commit':
      return { kind, from, view: reader.u32(), commit: reader.u64(), checksum: checksum(reader.bytes(CHECKSUM_BYTES)) };
    case 'pong':
    case 'request_start_view':
      return { kind, from, view: reader.u32() };
    case 'start_view_change': {
      const view = reader.u32();
      const joined = reader.u8();
      if (joined > 1) throw new DecodeError('joined is a boolean');
      return { kind, from, view, joined: joined === 1 };
    }
    case 'do_view_change': {
      const view = reader.u32();
      const logView = reader.u32();
      const op = reader.u64();
      const commit = reader.u64();
      const headers = decodeHeaders(reader);
      const present: boolean[] = [];
      for (let i = 0; i < headers.length; i++) {
        const flag = reader.u8();
        if (flag > 1) throw new DecodeError('present flag is a boolean');
        present.push(flag === 1);
      }
      const faultyCount = reader.u16();
      if (faultyCount > vsrConstants.viewHeadersMax) throw new DecodeError(`too many faulty ops: ${faultyCount}`);
      const faulty: number[] = [];
      for (let i = 0; i < faultyCount; i++) faulty.push(reader.u64());
      return { kind, from, view, logView, op, commit, headers, present, faulty };
    }
    case 'start_view':
      return { kind, from, view: reader.u32(), op: reader.u64(), commit: reader.u64(), headers: decodeHeaders(reader) };
    case 'request_headers':
      return { kind, from, view: reader.u32(), opMin: reader.u64(), opMax: reader.u64() };
    case 'headers':
      return { kind, from, view: reader.u32(), headers: decodeHeaders(reader) };
    case 'request_prepare':
      return { kind, from, view: reader.u32(), op: reader.u64(), checksum: checksum(reader.bytes(CHECKSUM_BYTES)) };
    case 'reply':
      return {
        kind, from, view: reader.u32(), client: reader.u128(), request: reader.u32(), session: reader.u64(),
        op: reader.u64(), body: decodeBody(reader),
      };
    case 'eviction':
      return { kind, from, view: reader.u32(), client: reader.u128(), session: reader.u64() };
    case 'checkpoint':
      return { kind, from, op: reader.u64(), stateHash: checksum(reader.bytes(CHECKSUM_BYTES)) };
    case 'request_state':
      return { kind, from, view: reader.u32(), op: reader.u64() };
    case 'state': {
      const view = reader.u32();
      const op = reader.u64();
      const header = decodeHeader(reader);
      const sessions = decodeBody(reader);
      return { kind, from, view, op, header, sessions, machine: decodeBody(reader) };
    }
    default:
      return assertNever(kind);
  }
}
