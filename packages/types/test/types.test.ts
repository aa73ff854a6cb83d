import t from 'tap';
import fc from 'fast-check';
import {
  assert, assertNever, AssertionError, Prng, position, tenantId, checksum, checksumHex, checksumEqual,
  CHECKSUM_ZERO, clientId, U128_MAX, VerityError, isVerityError, seedFrom, limits,
} from '../src/index.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

t.test('assert throws AssertionError with the message', async (t) => {
  t.throws(() => assert(false, 'boom'), new AssertionError('boom'));
  t.doesNotThrow(() => assert(true));
  t.throws(() => assertNever('x' as never), AssertionError);
});

t.test('branded constructors reject out-of-range values', async (t) => {
  t.equal(position(5), 5);
  t.throws(() => position(-1), AssertionError);
  t.throws(() => position(1.5), AssertionError);
  t.throws(() => tenantId(Number.MAX_SAFE_INTEGER + 2), AssertionError);
  t.throws(() => clientId(U128_MAX + 1n), AssertionError);
  t.throws(() => checksum(new Uint8Array(31)), AssertionError);
  t.equal(checksumHex(CHECKSUM_ZERO), '0'.repeat(64));
  t.ok(checksumEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  t.notOk(checksumEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
});

t.test('prng is deterministic per seed and splits into independent streams', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (s) => {
    const a = new Prng(s);
    const b = new Prng(s);
    for (let i = 0; i < 50; i++) if (a.u32() !== b.u32()) return false;
    const childA = a.split();
    const childB = b.split();
    return childA.u32() === childB.u32() && a.u32() === b.u32();
  }), { seed, numRuns: 200 });
  const rng = new Prng(seed);
  let outOfRange = 0;
  for (let i = 0; i < 10_000; i++) {
    const f = rng.float();
    if (f < 0 || f >= 1) outOfRange += 1;
  }
  t.equal(outOfRange, 0, 'floats lie in [0, 1)');
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) counts[rng.int(10)]! += 1;
  for (const c of counts) t.ok(c > 9_000 && c < 11_000, `roughly uniform bucket: ${c}`);
  t.same(new Prng(1).shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
});

t.test('VerityError carries a stable code', async (t) => {
  const e = new VerityError('CorruptRecord', 'bad', { position: 3 });
  t.ok(isVerityError(e, 'CorruptRecord'));
  t.notOk(isVerityError(e, 'Other'));
  t.equal(e.details['position'], 3);
});

t.test('seedFrom reads SEED or falls back', async (t) => {
  t.equal(seedFrom({ SEED: '17' }, () => 3), 17);
  t.equal(seedFrom({}, () => 3), 3);
  t.throws(() => seedFrom({ SEED: 'x' }, () => 3), AssertionError);
});

t.test('limits are frozen', async (t) => {
  t.ok(Object.isFrozen(limits));
  t.equal(limits.frameBytesMax, 16 * 1024 * 1024);
});
