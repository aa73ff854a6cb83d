import t from 'tap';
import fc from 'fast-check';
import { isVerityError, seedFrom, type Position } from '@veritydb/types';
import {
  FRAME_HEADER_BYTES, FrameDecoder, decodeResponse, encodeResultFrames, isFinalResponse, wireLimits, type Result,
  type WireValue,
} from '../src/index.js';
import * as arb from './arbitraries.js';

const seed = seedFrom(process.env, arb.freshSeed);
t.comment(`SEED=${seed}`);
const FRAME_BYTES_MAX = wireLimits.frameBytesMin;

const row: fc.Arbitrary<WireValue[]> = fc.tuple(
  arb.valueOfType('BIGINT'),
  fc.oneof(fc.string({ maxLength: 20 }), fc.string({ minLength: 1000, maxLength: 9000 })).map((value): WireValue => ({ kind: 'text', value })),
);

t.test('a large result is cut into frames that each fit, rows in order, only the last final', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(fc.array(row, { maxLength: 120 }), fc.boolean(), (rows, final) => {
    const frames = encodeResultFrames({
      requestId: 5n, statementIndex: 2, columns: [{ name: 'id', type: 'BIGINT' }, { name: 'note', type: 'TEXT' }],
      rows, rowsAffected: 0, position: 9 as Position, final,
    }, FRAME_BYTES_MAX);
    const decoder = new FrameDecoder({ frameBytesMax: FRAME_BYTES_MAX });
    const results: Result[] = [];
    for (const frame of frames) {
      if (frame.length > FRAME_HEADER_BYTES + FRAME_BYTES_MAX) throw new Error(`frame of ${frame.length} bytes`);
      const step = decoder.push(frame);
      const response = step.frames[0] === undefined ? null : decodeResponse(step.frames[0].payload);
      if (response === null || !response.ok || response.value.requestId !== 5n || response.value.body.kind !== 'result') {
        throw new Error('not a result frame');
      }
      results.push(response.value.body.result);
      const last = results.length === frames.length;
      if (isFinalResponse(response.value) !== (last && final)) throw new Error('final marker misplaced');
    }
    if (arb.canon(results.flatMap((r) => r.rows)) !== arb.canon(rows)) throw new Error('rows differ');
    if (results.some((r) => r.statementIndex !== 2 || r.position !== 9 || r.columns.length !== 2)) throw new Error('header fields differ');
    // Few frames: every frame but the last is at least half full.
    const bytes = frames.reduce((sum, f) => sum + f.length, 0);
    if (frames.length > 1 && bytes < (frames.length - 1) * FRAME_BYTES_MAX / 2) throw new Error(`${frames.length} frames for ${bytes} bytes`);
  }), { seed, numRuns: 60 }));
});

t.test('an empty result is one final frame; a row that cannot fit is a typed error', async (t) => {
  const empty = encodeResultFrames({
    requestId: 1n, statementIndex: 0, columns: [], rows: [], rowsAffected: 3, position: 4 as Position, final: true,
  });
  t.equal(empty.length, 1);
  try {
    encodeResultFrames({
      requestId: 1n, statementIndex: 0, columns: [{ name: 'b', type: 'BYTES' }],
      rows: [[{ kind: 'bytes', value: new Uint8Array(FRAME_BYTES_MAX) }]], rowsAffected: 0, position: 1 as Position, final: true,
    }, FRAME_BYTES_MAX);
    t.fail('expected RowTooLarge');
  } catch (error) {
    t.ok(isVerityError(error, 'RowTooLarge'), String(error));
  }
});
