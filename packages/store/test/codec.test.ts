import t from 'tap';
import fc from 'fast-check';
import { checksumHex, compareValues, seedFrom, type JsonValue, type Value } from '@veritydb/types';
import { ByteReader, ByteWriter, decodeValue, DecodeError, encodeValue } from '../src/index.js';
import { sameValue } from '../testing/model.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${seed}`);

const jsonArbitrary: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }),
  fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
) as fc.Arbitrary<JsonValue>;

const valueArbitrary: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)) }),
  fc.uint8Array({ maxLength: 40 }),
  jsonArbitrary,
);

t.test('every value round-trips through its canonical encoding', async (t) => {
  fc.assert(fc.property(valueArbitrary, (value) => {
    const bytes = encodeValue(value);
    const back = decodeValue(bytes);
    if (!sameValue(back, value)) throw new Error(`round trip changed ${String(value)}`);
    if (typeof value === 'number' && !Object.is(back, value) && !Number.isNaN(value)) throw new Error('-0 lost');
    if (checksumHex(encodeValue(back)) !== checksumHex(bytes)) throw new Error('re-encoding differs');
  }), { seed, numRuns: 1000 });
  t.pass('round trips');
});

t.test('distinct values have distinct encodings', async (t) => {
  fc.assert(fc.property(valueArbitrary, valueArbitrary, (a, b) => {
    const same = checksumHex(encodeValue(a)) === checksumHex(encodeValue(b));
    if (same !== sameValue(a, b)) throw new Error(`encoding equality ${same} for ${String(a)} / ${String(b)}`);
  }), { seed, numRuns: 1000 });
  t.not(checksumHex(encodeValue(0)), checksumHex(encodeValue(-0)), '0 and -0');
  t.not(checksumHex(encodeValue(1)), checksumHex(encodeValue(1n)), '1 and 1n');
  t.equal(compareValues(1, 1n), 0, '(which compare equal)');
  t.equal(checksumHex(encodeValue(Number.NaN)), checksumHex(encodeValue(-Number.NaN)), 'one NaN');
  t.equal(checksumHex(encodeValue({ b: 1, a: 2 })), checksumHex(encodeValue({ a: 2, b: 1 })), 'JSON by canonical text');
});

t.test('strings keep lone surrogates and use standard UTF-8 otherwise', async (t) => {
  for (const text of ['', 'abc', 'é', '€', '\u{1F600}', '\ud800', '\udc00x', 'a\ud83d', '\ud83d\ude00\ud83d']) {
    t.equal(decodeValue(encodeValue(text)), text, JSON.stringify(text));
  }
  const encoded = encodeValue('\u{1F600}é');
  t.same([...encoded.subarray(2)], [...new TextEncoder().encode('\u{1F600}é')], 'well-formed text is plain UTF-8');
});

t.test('the decoder rejects non-canonical and malformed input', async (t) => {
  const bad: [string, number[]][] = [
    ['unknown tag', [9]],
    ['truncated number', [3, 0, 0]],
    ['non-canonical NaN', [3, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]],
    ['bigint with a leading zero byte', [4, 0, 2, 0, 1]],
    ['negative zero bigint', [4, 1, 0]],
    ['bad bigint sign', [4, 2, 1, 1]],
    ['overlong varint', [5, 0x80, 0x00]],
    ['overlong UTF-8', [5, 2, 0xc0, 0x80]],
    ['surrogate pair split in two', [5, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
    ['bad continuation', [5, 2, 0xc3, 0x41]],
    ['JSON tag on a scalar', [7, 1, 0x31]],
    ['non-canonical JSON', [7, 13, ...new TextEncoder().encode('{"b":1,"a":2}')]],
    ['trailing bytes', [0, 0]],
    ['string longer than input', [5, 10, 0x41]],
  ];
  for (const [what, bytes] of bad) t.throws(() => decodeValue(new Uint8Array(bytes)), DecodeError, what);
});

t.test('varints cover safe integers and nothing beyond', async (t) => {
  fc.assert(fc.property(fc.maxSafeNat(), (n) => {
    const writer = new ByteWriter();
    writer.varuint(n);
    const reader = new ByteReader(writer.finish());
    return reader.varuint() === n && reader.remaining === 0;
  }), { seed, numRuns: 1000 });
  t.throws(() => new ByteReader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])).varuint(), DecodeError);
  t.throws(() => new ByteWriter().varuint(-1));
  t.throws(() => new ByteWriter().varuint(2 ** 53));
});

t.test('a writer with a sink streams everything it is given, in order', async (t) => {
  const chunks: Uint8Array[] = [];
  const streaming = new ByteWriter((chunk) => chunks.push(chunk.slice()));
  const whole = new ByteWriter();
  for (let i = 0; i < 20_000; i++) {
    for (const writer of [streaming, whole]) writer.value(i % 3 === 0 ? `text ${i}` : i % 3 === 1 ? BigInt(i) ** 5n : i / 7);
  }
  streaming.finish();
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  t.ok(chunks.length > 1, `${chunks.length} chunks`);
  t.equal(checksumHex(joined), checksumHex(whole.finish()));
});
