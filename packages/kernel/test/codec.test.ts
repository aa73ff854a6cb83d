import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { clientId, position, seedFrom, tenantId } from '@veritydb/types';
import {
  decodeEnvelope, encodeEnvelope, OPERATION, validateCommand, type Command, type Envelope,
} from '../src/codec/command.js';
import { ByteReader, ByteWriter } from '../src/codec/bytes.js';
import { readValue, writeValue, type Param } from '../src/codec/value.js';
import { TimestampIndex } from '../src/timestamps.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

const jsonDocument = fc.oneof(
  fc.array(fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string(), fc.constant(null)), { maxKeys: 4 }),
);
const value: fc.Arbitrary<Param> = fc.oneof(
  fc.constant(null), fc.date({ noInvalidDate: false }), fc.boolean(), fc.double(), fc.bigInt({ min: -(2n ** 130n), max: 2n ** 130n }),
  fc.string({ unit: 'grapheme', maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), jsonDocument,
);
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('tenant_create' as const), id: fc.integer({ min: 1, max: 2 ** 40 }).map(tenantId), name: fc.string({ unit: 'grapheme', maxLength: 30 }) }),
  fc.record({ kind: fc.constant('tenant_drop' as const), id: fc.integer({ min: 1, max: 2 ** 40 }).map(tenantId) }),
  fc.record({
    kind: fc.constant('sql' as const),
    statements: fc.array(fc.record({ sql: fc.string({ unit: 'grapheme', maxLength: 40 }), params: fc.array(value, { maxLength: 5 }) }), { minLength: 1, maxLength: 4 }),
  }),
  fc.constant({ kind: 'noop' as const }),
  fc.record({ kind: fc.constant('client_register' as const), client: fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }).map(clientId) }),
);
const envelope: fc.Arbitrary<Envelope> = fc.record({ tenant: fc.integer({ min: 0, max: 2 ** 53 - 1 }).map(tenantId), actor: fc.string({ unit: 'grapheme', maxLength: 20 }), command });

t.test('envelopes round-trip and re-encode to identical bytes', async () => {
  fc.assert(fc.property(envelope, (original) => {
    const bytes = encodeEnvelope(original);
    const decoded = decodeEnvelope(bytes);
    // structuredClone gives both sides plain prototypes (fast-check builds null-prototype records).
    if (!decoded.ok || !isDeepStrictEqual(structuredClone(decoded.value), structuredClone(original))) return false;
    const again = encodeEnvelope(decoded.value);
    return Buffer.from(again).equals(Buffer.from(bytes));
  }), { seed, numRuns: 300 });
});

t.test('the operation byte follows the version byte', async (t) => {
  const bytes = encodeEnvelope({ tenant: tenantId(0), actor: 'a', command: { kind: 'noop' } });
  t.equal(bytes[0], 1);
  t.equal(bytes[1], OPERATION.noop);
  t.same([...bytes], [1, OPERATION.noop, 0, 1, 'a'.charCodeAt(0)]);
});

t.test('decoding never throws on arbitrary or mutated input', async () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    const decoded = decodeEnvelope(bytes);
    return decoded.ok || typeof decoded.reason === 'string';
  }), { seed, numRuns: 500 });
  fc.assert(fc.property(envelope, fc.nat(), fc.integer({ min: 1, max: 255 }), (original, at, flip) => {
    const bytes = encodeEnvelope(original);
    const mutated = bytes.slice();
    const i = at % mutated.length;
    mutated[i] = (mutated[i] as number) ^ flip;
    const decoded = decodeEnvelope(mutated);
    const truncated = decodeEnvelope(bytes.subarray(0, bytes.length - 1));
    return (decoded.ok || typeof decoded.reason === 'string') && !truncated.ok;
  }), { seed, numRuns: 300 });
});

