import t from 'tap';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { isVerityError, limits, seedFrom } from '@veritydb/types';
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame, frameErrorResponse, wireLimits } from '../src/index.js';
import { freshSeed } from './arbitraries.js';

const seed = seedFrom(process.env, freshSeed);
t.comment(`SEED=${seed}`);

/** Builds a frame header field by field (tests state what they send, not hex dumps). */
function header(fields: { magic?: number; version?: number; length: number; crc?: number }): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, fields.magic ?? 0x5644_4220, false);
  view.setUint16(4, fields.version ?? 1, false);
  view.setUint32(6, fields.length, false);
  view.setUint32(10, fields.crc ?? 0, false);
  return bytes;
}

t.test('the header is big-endian: magic "VDB ", version, length, CRC-32 of the payload', async (t) => {
  const payload = new TextEncoder().encode('hello');
  const frame = encodeFrame(payload);
  t.equal(Buffer.from(frame.subarray(0, 4)).toString('latin1'), 'VDB ');
  t.equal(Buffer.from(frame).readUInt16BE(4), 1);
  t.equal(Buffer.from(frame).readUInt32BE(6), 5);
  t.equal(Buffer.from(frame).readUInt32BE(10), crc32(payload) >>> 0);
  t.equal(Buffer.from(frame.subarray(14)).toString(), 'hello');
});

t.test('one byte at a time, including an empty frame', async (t) => {
  const frames = [encodeFrame(new Uint8Array(0)), encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array(10_000).fill(7))];
  const decoder = new FrameDecoder();
  const out: number[] = [];
  let errors = 0;
  for (const byte of Buffer.concat(frames)) {
    const step = decoder.push(new Uint8Array([byte]));
    if (step.error !== null) errors++;
    out.push(...step.frames.map((f) => f.payload.length));
  }
  t.equal(errors, 0);
  t.same(out, [0, 3, 10_000]);
  t.equal(decoder.bufferedBytes, 0);
  t.equal(decoder.finish(), null);
});

t.test('random payloads in random chunkings decode to the same frames', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 10 }),
    fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 20 }),
    (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
      const decoder = new FrameDecoder();
      const got: Uint8Array[] = [];
      for (let offset = 0, i = 0; offset < stream.length; i++) {
        const size = cuts[i % cuts.length] as number;
        const step = decoder.push(stream.subarray(offset, offset + size));
        if (step.error !== null) throw new Error(step.error.message);
        got.push(...step.frames.map((f) => f.payload));
        offset += size;
      }
      if (got.length !== payloads.length) throw new Error('frame count differs');
      got.forEach((p, i) => { if (Buffer.compare(p, payloads[i] as Uint8Array) !== 0) throw new Error(`payload ${i} differs`); });
    }), { seed, numRuns: 300 }));
});

t.test('a bad magic fails on the first wrong byte', async (t) => {
  const decoder = new FrameDecoder();
  t.same(decoder.push(new Uint8Array([0x56, 0x44])).error, null, 'a correct prefix is fine');
  const step = decoder.push(new Uint8Array([0x43]));
  t.equal(step.error?.kind, 'BadMagic');
  t.equal(decoder.push(encodeFrame(new Uint8Array(1))).error?.kind, 'BadMagic', 'the decoder stays failed');
  t.equal(decoder.bufferedBytes, 0);
});

t.test('an unsupported frame version fails once its two bytes are in', async (t) => {
  const decoder = new FrameDecoder();
  const step = decoder.push(header({ version: 2, length: 1 }).subarray(0, 6));
  t.match(step.error, { kind: 'UnsupportedVersion', version: 2 });
  t.match(frameErrorResponse(step.error!), { requestId: 0n, body: { kind: 'error', error: { code: 'UnsupportedVersion' } } });
});

t.test('a 4 GiB length is rejected at the header, before any payload is buffered', async (t) => {
  const decoder = new FrameDecoder();
  const step = decoder.push(header({ length: 0xffff_ffff }).subarray(0, 10));
  t.match(step.error, { kind: 'FrameTooLarge', length: 0xffff_ffff, frameBytesMax: limits.frameBytesMax });
  t.equal(decoder.bufferedCapacityBytes, FRAME_HEADER_BYTES, 'no payload buffer was allocated');
  t.match(frameErrorResponse(step.error!), { requestId: 0n, body: { kind: 'error', error: { code: 'BadFrame' } } });
});

t.test('frameBytesMax can be configured lower, and is itself bounded', async (t) => {
  const decoder = new FrameDecoder({ frameBytesMax: wireLimits.frameBytesMin });
  t.equal(decoder.push(header({ length: wireLimits.frameBytesMin + 1 })).error?.kind, 'FrameTooLarge');
  const ok = new FrameDecoder({ frameBytesMax: wireLimits.frameBytesMin });
  t.equal(ok.push(encodeFrame(new Uint8Array(wireLimits.frameBytesMin))).frames.length, 1, 'exactly the limit is accepted');
  t.throws(() => new FrameDecoder({ frameBytesMax: limits.frameBytesMax + 1 }));
  t.throws(() => new FrameDecoder({ frameBytesMax: 10 }));
});

t.test('a claimed length is never allocated before its bytes arrive', async (t) => {
  const decoder = new FrameDecoder();
  decoder.push(header({ length: limits.frameBytesMax }));
  decoder.push(new Uint8Array(100));
  t.ok(decoder.bufferedCapacityBytes <= FRAME_HEADER_BYTES + 4096, `capacity ${decoder.bufferedCapacityBytes} after 100 bytes`);
  for (let i = 0; i < 100; i++) decoder.push(new Uint8Array(1000));
  t.ok(decoder.bufferedCapacityBytes <= FRAME_HEADER_BYTES + 2 * 100_100, `capacity ${decoder.bufferedCapacityBytes} after ~100 kB`);
  t.equal(decoder.bufferedBytes, FRAME_HEADER_BYTES + 100_100);
});

t.test('a wrong CRC is reported with both checksums', async (t) => {
  const frame = encodeFrame(new Uint8Array([1, 2, 3]));
  frame[FRAME_HEADER_BYTES + 1] = 9;
  const step = new FrameDecoder().push(frame);
  t.equal(step.frames.length, 0);
  t.match(step.error, { kind: 'CrcMismatch', expected: crc32(new Uint8Array([1, 2, 3])) >>> 0 });
});

t.test('frames before an error are still delivered; the error ends the stream', async (t) => {
  const good = encodeFrame(new Uint8Array([5]));
  const step = new FrameDecoder().push(Buffer.concat([good, good, new Uint8Array([0, 0, 0, 0])]));
  t.equal(step.frames.length, 2);
  t.equal(step.error?.kind, 'BadMagic');
});

t.test('a stream that ends inside a frame is Truncated', async (t) => {
  const frame = encodeFrame(new Uint8Array(50));
  for (const cut of [1, 13, 14, 40]) {
    const decoder = new FrameDecoder();
    decoder.push(frame.subarray(0, cut));
    t.match(decoder.finish(), { kind: 'Truncated', bufferedBytes: cut }, `cut at ${cut}`);
  }
});

t.test('encodeFrame refuses a payload above the limit with a typed error', async (t) => {
  try {
    encodeFrame(new Uint8Array(wireLimits.frameBytesMin + 1), wireLimits.frameBytesMin);
    t.fail('expected FrameTooLarge');
  } catch (error) {
    t.ok(isVerityError(error, 'FrameTooLarge'), String(error));
  }
});
