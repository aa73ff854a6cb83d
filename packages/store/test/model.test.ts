import t from 'tap';
import fc from 'fast-check';
import { checksumHex, position, Prng, seedFrom, tenantId } from '@veritydb/types';
import { Store } from '../src/index.js';
import {
  applyBatch, applyStatement, applyToModel, cloneState, compareWithModel, History, TENANTS, type Batch, type Intent,
} from '../testing/model.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${seed}`);

const intentArbitrary: fc.Arbitrary<Intent> = fc.record({
  kind: fc.nat(99),
  pick: fc.nat(),
  values: fc.array(fc.nat(1000), { minLength: 6, maxLength: 6 }),
  flag: fc.boolean(),
});

const historyArbitrary = fc.record({
  batches: fc.array(fc.record({
    tenant: fc.nat(),
    abort: fc.nat(9).map((n) => n === 0),
    intents: fc.array(intentArbitrary, { minLength: 1, maxLength: 12, size: 'medium' }),
  }), { minLength: 1, maxLength: 80, size: 'medium' }),
  checkSeed: fc.nat(),
});

/** Applies a batch, comparing the batch's own reads with the model's pending state as it goes. */
function applyChecked(store: Store, history: History, batch: Batch, rng: Prng): void {
  const writer = store.begin(tenantId(batch.tenant), position(batch.position));
  const pending = cloneState(history.stateAt(batch.tenant, batch.position - 1));
  for (const statement of batch.statements) {
    applyStatement(writer, statement);
    applyToModel(pending, statement);
    if (rng.chance(0.3)) compareWithModel(writer, pending, rng, `batch at ${batch.position} after ${statement.kind}`);
  }
  if (batch.abort) {
    writer.abort();
    store.advance(position(batch.position));
  } else {
    writer.commit();
  }
}

function newStore(): Store {
  const store = new Store();
  for (const tenant of TENANTS) store.createTenant(tenantId(tenant));
  return store;
}

t.test('batches read their own writes; snapshots at every earlier position equal the model after every batch', async (t) => {
  let checks = 0;
  fc.assert(fc.property(historyArbitrary, ({ batches, checkSeed }) => {
    const history = new History(batches);
    const rng = new Prng(checkSeed);
    const store = newStore();
    const held: { tenant: number; at: number; reader: ReturnType<Store['snapshotAt']> }[] = [];
    for (const batch of history.batches) {
      applyChecked(store, history, batch, rng);
      for (let i = 0; i < 3; i++) {
        const tenant = rng.pick(TENANTS);
        const at = rng.int(batch.position + 1);
        compareWithModel(store.snapshotAt(tenantId(tenant), position(at)), history.stateAt(tenant, at), rng,
          `tenant ${tenant} at ${at} after batch ${batch.position}`);
        checks += 1;
      }
      const tenant = rng.pick(TENANTS);
      held.push({ tenant, at: batch.position, reader: store.latest(tenantId(tenant)) });
    }
    // Snapshots taken earlier still read their own position after every later commit.
    for (const { tenant, at, reader } of held) {
      compareWithModel(reader, history.stateAt(tenant, at), rng, `held snapshot of tenant ${tenant} at ${at}`);
      checks += 1;
    }
    store.checkInvariants();
  }), { seed, numRuns: 60 });
  t.ok(checks > 0, `${checks} snapshot comparisons`);
});

t.test('checkpoint and restore give the same hash and the same reads at every position', async (t) => {
  fc.assert(fc.property(historyArbitrary, fc.nat(), ({ batches, checkSeed }, extraSeed) => {
    const history = new History(batches);
    const store = newStore();
    for (const batch of history.batches) applyBatch(store, batch);
    const extra = new Prng(extraSeed).bytes(extraSeed % 40);
    const bytes = store.checkpoint(extra);
    const restored = Store.restore(bytes);
    if (!restored.ok) throw new Error(`restore failed: ${restored.reason}`);
    if (checksumHex(restored.store.stateHash()) !== checksumHex(store.stateHash())) throw new Error('state hash differs after restore');
    if (checksumHex(restored.extra) !== checksumHex(extra)) throw new Error('extra bytes differ after restore');
    if (restored.store.lastPosition !== store.lastPosition) throw new Error('last position differs');
    if (checksumHex(restored.store.checkpoint(extra)) !== checksumHex(bytes)) throw new Error('checkpoint of restored store differs');
    restored.store.checkInvariants();
    const rng = new Prng(checkSeed);
    for (let at = 0; at <= history.lastPosition; at++) {
      for (const tenant of TENANTS) {
        compareWithModel(restored.store.snapshotAt(tenantId(tenant), position(at)), history.stateAt(tenant, at), rng,
          `restored tenant ${tenant} at ${at}`);
      }
    }
    // The restored store keeps working: one more batch on top of it.
    const next = restored.store.begin(tenantId(1), position(history.lastPosition + 1));
    next.createTable('after_restore', { primaryKey: [0], columnCount: 1 });
    next.insert('after_restore', [1]);
    next.commit();
    restored.store.checkInvariants();
  }), { seed, numRuns: 40 });
  t.pass('checkpoints round-trip');
});

t.test('pruning keeps every position at or after the horizon intact', async (t) => {
  fc.assert(fc.property(historyArbitrary, fc.nat(), ({ batches, checkSeed }, horizonSeed) => {
    const history = new History(batches);
    const store = newStore();
    const rng = new Prng(checkSeed);
    const half = Math.floor(history.batches.length / 2);
    for (const batch of history.batches.slice(0, half)) applyBatch(store, batch);
    const first = horizonSeed % (half + 1);
    store.prune(position(first));
    for (const batch of history.batches.slice(half)) applyBatch(store, batch);
    const horizon = first + (horizonSeed % (history.lastPosition - first + 1));
    store.prune(position(horizon));
    store.checkInvariants();
    const restored = Store.restore(store.checkpoint());
    if (!restored.ok) throw new Error(restored.reason);
    if (restored.store.horizon !== horizon) throw new Error('horizon survives a checkpoint');
    for (let at = horizon; at <= history.lastPosition; at++) {
      for (const tenant of TENANTS) {
        const expected = history.stateAt(tenant, at);
        compareWithModel(store.snapshotAt(tenantId(tenant), position(at)), expected, rng, `pruned tenant ${tenant} at ${at}`);
        compareWithModel(restored.store.snapshotAt(tenantId(tenant), position(at)), expected, rng, `restored pruned tenant ${tenant} at ${at}`);
      }
    }
  }), { seed, numRuns: 30 });
  t.pass('pruning is invisible at or after the horizon');
});
