import { AssertionError, VerityError } from '@veritydb/types';
import * as capnp from 'capnp-es';
import { readClientHello, readRequest, readResponse, readServerHello, Malformed, malformed, startPayload } from './capnp-read.js';
import { fastReadClientRequest, fastReadServerResult, fastWriteClientRequest, fastWriteServerResult } from './capnp-fast.js';
import { writeClientHello, writeRequest, writeResponse, writeServerHello } from './capnp-write.js';
import { ClientMessage as CapClientMessage, ClientMessage_Which, ServerMessage as CapServerMessage, ServerMessage_Which } from './generated/envelope.js';
import type { FrameError } from './frame-decoder.js';
import { wireLimits } from './limits.js';
import type { ClientMessage, Decoded, Request, Response, ServerMessage } from './messages.js';
import { validateClientMessage, validateServerMessage } from './validate.js';

/**
 * Typed messages ⇄ frame payloads (unpacked Cap'n Proto, one segment when we write it).
 *
 * Encoders validate first and throw VerityError('BadRequest', reason) for a message the peer
 * would reject; decoders never throw on input: any defect, including exceptions from capnp-es
 * on corrupt pointers, becomes `{ ok: false, reason }`.
 *
 * @example
 *   const payload = encodeClientMessage({ kind: 'request', request });
 *   const decoded = decodeClientMessage(payload);
 *   if (decoded.ok) handle(decoded.value); else closeWith('BadRequest', decoded.reason);
 */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  rejectInvalid(validateClientMessage(message));
  // The hot path (execute, query) skips capnp-es's builders; the bytes are the same.
  if (message.kind === 'request' && (message.request.body.kind === 'execute' || message.request.body.kind === 'query')) {
    return fastWriteClientRequest(message.request);
  }
  const capMessage = new capnp.Message();
  const root = capMessage.initRoot(CapClientMessage);
  switch (message.kind) {
    case 'hello': writeClientHello(root._initHello(), message.hello); break;
    case 'request': writeRequest(root._initRequest(), message.request); break;
  }
  return new Uint8Array(capMessage.toArrayBuffer());
}

export function decodeClientMessage(payload: Uint8Array): Decoded<ClientMessage> {
  return decodeWith(payload, () => {
    // The hot path (execute, query in their plain shape) skips capnp-es; anything else, and
    // anything it would reject, goes the general way.
    const fast = fastReadClientRequest(payload);
    if (fast !== null) {
      const message: ClientMessage = { kind: 'request', request: fast };
      return checked(message, validateClientMessage(message));
    }
    const root = new capnp.Message(payload, false).getRoot(CapClientMessage);
    let message: ClientMessage;
    switch (root.which()) {
      case ClientMessage_Which.HELLO: message = { kind: 'hello', hello: readClientHello(root.hello) }; break;
      case ClientMessage_Which.REQUEST: message = { kind: 'request', request: readRequest(root.request) }; break;
      default: return malformed('message: unknown kind');
    }
    return checked(message, validateClientMessage(message));
  });
}

export function encodeServerMessage(message: ServerMessage): Uint8Array {
  rejectInvalid(validateServerMessage(message));
  if (message.kind === 'response' && message.response.body.kind === 'result') {
    return fastWriteServerResult(message.response.requestId, message.response.body.result);
  }
  const capMessage = new capnp.Message();
  const root = capMessage.initRoot(CapServerMessage);
  switch (message.kind) {
    case 'hello': writeServerHello(root._initHello(), message.hello); break;
    case 'response': writeResponse(root._initResponse(), message.response); break;
  }
  return new Uint8Array(capMessage.toArrayBuffer());
}

export function decodeServerMessage(payload: Uint8Array): Decoded<ServerMessage> {
  return decodeWith(payload, () => {
    const fast = fastReadServerResult(payload);
    if (fast !== null) {
      const message: ServerMessage = { kind: 'response', response: fast };
      return checked(message, validateServerMessage(message));
    }
    const root = new capnp.Message(payload, false).getRoot(CapServerMessage);
    let message: ServerMessage;
    switch (root.which()) {
      case ServerMessage_Which.HELLO: message = { kind: 'hello', hello: readServerHello(root.hello) }; break;
      case ServerMessage_Which.RESPONSE: message = { kind: 'response', response: readResponse(root.response) }; break;
      default: return malformed('message: unknown kind');
    }
    return checked(message, validateServerMessage(message));
  });
}

/** Shorthands for the common cases. */
export function encodeRequest(request: Request): Uint8Array {
  return encodeClientMessage({ kind: 'request', request });
}

export function decodeRequest(payload: Uint8Array): Decoded<Request> {
  const decoded = decodeClientMessage(payload);
  if (!decoded.ok) return decoded;
  return decoded.value.kind === 'request' ? { ok: true, value: decoded.value.request } : { ok: false, reason: 'message: a hello where a request was expected' };
}

export function encodeResponse(response: Response): Uint8Array {
  return encodeServerMessage({ kind: 'response', response });
}

export function decodeResponse(payload: Uint8Array): Decoded<Response> {
  const decoded = decodeServerMessage(payload);
  if (!decoded.ok) return decoded;
  return decoded.value.kind === 'response' ? { ok: true, value: decoded.value.response } : { ok: false, reason: 'message: a hello where a response was expected' };
}

/** The connection-level error a server sends before closing a connection whose framing failed. */
export function frameErrorResponse(error: FrameError): Response {
  const code = error.kind === 'UnsupportedVersion' ? 'UnsupportedVersion' : 'BadFrame';
  return { requestId: 0n, body: { kind: 'error', error: { code, message: `${error.kind}: ${error.message}` } } };
}

// ---- decoding scaffolding ----

function checked<T>(value: T, reason: string | null): Decoded<T> {
  return reason === null ? { ok: true, value } : { ok: false, reason };
}

function rejectInvalid(reason: string | null): void {
  if (reason !== null) throw new VerityError('BadRequest', reason);
}

function decodeWith<T>(payload: Uint8Array, read: () => Decoded<T>): Decoded<T> {
  const framing = checkSegmentTable(payload);
  if (framing !== null) return { ok: false, reason: framing };
  startPayload(payload.length);
  try {
    return read();
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    if (error instanceof Malformed) return { ok: false, reason: error.message };
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: `malformed payload: ${detail.slice(0, 200)}` };
  }
}

/**
 * Checks the Cap'n Proto stream header (segment count and sizes, little-endian u32s) before
 * capnp-es sees the bytes: it would allocate an array of the claimed segment count.
 */
function checkSegmentTable(payload: Uint8Array): string | null {
  if (payload.length < 8) return `payload: ${payload.length} bytes is too short for a Cap'n Proto message`;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const segments = view.getUint32(0, true) + 1;
  if (segments > wireLimits.capnpSegmentsMax) return `payload: ${segments} segments exceed ${wireLimits.capnpSegmentsMax}`;
  const tableBytes = 4 + 4 * segments + (segments % 2 === 0 ? 4 : 0);
  if (tableBytes > payload.length) return 'payload: truncated segment table';
  let bytes = tableBytes;
  for (let i = 0; i < segments; i++) bytes += view.getUint32(4 + 4 * i, true) * 8;
  if (bytes !== payload.length) return `payload: segments describe ${bytes} bytes, the payload has ${payload.length}`;
  return null;
}
