import t from 'tap';
import fc from 'fast-check';
import { Prng, seedFrom } from '@veritydb/types';
import {
  FRAME_HEADER_BYTES, FrameDecoder, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeFrame,
  encodeServerMessage, wireLimits, type Decoded, type FrameError,
} from '../src/index.js';
import * as arb from './arbitraries.js';

const seed = seedFrom(process.env, arb.freshSeed);
t.comment(`SEED=${seed}`);

const CASES = 100_000;
const FRAME_BYTES_MAX = wireLimits.frameBytesMin;

type Side = 'client' | 'server';
interface Sample { readonly side: Side; readonly payload: Uint8Array }

const MUTATIONS = [
  'valid', 'badMagic', 'badVersion', 'hugeLength', 'bigClaim', 'badCrc', 'truncated', 'garbagePayload', 'mutatedPayload',
] as const;
type Mutation = (typeof MUTATIONS)[number];
const EXPECTED_ERROR: Partial<Record<Mutation, FrameError['kind']>> = {
  badMagic: 'BadMagic', badVersion: 'UnsupportedVersion', hugeLength: 'FrameTooLarge', badCrc: 'CrcMismatch', truncated: 'Truncated',
  bigClaim: 'Truncated',
};

t.test(`${CASES} random and mutated frames: no throw, a typed error each time, bounded memory`, async (t) => {
  const started = Date.now();
  const rng = new Prng(seed);
  const corpus: Sample[] = [
    ...fc.sample(arb.clientMessage, { seed, numRuns: 150 }).map((m): Sample => ({ side: 'client', payload: encodeClientMessage(m) })),
    ...fc.sample(arb.serverMessage, { seed: seed + 1, numRuns: 150 }).map((m): Sample => ({ side: 'server', payload: encodeServerMessage(m) })),
  ];
  const counts = new Map<string, number>();
  const bump = (key: string): void => { counts.set(key, (counts.get(key) ?? 0) + 1); };
  const failures: string[] = [];
  let bufferedMax = 0;

  for (let i = 0; i < CASES && failures.length < 5; i++) {
    const mutation = rng.pick(MUTATIONS);
    const sample = rng.pick(corpus);
    try {
      const bytes = buildCase(rng, mutation, sample);
      const decoder = new FrameDecoder({ frameBytesMax: FRAME_BYTES_MAX });
      const payloads: Uint8Array[] = [];
      let error: FrameError | null = null;
      for (const chunk of split(rng, bytes)) {
        const step = decoder.push(chunk);
        payloads.push(...step.frames.map((f) => f.payload));
        bufferedMax = Math.max(bufferedMax, decoder.bufferedCapacityBytes, decoder.bufferedBytes);
        // Capacity follows what arrived, never what the header claims.
        const payloadBytes = Math.max(0, decoder.bufferedBytes - FRAME_HEADER_BYTES);
        if (decoder.bufferedCapacityBytes > FRAME_HEADER_BYTES + Math.max(4096, 2 * payloadBytes)) {
          failures.push(`case ${i} ${mutation}: capacity ${decoder.bufferedCapacityBytes} for ${payloadBytes} payload bytes`);
        }
        if (step.error !== null) { error = step.error; break; }
      }
      error ??= decoder.finish();
      const expected = EXPECTED_ERROR[mutation];
      if (expected !== undefined) {
        if (error?.kind !== expected || payloads.length !== 0) failures.push(`case ${i} ${mutation}: got ${error?.kind ?? 'no error'}`);
        else bump(`frame:${expected}`);
        continue;
      }
      if (error !== null || payloads.length !== 1) { failures.push(`case ${i} ${mutation}: frame error ${error?.kind}`); continue; }
      const payload = payloads[0] as Uint8Array;
      const decoded = decodeAs(mutation === 'garbagePayload' ? rng.pick(['client', 'server'] as const) : sample.side, payload);
      if (mutation === 'valid') {
        if (!decoded.ok) failures.push(`case ${i}: a valid message was rejected: ${decoded.reason}`);
        else bump('message:valid');
        continue;
      }
      if (decoded.ok) {
        // A mutation may land on bytes that still form a valid message; it must then re-encode.
        if (mutation !== 'garbagePayload') reencode(sample.side, decoded.value);
        bump('message:accepted');
      } else {
        if (typeof decoded.reason !== 'string' || decoded.reason.length === 0) failures.push(`case ${i}: empty reason`);
        bump('message:rejected');
        bump(`reason:${reasonCategory(decoded.reason)}`);
      }
    } catch (caught) {
      failures.push(`case ${i} ${mutation} threw: ${caught instanceof Error ? caught.stack : String(caught)}`);
    }
  }

  const seconds = (Date.now() - started) / 1000;
  t.comment(`${CASES} cases in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
  t.same(failures, [], 'every case ended in a frame, a typed frame error or a typed message rejection');
  t.ok(bufferedMax <= FRAME_HEADER_BYTES + FRAME_BYTES_MAX, `buffer high-water mark ${bufferedMax} ≤ header + frameBytesMax`);
  t.ok((counts.get('frame:Truncated') ?? 0) > 15_000, 'truncations and unfulfilled length claims');
  for (const kind of ['frame:BadMagic', 'frame:UnsupportedVersion', 'frame:FrameTooLarge', 'frame:CrcMismatch', 'frame:Truncated', 'message:valid', 'message:rejected']) {
    t.ok((counts.get(kind) ?? 0) > 1000, `${kind} exercised (${counts.get(kind) ?? 0})`);
  }
  t.ok((counts.get('message:rejected') ?? 0) > 5 * (counts.get('message:accepted') ?? 0), 'corrupt payloads are mostly rejected');
  for (const layer of ['reason:segmentTable', 'reason:capnpException', 'reason:fields']) {
    t.ok((counts.get(layer) ?? 0) > 100, `rejections reach ${layer} (${counts.get(layer) ?? 0})`);
  }
});

/** Which layer rejected a payload: the segment table, capnp-es itself, or field validation. */
function reasonCategory(reason: string): string {
  if (reason.startsWith('payload:')) return 'segmentTable';
  if (reason.startsWith('malformed payload:')) return 'capnpException';
  return 'fields';
}

function decodeAs(side: Side, payload: Uint8Array): Decoded<unknown> {
  return side === 'client' ? decodeClientMessage(payload) : decodeServerMessage(payload);
}

function reencode(side: Side, value: unknown): void {
  if (side === 'client') encodeClientMessage(value as Parameters<typeof encodeClientMessage>[0]);
  else encodeServerMessage(value as Parameters<typeof encodeServerMessage>[0]);
}

function buildCase(rng: Prng, mutation: Mutation, sample: Sample): Uint8Array {
  const frame = encodeFrame(sample.payload);
  const view = new DataView(frame.buffer);
  switch (mutation) {
    case 'valid': return frame;
    case 'badMagic': {
      const at = rng.int(4);
      frame[at] = ((frame[at] as number) ^ (1 + rng.int(255))) & 0xff;
      return frame;
    }
    case 'badVersion': view.setUint16(4, rng.chance(0.5) ? 0 : 2 + rng.int(0xfffe), false); return frame;
    case 'hugeLength': {
      // Anything above the bound up to 4 GiB - 1; only the header and a little payload are sent.
      view.setUint32(6, FRAME_BYTES_MAX + 1 + rng.int(0xffff_ffff - FRAME_BYTES_MAX), false);
      return frame.subarray(0, FRAME_HEADER_BYTES + rng.int(Math.min(64, frame.length - FRAME_HEADER_BYTES + 1)));
    }
    case 'bigClaim': {
      // A length within the bound but larger than what is sent: the stream ends first.
      const sent = frame.subarray(0, FRAME_HEADER_BYTES + rng.int(frame.length - FRAME_HEADER_BYTES + 1));
      view.setUint32(6, sent.length - FRAME_HEADER_BYTES + 1 + rng.int(FRAME_BYTES_MAX - (sent.length - FRAME_HEADER_BYTES)), false);
      return sent;
    }
    case 'badCrc': view.setUint32(10, (view.getUint32(10, false) ^ (1 + rng.int(0xffff_fffe))) >>> 0, false); return frame;
    case 'truncated': return frame.subarray(0, 1 + rng.int(frame.length - 1));
    case 'garbagePayload': {
      const payload = rng.bytes(rng.int(200));
      // Half of the time, make the Cap'n Proto segment table plausible so decoding goes deeper.
      if (rng.chance(0.5) && payload.length >= 16) {
        const words = Math.floor((payload.length - 8) / 8);
        new DataView(payload.buffer).setUint32(0, 0, true);
        new DataView(payload.buffer).setUint32(4, words, true);
        return encodeFrame(payload.subarray(0, 8 + words * 8));
      }
      return encodeFrame(payload);
    }
    case 'mutatedPayload': {
      const payload = sample.payload.slice();
      const flips = 1 + rng.int(8);
      for (let k = 0; k < flips; k++) {
        const at = rng.int(payload.length);
        payload[at] = rng.chance(0.5) ? rng.int(256) : ((payload[at] as number) ^ (1 << rng.int(8)));
      }
      return encodeFrame(payload);
    }
  }
}

/** Cuts bytes into 1..4 chunks at random points. */
function split(rng: Prng, bytes: Uint8Array): Uint8Array[] {
  const pieces = 1 + rng.int(4);
  const cuts = Array.from({ length: pieces - 1 }, () => rng.int(bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(previous, cut));
    previous = cut;
  }
  return chunks;
}
