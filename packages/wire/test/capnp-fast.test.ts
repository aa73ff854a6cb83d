import t from 'tap';
import fc from 'fast-check';
import * as capnp from 'capnp-es';
import { seedFrom } from '@veritydb/types';
import { fastReadClientRequest, fastReadServerResult, fastWriteClientRequest, fastWriteServerResult } from '../src/capnp-fast.js';
import { readRequest, readResponse, startPayload } from '../src/capnp-read.js';
import { writeRequest, writeResponse } from '../src/capnp-write.js';
import { ClientMessage as CapClientMessage, ClientMessage_Which, ServerMessage as CapServerMessage, ServerMessage_Which } from '../src/generated/envelope.js';
import { decodeClientMessage, decodeServerMessage } from '../src/index.js';
import type { Request, Response, Result } from '../src/messages.js';
import * as arb from './arbitraries.js';

/**
 * The hand-written hot-path codec (capnp-fast.ts) against capnp-es, the reference: the writers
 * must produce capnp-es's bytes, the readers capnp-es's values, and on damaged input a fast
 * reader may only return what the reference reads from the same bytes (or fall back).
 */
const seed = seedFrom(process.env, arb.freshSeed);
t.comment(`SEED=${seed}`);

function referenceRequestBytes(request: Request): Uint8Array {
  const message = new capnp.Message();
  writeRequest(message.initRoot(CapClientMessage)._initRequest(), request);
  return new Uint8Array(message.toArrayBuffer());
}

function referenceResultBytes(response: Response): Uint8Array {
  const message = new capnp.Message();
  writeResponse(message.initRoot(CapServerMessage)._initResponse(), response);
  return new Uint8Array(message.toArrayBuffer());
}

/** What the general path reads from `payload` (before validation), or the reason it refuses. */
function referenceReadRequest(payload: Uint8Array): { ok: true; value: Request } | { ok: false } {
  try {
    startPayload(payload.length);
    const root = new capnp.Message(payload, false).getRoot(CapClientMessage);
    if (root.which() !== ClientMessage_Which.REQUEST) return { ok: false };
    return { ok: true, value: readRequest(root.request) };
  } catch {
    return { ok: false };
  }
}

function referenceReadResponse(payload: Uint8Array): { ok: true; value: Response } | { ok: false } {
  try {
    startPayload(payload.length);
    const root = new capnp.Message(payload, false).getRoot(CapServerMessage);
    if (root.which() !== ServerMessage_Which.RESPONSE) return { ok: false };
    return { ok: true, value: readResponse(root.response) };
  } catch {
    return { ok: false };
  }
}

const hotRequest: fc.Arbitrary<Request> = arb.request.filter((r) => r.body.kind === 'execute' || r.body.kind === 'query');
/** Results as the server sends them (valid: a request id >= 1). */
const resultResponse: fc.Arbitrary<Response> = arb.resultBody.chain((body) =>
  fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map((requestId): Response => ({ requestId, body })));

/** A damaged copy of `bytes` that keeps its one-segment table (so both readers get past it). */
const damage = (bytes: Uint8Array): fc.Arbitrary<Uint8Array> => fc.array(
  fc.record({ at: fc.integer({ min: 8, max: Math.max(8, bytes.length - 1) }), value: fc.integer({ min: 0, max: 255 }) }),
  { minLength: 1, maxLength: 6 },
).map((edits) => {
  const copy = bytes.slice();
  for (const { at, value } of edits) if (at < copy.length) copy[at] = value;
  return copy;
});

t.test('the fast writers produce capnp-es\'s bytes', async (t) => {
  fc.assert(fc.property(hotRequest, (request) => {
    const fast = fastWriteClientRequest(request);
    const reference = referenceRequestBytes(request);
    if (Buffer.compare(fast, reference) !== 0) throw new Error(`request bytes differ:\n${Buffer.from(fast).toString('hex')}\n${Buffer.from(reference).toString('hex')}`);
  }), { seed, numRuns: 400 });
  fc.assert(fc.property(resultResponse, (response) => {
    const fast = fastWriteServerResult(response.requestId, (response.body as { result: Result }).result);
    const reference = referenceResultBytes(response);
    if (Buffer.compare(fast, reference) !== 0) throw new Error(`result bytes differ:\n${Buffer.from(fast).toString('hex')}\n${Buffer.from(reference).toString('hex')}`);
  }), { seed, numRuns: 400 });
  t.pass('400 requests and 400 results byte-identical');
});

