import t from 'tap';
import fc from 'fast-check';
import { checksum, clusterId, seedFrom } from '@veritydb/types';
import { decodeMessage, encodeMessage } from '../src/codec.js';
import { decodeEntry, encodeEntry, linksTo, makeHeader, rootHeader, type Header } from '../src/header.js';
import type { Message } from '../src/message.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
const cluster = clusterId(0x1234_5678_9abc_def0_1122_3344_5566_7788n);

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(checksum);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const u128 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
const body = fc.uint8Array({ maxLength: 64 });
const from = fc.integer({ min: 0, max: 255 });

const header: fc.Arbitrary<Header> = fc.record({
  parent: bytes32, client: u128, session: u64, op: u64, timestampUs: u64, request: u32, view: u32,
  operation: fc.constantFrom('root' as const, 'register' as const, 'normal' as const), body,
}).map(({ body: b, ...fields }) => makeHeader({ ...fields, cluster }, b));
const headers = fc.array(header, { maxLength: 4 });

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ kind: fc.constant('request' as const), from, client: u128, session: u64, request: u32,
    operation: fc.constantFrom('register' as const, 'normal' as const), body }),
  fc.record({ kind: fc.constant('prepare' as const), from, view: u32, commit: u64, header, body }),
  fc.record({ kind: fc.constant('prepare_ok' as const), from, view: u32, op: u64, checksum: bytes32 }),
  fc.record({ kind: fc.constant('commit' as const), from, view: u32, commit: u64, checksum: bytes32 }),
  fc.record({ kind: fc.constant('pong' as const), from, view: u32 }),
  fc.record({ kind: fc.constant('start_view_change' as const), from, view: u32, joined: fc.boolean() }),
  fc.record({ kind: fc.constant('do_view_change' as const), from, view: u32, logView: u32, op: u64, commit: u64, headers,
    presentSeed: fc.array(fc.boolean(), { maxLength: 4 }), faulty: fc.array(u64, { maxLength: 3 }) })
    .map(({ presentSeed, ...m }) => ({ ...m, present: m.headers.map((_, i) => presentSeed[i] ?? false) })),
  fc.record({ kind: fc.constant('start_view' as const), from, view: u32, op: u64, commit: u64, headers }),
  fc.record({ kind: fc.constant('request_start_view' as const), from, view: u32 }),
  fc.record({ kind: fc.constant('request_headers' as const), from, view: u32, opMin: u64, opMax: u64 }),
  fc.record({ kind: fc.constant('headers' as const), from, view: u32, headers }),
  fc.record({ kind: fc.constant('request_prepare' as const), from, view: u32, op: u64, checksum: bytes32 }),
  fc.record({ kind: fc.constant('reply' as const), from, view: u32, client: u128, request: u32, session: u64, op: u64, body }),
  fc.record({ kind: fc.constant('eviction' as const), from, view: u32, client: u128, session: u64 }),
  fc.record({ kind: fc.constant('checkpoint' as const), from, op: u64, stateHash: bytes32 }),
  fc.record({ kind: fc.constant('request_state' as const), from, view: u32, op: u64 }),
  fc.record({ kind: fc.constant('state' as const), from, view: u32, op: u64, header, sessions: body, machine: body }),
);

t.test('every message round-trips through the codec', async (t) => {
  fc.assert(fc.property(message, (m) => {
    const decoded = decodeMessage(cluster, encodeMessage(cluster, m));
    t.same(decoded, { ok: true, value: m });
    return decoded.ok;
  }), { seed, numRuns: 300 });
});

t.test('any single bit flip is rejected before a field is trusted', async (t) => {
  fc.assert(fc.property(message, fc.nat(), fc.integer({ min: 0, max: 7 }), (m, at, bit) => {
    const bytes = encodeMessage(cluster, m);
    const index = at % bytes.length;
    bytes[index] = (bytes[index] ?? 0) ^ (1 << bit);
    const decoded = decodeMessage(cluster, bytes);
    return !decoded.ok;
  }), { seed, numRuns: 300 });
  t.pass('300 flipped frames rejected');
});

t.test('truncated, extended and foreign-cluster frames are rejected with a reason', async (t) => {
  const bytes = encodeMessage(cluster, { kind: 'pong', from: 1, view: 3 });
  t.match(decodeMessage(cluster, bytes.subarray(0, 10)), { ok: false, reason: /shorter/ });
  t.match(decodeMessage(cluster, bytes.subarray(0, bytes.length - 1)), { ok: false, reason: /size field/ });
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  t.match(decodeMessage(cluster, longer), { ok: false, reason: /size field/ });
  t.match(decodeMessage(clusterId(7n), bytes), { ok: false, reason: /cluster/ });
});

t.test('entries chain by parent checksum and reject corruption', async (t) => {
  const root = rootHeader(cluster);
  const b = new TextEncoder().encode('hello');
  const one = makeHeader({ parent: root.checksum, cluster, client: 9n, session: 0, op: 1, timestampUs: 5, request: 1, view: 0, operation: 'normal' }, b);
  t.ok(linksTo(one, root));
  t.notOk(linksTo(root, one));
  const encoded = encodeEntry({ header: one, body: b });
  t.same(decodeEntry(encoded), { header: one, body: b });
  for (let i = 0; i < encoded.length; i += 7) {
    const copy = encoded.slice();
    copy[i] = (copy[i] ?? 0) ^ 0x10;
    t.equal(decodeEntry(copy), undefined, `flip at ${i} detected`);
  }
  t.equal(decodeEntry(encoded.subarray(0, encoded.length - 1)), undefined, 'torn entry detected');
});