t.test('decoding rejects precisely', async (t) => {
  const good = encodeEnvelope({ tenant: tenantId(3), actor: 'x', command: { kind: 'tenant_drop', id: tenantId(3) } });
  t.match(decodeEnvelope(new Uint8Array([9, ...good.subarray(1)])), { ok: false, reason: /version 9/ });
  t.match(decodeEnvelope(new Uint8Array([1, 99])), { ok: false, reason: /unknown operation 99/ });
  t.match(decodeEnvelope(new Uint8Array([...good, 0])), { ok: false, reason: /trailing/ });
  t.match(decodeEnvelope(new Uint8Array([1, OPERATION.sql, 0, 0, 0])), { ok: false, reason: /batch of 0/ });
  t.match(decodeEnvelope(new Uint8Array([1, OPERATION.noop, 0, 1, 0xff])), { ok: false, reason: /UTF-8/ });
});

t.test('value encoding is canonical', async (t) => {
  const encode = (v: Param): Uint8Array => {
    const w = new ByteWriter();
    writeValue(w, v);
    return w.finish();
  };
  t.same(encode({ b: 1, a: [2] }), encode({ a: [2], b: 1 }), 'JSON objects encode with sorted keys');
  t.notSame(encode(1), encode(1n), 'a double and a bigint are different values');
  const roundTrip = (v: Param): Param => readValue(new ByteReader(encode(v)));
  t.equal(roundTrip(-(2n ** 100n)), -(2n ** 100n));
  t.equal(roundTrip(0n), 0n);
  t.ok(Object.is(roundTrip(-0), -0));
  t.ok(Number.isNaN(roundTrip(Number.NaN)));
  const date = readValue(new ByteReader(encode(new Date(1_700_000_000_123))));
  t.ok(date instanceof Date && date.getTime() === 1_700_000_000_123, 'a Date stays a Date (it types as TIMESTAMP)');
  const w = new ByteWriter();
  w.varuint(Number.MAX_SAFE_INTEGER);
  t.equal(new ByteReader(w.finish()).varuint(), Number.MAX_SAFE_INTEGER);
  t.throws(() => new ByteReader(new Uint8Array([0x80, 0x00])).varuint(), /minimally/);
  t.throws(() => new ByteReader(new Uint8Array([0, 1, 0])).bigint(), /leading zero/);
});

t.test('validateCommand names what is wrong', async (t) => {
  t.equal(validateCommand({ tenant: tenantId(1), actor: 'a', command: { kind: 'sql', statements: [{ sql: 'SELECT 1', params: [] }] } }), undefined);
  t.match(validateCommand({ tenant: tenantId(1), actor: 'a', command: { kind: 'sql', statements: [] } }), /at least one/);
  t.match(validateCommand({ tenant: tenantId(1), actor: 'a'.repeat(300), command: { kind: 'noop' } }), /actor/);
  t.match(validateCommand({ tenant: tenantId(1), actor: 'a', command: { kind: 'tenant_create', id: tenantId(0), name: 'x' } }), /positive/);
});

t.test('timestamp index maps times to the last position at or before them', async (t) => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 0, maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 70_000 })), (gaps, probes) => {
    const index = new TimestampIndex();
    const times: number[] = [];
    let now = 0;
    gaps.forEach((gap, i) => {
      now += gap;
      times.push(now);
      index.append(position(i + 1), now);
    });
    for (const probe of probes) {
      const expected = times.filter((ts) => ts <= probe).length;
      if (index.positionAt(probe) !== expected) return false;
    }
    const w = new ByteWriter();
    index.encode(w);
    const bytes = w.finish();
    const decoded = TimestampIndex.decode(new ByteReader(bytes));
    const w2 = new ByteWriter();
    decoded.encode(w2);
    return decoded.head === index.head && Buffer.from(w2.finish()).equals(Buffer.from(bytes));
  }), { seed, numRuns: 200 });
  const index = new TimestampIndex();
  index.append(position(1), 10);
  t.throws(() => index.append(position(2), 10), /strictly increase/);
  t.throws(() => index.append(position(3), 20), /expects position 2/);
  t.equal(index.timestampOf(position(1)), 10);
  t.equal(index.timestampOf(position(2)), undefined);
});
