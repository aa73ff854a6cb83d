import t from 'tap';
import { seedFrom } from '@veritydb/types';
import { describeResult, optionsForSeed, simulate } from '../src/cluster.js';

const fresh = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${fresh}`);

/** Fresh seeds per run and cluster size, on top of the fixed lists of sim-3 and sim-5. */
const FRESH_PER_SIZE = 12;

t.test('fresh seeds (replay with SEED=…)', async (t) => {
  for (const replicaCount of [3, 5]) {
    for (let seed = fresh; seed < fresh + FRESH_PER_SIZE; seed++) {
      const result = simulate(optionsForSeed(seed, { replicaCount }));
      t.ok(result.ok, `${replicaCount} replicas, ${describeResult(result, replicaCount)}`);
    }
  }
});

t.test('a seed names one run: two runs of a seed produce the same trace', async (t) => {
  const a = simulate(optionsForSeed(7, { replicaCount: 5 }));
  const b = simulate(optionsForSeed(7, { replicaCount: 5 }));
  t.equal(a.traceHash, b.traceHash);
  t.same(a.stats, b.stats);
  const c = simulate(optionsForSeed(8, { replicaCount: 5 }));
  t.not(a.traceHash, c.traceHash, 'another seed gives another run');
});

t.test('the cluster does real work under faults', async (t) => {
  const result = simulate(optionsForSeed(3, { replicaCount: 3 }));
  t.ok(result.stats.committedOps > 50, `committed ${result.stats.committedOps} ops`);
  t.ok(result.stats.acceptedReplies > 50, `accepted ${result.stats.acceptedReplies} replies`);
});

t.test('a single-replica cluster runs the same code path', async (t) => {
  const base = optionsForSeed(11);
  const result = simulate(optionsForSeed(11, { replicaCount: 1, faults: { ...base.faults, partitions: false, downMax: 1 } }));
  t.ok(result.ok, describeResult(result, 1));
  t.ok(result.stats.committedOps > 50);
});
