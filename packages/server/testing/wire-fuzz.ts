import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ed25519PublicKey } from '@veritydb/crypto';
import type { WireValue } from '@veritydb/client';
import type { ClusterId, Prng, ReplicaIndex } from '@veritydb/types';
import {
  FRAME_HEADER_BYTES, FrameDecoder, PROTOCOL_VERSIONS, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeFrame, payloadCrc,
  type ClientMessage, type ServerMessage,
} from '@veritydb/wire';
import { ADMIN_KEY_FILE } from '../src/keys.js';
import { createToken, parseScope, type Scope } from '../src/tokens.js';

/**
 * Frame builders, mutators and a raw socket peer for the wire fuzz tests (test/robustness*.ts).
 * Everything random takes the test's seeded Prng, so a failing run replays with its SEED.
 */

export function frameOf(message: ClientMessage): Uint8Array {
  return encodeFrame(encodeClientMessage(message));
}

export function hello(token: string): Uint8Array {
  return frameOf({ kind: 'hello', hello: { versions: PROTOCOL_VERSIONS, role: 'client', token, clientName: 'fuzz', clusterId: 0n as ClusterId, replicaIndex: 0 as ReplicaIndex } });
}

export function randomValue(rng: Prng): WireValue {
  switch (rng.int(6)) {
    case 0: return { kind: 'null' };
    case 1: return { kind: 'int64', value: BigInt(rng.range(-1000, 1000)) };
    case 2: return { kind: 'text', value: String.fromCharCode(...Array.from({ length: rng.int(20) }, () => 32 + rng.int(90))) };
    case 3: return { kind: 'float64', value: rng.float() * 1e6 };
    case 4: return { kind: 'bool', value: rng.chance(0.5) };
    default: return { kind: 'bytes', value: rng.bytes(rng.int(16)) };
  }
}

/** Inserts, deletes or replaces a few printable characters. */
export function mutateText(rng: Prng, text: string): string {
  const chars = [...text];
  for (let i = rng.range(1, 4); i > 0; i--) chars.splice(rng.int(chars.length + 1), rng.int(3), String.fromCharCode(32 + rng.int(95)));
  return chars.join('');
}

/** Flips random bytes anywhere in the frame (usually breaks magic, length or CRC). */
export function flipBytes(rng: Prng, frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  for (let i = rng.range(1, 3); i > 0; i--) out[rng.int(out.length)] = rng.int(256);
  return out;
}

/** Mutates the payload and fixes the CRC, so the frame passes framing and reaches the decoder. */
export function mutatePayload(rng: Prng, frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  const payloadBytes = out.length - FRAME_HEADER_BYTES;
  if (payloadBytes === 0) return out;
  for (let i = rng.range(1, 4); i > 0; i--) out[FRAME_HEADER_BYTES + rng.int(payloadBytes)] = rng.int(256);
  return withFixedCrc(out);
}

/** Recomputes the header's CRC over the payload (in place) and returns the frame. */
export function withFixedCrc(frame: Uint8Array): Uint8Array {
  new DataView(frame.buffer, frame.byteOffset, frame.byteLength).setUint32(10, payloadCrc(frame.subarray(FRAME_HEADER_BYTES)), false);
  return frame;
}

/** Where a request frame from `encodeClientMessage` holds its id: the first data word of the Request struct. */
const REQUEST_ID_OFFSET = FRAME_HEADER_BYTES + 8 /* segment table */ + 3 * 8 /* root pointer, ClientMessage data and pointer */;

/**
 * A copy of an encoded request frame with another request id and its CRC fixed: encode a
 * request once, send it many times. Checks the layout by decoding the copy.
 */
export function withRequestId(frame: Uint8Array, id: bigint, check = false): Uint8Array {
  const out = frame.slice();
  new DataView(out.buffer).setBigUint64(REQUEST_ID_OFFSET, id, true);
  withFixedCrc(out);
  if (check) {
    const decoded = decodeClientMessage(out.subarray(FRAME_HEADER_BYTES));
    if (!decoded.ok || decoded.value.kind !== 'request' || decoded.value.request.id !== id) throw new Error('request id not where withRequestId writes it');
  }
  return out;
}

/** A frame header (magic, version 1, the given length and CRC) with `payload` after it, not checked. */
export function rawFrame(payload: Uint8Array, length = payload.length, crc = payloadCrc(payload)): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x5644_4220, false);
  view.setUint16(4, 1, false);
  view.setUint32(6, length, false);
  view.setUint32(10, crc, false);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Signs a token with the data dir's admin key (`<data-dir>/keys/admin.key`), as `vdb-admin token
 * create` would, e.g. `scopedToken(dir, ['tenant:2:write'], 3600)`. A negative lifetime gives an
 * expired token.
 */
export async function scopedToken(dataDir: string, scopes: readonly string[], lifetimeSeconds: number): Promise<string> {
  const secretKey = new Uint8Array(Buffer.from((await readFile(join(dataDir, ADMIN_KEY_FILE), 'utf8')).trim(), 'hex'));
  return signedToken(secretKey, scopes, lifetimeSeconds);
}

/** A token signed by `secretKey` (any Ed25519 seed, e.g. a key the server does not know). */
export function signedToken(secretKey: Uint8Array, scopes: readonly string[], lifetimeSeconds: number): string {
  const now = Math.floor(Date.now() / 1000);
  const parsed = scopes.map((s) => parseScope(s)).filter((s): s is Scope => s !== null);
  return createToken(secretKey, ed25519PublicKey(secretKey), {
    subject: 'fuzz', scopes: parsed, issuedAtSeconds: now - 7200, expiresAtSeconds: now + lifetimeSeconds,
  });
}

/** The resident set size of a live process (Linux `/proc/<pid>/status` VmRSS), in bytes. */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** What a raw peer saw on one connection. */
export interface RawOutcome {
  readonly received: Uint8Array;
  /** True when the server closed the connection within the wait. */
  readonly closed: boolean;
}

/**
 * Opens a raw connection and writes `chunks` one per write; with `helloFirst`, first sends it and
 * waits for the server's first frame. Half-closes afterwards when `end` is set, then waits (up
 * to `waitMs`) for the server to close, collecting every byte it sent.
 */
export function rawExchange(
  address: { host: string; port: number }, helloFirst: Uint8Array | null, chunks: readonly Uint8Array[], end: boolean, waitMs: number,
): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket: Socket = connect(address);
    socket.setNoDelay(true);
    const received: Buffer[] = [];
    let sent = false;
    const send = (): void => {
      sent = true;
      for (const chunk of chunks) socket.write(chunk);
      if (end) socket.end();
    };
    const timer = setTimeout(() => { socket.destroy(); resolve({ received: Buffer.concat(received), closed: false }); }, waitMs);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      if (helloFirst === null) send();
      else socket.write(helloFirst);
    });
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (!sent) send();
    });
    socket.on('close', () => { clearTimeout(timer); resolve({ received: Buffer.concat(received), closed: true }); });
  });
}

/** Decodes everything a server sent; null when any byte is not part of a well-formed frame and message. */
export function serverMessages(bytes: Uint8Array): ServerMessage[] | null {
  const decoder = new FrameDecoder();
  const { frames, error } = decoder.push(bytes);
  if (error !== null || decoder.finish() !== null) return null;
  const messages: ServerMessage[] = [];
  for (const frame of frames) {
    const decoded = decodeServerMessage(frame.payload);
    if (!decoded.ok) return null;
    messages.push(decoded.value);
  }
  return messages;
}