t.test('the fast readers read what capnp-es reads, and take the plain shape', async (t) => {
  fc.assert(fc.property(hotRequest, (request) => {
    const bytes = referenceRequestBytes(request);
    const fast = fastReadClientRequest(bytes);
    if (fast === null) throw new Error('a plain execute/query fell back');
    const reference = referenceReadRequest(bytes);
    if (!reference.ok || arb.canon(fast) !== arb.canon(reference.value)) throw new Error('fast and reference reads differ');
  }), { seed, numRuns: 400 });
  fc.assert(fc.property(resultResponse, (response) => {
    const bytes = referenceResultBytes(response);
    const fast = fastReadServerResult(bytes);
    if (fast === null) throw new Error('a plain result fell back');
    const reference = referenceReadResponse(bytes);
    if (!reference.ok || arb.canon(fast) !== arb.canon(reference.value)) throw new Error('fast and reference reads differ');
  }), { seed, numRuns: 400 });
  t.pass('800 messages read identically');
});

t.test('other messages fall back to capnp-es', async (t) => {
  fc.assert(fc.property(arb.clientMessage, (message) => {
    if (message.kind === 'request' && (message.request.body.kind === 'execute' || message.request.body.kind === 'query')) return;
    const capMessage = new capnp.Message();
    const root = capMessage.initRoot(CapClientMessage);
    if (message.kind === 'request') writeRequest(root._initRequest(), message.request);
    else root._initHello();
    if (fastReadClientRequest(new Uint8Array(capMessage.toArrayBuffer())) !== null) throw new Error(`${message.kind} taken by the fast reader`);
  }), { seed, numRuns: 300 });
  fc.assert(fc.property(arb.response, (response) => {
    if (response.body.kind === 'result') return;
    if (fastReadServerResult(referenceResultBytes(response)) !== null) throw new Error(`${response.body.kind} taken by the fast reader`);
  }), { seed, numRuns: 300 });
  t.pass('hellos, admin, subscribe, cancel, register, errors, tenants, status and tokens fall back');
});

t.test('on damaged bytes a fast reader returns what capnp-es reads, or falls back', async (t) => {
  let taken = 0;
  let fellBack = 0;
  /** The fast read of `bytes` (null: it fell back) against the reference read of the same bytes. */
  const compare = <T>(bytes: Uint8Array, fast: T | null, reference: () => { ok: true; value: T } | { ok: false }): void => {
    if (fast === null) {
      fellBack += 1;
      return;
    }
    taken += 1;
    const read = reference();
    if (!read.ok) throw new Error(`the fast reader accepted bytes capnp-es refuses: ${Buffer.from(bytes).toString('hex')}`);
    if (arb.canon(fast) !== arb.canon(read.value)) throw new Error(`reads differ on ${Buffer.from(bytes).toString('hex')}`);
  };
  fc.assert(fc.property(hotRequest.chain((request) => damage(referenceRequestBytes(request))), (bytes) => {
    compare(bytes, fastReadClientRequest(bytes), () => referenceReadRequest(bytes));
  }), { seed, numRuns: 3000 });
  fc.assert(fc.property(resultResponse.chain((response) => damage(referenceResultBytes(response))), (bytes) => {
    compare(bytes, fastReadServerResult(bytes), () => referenceReadResponse(bytes));
  }), { seed, numRuns: 3000 });
  t.comment(`damaged payloads: ${taken} read by the fast path (all equal to capnp-es), ${fellBack} fell back`);
  t.ok(taken > 0 && fellBack > 0, 'both outcomes occur');
});

t.test('the codec decodes the same through either path', async (t) => {
  fc.assert(fc.property(hotRequest, (request) => {
    const decoded = decodeClientMessage(referenceRequestBytes(request));
    if (!decoded.ok || arb.canon(decoded.value) !== arb.canon({ kind: 'request', request })) throw new Error('codec read differs');
  }), { seed, numRuns: 200 });
  fc.assert(fc.property(resultResponse, (response) => {
    const decoded = decodeServerMessage(referenceResultBytes(response));
    if (!decoded.ok || arb.canon(decoded.value) !== arb.canon({ kind: 'response', response })) throw new Error('codec read differs');
  }), { seed, numRuns: 200 });
  t.pass('decodeClientMessage and decodeServerMessage agree with the reference on 400 messages');
});
