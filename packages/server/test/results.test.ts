import t from 'tap';
import { FrameDecoder, decodeServerMessage, wireLimits, type WireError, type WireValue } from '@veritydb/wire';
import type { Position } from '@veritydb/types';
import { boundedError, resultFrames, resultLimits } from '../src/results.js';
import { bigintsToStrings } from '../src/logger.js';

t.test('a large result is split into frames; only the last is final; rows and order survive', async (t) => {
  const rows: WireValue[][] = Array.from({ length: 50 }, (_, i) => [{ kind: 'int64', value: BigInt(i) }, { kind: 'text', value: 'z'.repeat(100_000) }]);
  const frames = resultFrames(9n, { statementIndex: 2, columns: [{ name: 'id', type: 'BIGINT' }, { name: 't', type: 'TEXT' }], rows, rowsAffected: 50, position: 4 as Position }, true);
  if (!Array.isArray(frames)) throw new Error(frames.message);
  t.ok(frames.length >= Math.floor((50 * 300_000) / resultLimits.frameRowBytesTarget), `${frames.length} frames`);
  const decoder = new FrameDecoder();
  const results = frames.flatMap((f) => decoder.push(f).frames).map((f) => {
    const decoded = decodeServerMessage(f.payload);
    if (!decoded.ok || decoded.value.kind !== 'response' || decoded.value.response.body.kind !== 'result') throw new Error('not a result');
    return decoded.value.response.body.result;
  });
  t.same(results.map((r) => r.final), results.map((_, i) => i === results.length - 1));
  t.same(results.flatMap((r) => r.rows.map((row) => (row[0] as { value: bigint }).value)), rows.map((row) => (row[0] as { value: bigint }).value));
  t.ok(results.every((r) => r.statementIndex === 2 && r.position === 4 && r.columns.length === 2));
  const notFinal = resultFrames(9n, { statementIndex: 0, columns: [], rows: [], rowsAffected: 0, position: 1 as Position }, false);
  t.equal(Array.isArray(notFinal) ? notFinal.length : -1, 1, 'an empty result is one frame');
});

t.test('a row too large for any frame becomes a typed error', async (t) => {
  const huge: WireValue[] = Array.from({ length: 20 }, () => ({ kind: 'bytes', value: new Uint8Array(1024 * 1024) }));
  const outcome = resultFrames(1n, { statementIndex: 0, columns: huge.map((_, i) => ({ name: `c${i}`, type: 'BYTES' as const })), rows: [huge], rowsAffected: 1, position: 1 as Position }, true);
  t.match(outcome, { code: 'SqlError', sqlState: '54000' });
});

t.test('boundedError makes any message encodable', async (t) => {
  const long: WireError = { code: 'Internal', message: 'é'.repeat(10_000) };
  const bounded = boundedError(long);
  t.ok(Buffer.byteLength(bounded.message) <= wireLimits.errorMessageBytesMax);
  t.notOk(bounded.message.includes('\ufffd'), 'cut at a character boundary');
  t.equal(boundedError({ code: 'Internal', message: 'a\u0000b\ud800' }).message, 'a\\0b\ufffd');
  t.match(boundedError({ code: 'SqlError', message: 'm', sqlState: 'bad', line: 0, column: 0 }), { sqlState: 'XX000' });
  t.match(boundedError({ code: 'ConstraintViolation', message: 'm', constraint: '' }), { constraint: 'constraint' });
});

t.test('log objects: BigInts anywhere become decimal strings, other values stay', async (t) => {
  const error = new Error('e');
  const bytes = new Uint8Array([1]);
  t.same(bigintsToStrings({ a: 2n ** 70n, b: [1n, { c: -3n }], d: 'x', e: 1.5, f: null, g: error, h: bytes }),
    { a: '1180591620717411303424', b: ['1', { c: '-3' }], d: 'x', e: 1.5, f: null, g: error, h: bytes });
});
