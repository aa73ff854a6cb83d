import t from 'tap';
import fc from 'fast-check';
import { blake3Backend, initCrypto } from '@veritydb/crypto';
import { encodeEnvelope, Kernel, type Envelope } from '@veritydb/kernel';
import { CHECKSUM_ZERO, position, seedFrom, tenantId } from '@veritydb/types';
import { KERNEL_OPTIONS } from '../src/index.js';

/**
 * The runtime's kernels hash checkpoints with the WebAssembly BLAKE3 (KERNEL_OPTIONS); the
 * kernel's default is the portable reference. The images must be byte-identical either way, and
 * each must load with the other hasher, so data dirs do not depend on which build wrote them.
 */
const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

function history(values: readonly string[]): Envelope[] {
  const tenant = tenantId(1);
  return [
    { tenant, actor: 'tester', command: { kind: 'tenant_create', id: tenant, name: 'one' } },
    { tenant, actor: 'tester', command: { kind: 'sql', statements: [{ sql: 'CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)', params: [] }] } },
    ...values.map((v, i): Envelope => ({
      tenant, actor: 'tester', command: { kind: 'sql', statements: [{ sql: 'INSERT INTO t VALUES ($1, $2)', params: [BigInt(i), v] }] },
    })),
  ];
}

function applied(kernel: Kernel, entries: readonly Envelope[]): Kernel {
  entries.forEach((envelope, i) => kernel.apply({ position: position(i + 1), timestampMicros: 1_000 + i, hash: CHECKSUM_ZERO }, encodeEnvelope(envelope)));
  return kernel;
}

t.test('checkpoints hashed by the WebAssembly BLAKE3 equal the reference ones and load both ways', async (t) => {
  await initCrypto();
  t.equal(blake3Backend(), 'wasm-direct', 'the fast hasher is in use');
  fc.assert(fc.property(fc.array(fc.string({ maxLength: 300 }), { maxLength: 40 }), (values) => {
    const entries = history(values);
    const fast = applied(Kernel.create(KERNEL_OPTIONS), entries).checkpoint();
    const reference = applied(Kernel.create(), entries).checkpoint();
    if (Buffer.compare(fast, reference) !== 0) throw new Error('checkpoint images differ');
    const viaReference = Kernel.restore(fast);
    const viaFast = Kernel.restore(reference, KERNEL_OPTIONS);
    if (!viaReference.ok || !viaFast.ok) throw new Error('an image did not load with the other hasher');
    const damaged = fast.slice();
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] as number) ^ 1;
    if (Kernel.restore(damaged, KERNEL_OPTIONS).ok) throw new Error('a damaged image loaded');
  }), { seed, numRuns: 40 });
  t.pass('40 histories: identical images, each loads with the other hasher, damage refused');
});
