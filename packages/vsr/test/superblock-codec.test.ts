import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import fc from 'fast-check';
import { checksum, clusterId, seedFrom } from '@veritydb/types';
import { hash, makeHeader, type Header } from '../src/header.js';
import { decodeSuperblock, encodeSuperblock } from '../src/superblock-codec.js';
import type { Superblock } from '../src/storage.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
const cluster = clusterId(0xfeed_beef_0000_0001n);
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(checksum);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const header: fc.Arbitrary<Header> = fc.record({
  parent: bytes32, client: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), session: u64, op: u64, timestampUs: u64, request: u32,
  view: u32, operation: fc.constantFrom('register' as const, 'normal' as const), body: fc.uint8Array({ maxLength: 16 }),
}).map(({ body, ...fields }) => makeHeader({ ...fields, cluster }, body));
const superblock: fc.Arbitrary<Superblock> = fc.record({
  replica: fc.integer({ min: 0, max: 4 }), view: u32, logView: u32, commitMax: u64, checkpoint: u64,
  checkpointHash: fc.option(bytes32, { nil: undefined }), amnesia: fc.boolean(), viewHeaders: fc.array(header, { maxLength: 5 }),
}).map(({ checkpointHash, amnesia, ...s }) => ({
  ...s, ...(checkpointHash === undefined ? {} : { checkpointHash }), ...(amnesia ? { amnesia } : {}), cluster, replicaCount: 5,
}));

t.test('round trip', async (t) => {
  fc.assert(fc.property(superblock, (s) => {
    const decoded = decodeSuperblock(encodeSuperblock(s));
    return decoded.ok && isDeepStrictEqual({ ...decoded.superblock }, { ...s });
  }), { seed, numRuns: 200 });
  t.pass('every superblock decodes to itself');
});

t.test('a version 1 superblock (before checkpoint hashes) is still read', async (t) => {
  const s: Superblock = { cluster, replica: 1, replicaCount: 3, view: 7, logView: 6, commitMax: 99, checkpoint: 0, viewHeaders: [] };
  const v2 = encodeSuperblock(s);
  // Version 1 is version 2 without the checkpoint-hash flag byte (here 0) before the header count.
  const flagAt = 32 + 2 + 16 + 1 + 1 + 4 + 4 + 8 + 8;
  t.equal(v2[flagAt], 0, 'no checkpoint hash');
  const v1 = new Uint8Array(v2.length - 1);
  v1.set(v2.subarray(0, flagAt));
  v1.set(v2.subarray(flagAt + 1), flagAt);
  new DataView(v1.buffer).setUint16(32, 1, true);
  v1.set(hash(v1.subarray(32)), 0);
  t.same(decodeSuperblock(v1), { ok: true, superblock: s });
  new DataView(v1.buffer).setUint16(32, 3, true);
  v1.set(hash(v1.subarray(32)), 0);
  t.match(decodeSuperblock(v1), { ok: false, reason: /version 3/ }, 'an unknown version is refused');
});

t.test('every single-bit flip and every truncation is refused', async (t) => {
  const bytes = encodeSuperblock(fc.sample(superblock, { seed, numRuns: 1 })[0] as Superblock);
  let refused = 0;
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const copy = bytes.slice();
    copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
    if (!decodeSuperblock(copy).ok) refused++;
  }
  t.equal(refused, bytes.length * 8, 'all flips detected');
  for (let length = 0; length < bytes.length; length++) t.notOk(decodeSuperblock(bytes.subarray(0, length)).ok, `cut at ${length}`);
});
