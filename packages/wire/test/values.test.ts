import t from 'tap';
import fc from 'fast-check';
import { seedFrom } from '@veritydb/types';
import {
  dateFromDays, daysFromDate, decodeRowBlock, decodeValueList, encodeRowBlock, encodeValueList, fromValue, toValue,
  type WireValue,
} from '../src/index.js';
import * as arb from './arbitraries.js';

const seed = seedFrom(process.env, arb.freshSeed);
t.comment(`SEED=${seed}`);

t.test('value lists round-trip exactly and have one byte form', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(fc.array(arb.wireValue, { maxLength: 20 }), (values) => {
    const bytes = encodeValueList(values);
    const decoded = decodeValueList(bytes);
    if (arb.canon(decoded) !== arb.canon(values)) throw new Error('values changed');
    if (Buffer.compare(encodeValueList(decoded), bytes) !== 0) throw new Error('not canonical');
  }), { seed, numRuns: 1000 }));
});

t.test('row blocks check the column count and each value against its column type', async (t) => {
  const block = encodeRowBlock(2, [[{ kind: 'int64', value: 1n }, { kind: 'text', value: 'a' }], [{ kind: 'null' }, { kind: 'null' }]]);
  t.equal(decodeRowBlock(block, ['BIGINT', 'TEXT']).length, 2);
  t.throws(() => decodeRowBlock(block, ['BIGINT']), /columns/);
  t.throws(() => decodeRowBlock(block, ['BIGINT', 'BYTES']), /text value in a BYTES column/);
  const wide = encodeRowBlock(1, [[{ kind: 'int64', value: 1n << 40n }]]);
  t.throws(() => decodeRowBlock(wide, ['INTEGER']), /INTEGER/, 'INTEGER is 32-bit');
});

t.test('byte forms of each tag (PROTOCOL.md §6)', async (t) => {
  const hex = (values: WireValue[]): string => Buffer.from(encodeValueList(values)).toString('hex');
  t.equal(hex([{ kind: 'null' }, { kind: 'bool', value: false }, { kind: 'bool', value: true }]), '03000102');
  t.equal(hex([{ kind: 'int64', value: -1n }]), '010301', 'zigzag: -1 → 1');
  t.equal(hex([{ kind: 'int64', value: 300n }]), '0103d804', 'zigzag: 300 → 600 = d8 04');
  t.equal(hex([{ kind: 'float64', value: 1.5 }]), '01043ff8000000000000', 'big-endian IEEE 754');
  t.equal(hex([{ kind: 'text', value: 'é' }]), '010502c3a9');
  t.equal(hex([{ kind: 'date', value: '1970-01-02' }]), '010702', 'days since 1970-01-01, zigzag');
  t.equal(hex([{ kind: 'json', value: { b: 1, a: [true] } }]), `010912${Buffer.from('{"a":[true],"b":1}').toString('hex')}`, 'canonical JSON');
});

t.test('malformed value bytes are rejected', async (t) => {
  const cases: [string, string][] = [
    ['unknown tag', '010a'],
    ['truncated count', ''],
    ['count larger than the bytes', '05'],
    ['trailing bytes', '0000ff'],
    ['non-minimal varint', '01038000'],
    ['varint beyond 64 bits', '0103ffffffffffffffffff02'],
    ['invalid UTF-8', '010501ff'],
    ['invalid JSON', '0109017b'],
    ['date out of range', '0107ffffffff0f'],
    ['text longer than the bytes', '010505616263'],
  ];
  for (const [name, hex] of cases) t.throws(() => decodeValueList(Buffer.from(hex, 'hex')), name);
  const deep = '['.repeat(200) + ']'.repeat(200);
  const bytes = Buffer.concat([Buffer.from([1, 9, 0x90, 0x03]), Buffer.from(deep)]);
  t.throws(() => decodeValueList(bytes), /deeper/, 'JSON nesting is bounded');
});

t.test('dates: every day in 0000..9999 maps to its text and back', async (t) => {
  t.equal(daysFromDate('1970-01-01'), 0);
  t.equal(daysFromDate('2000-02-29'), 11_016);
  t.equal(dateFromDays(-719_528), '0000-01-01');
  t.equal(dateFromDays(2_932_896), '9999-12-31');
  for (const bad of ['1900-02-29', '2023-13-01', '2023-00-10', '99-01-01', '2023-1-01', '2023-04-31']) t.equal(daysFromDate(bad), null, bad);
  t.doesNotThrow(() => fc.assert(fc.property(fc.integer({ min: -719_528, max: 2_932_896 }), (days) => {
    if (daysFromDate(dateFromDays(days)) !== days) throw new Error(`day ${days}`);
    const viaDate = new Date(days * 86_400_000).toISOString().slice(0, 10);
    if (days >= 0 && viaDate !== dateFromDays(days)) throw new Error(`day ${days}: ${viaDate}`);
  }), { seed, numRuns: 2000 }));
});

t.test('fromValue/toValue bridge to the engine value model', async (t) => {
  t.same(fromValue(5, 'INTEGER'), { kind: 'int64', value: 5n });
  t.same(fromValue('2024-01-31', 'DATE'), { kind: 'date', value: '2024-01-31' });
  t.same(fromValue(null, 'JSON'), { kind: 'null' });
  t.equal(toValue({ kind: 'timestamp', value: 12n }), 12n);
  t.equal(toValue({ kind: 'null' }), null);
  t.equal(toValue({ kind: 'int64', value: 7n }, 'INTEGER'), 7);
  t.equal(toValue({ kind: 'int64', value: 7n }, 'BIGINT'), 7n);
  t.throws(() => fromValue('x', 'BIGINT'));
});
