import t from 'tap';
import { seedFrom } from '@veritydb/types';
import { optionsForSeed, simulate, type SimulationResult } from '../sim/cluster.js';

const fresh = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${fresh}`);

/** Seeds every CI run replays (3 and 5 replicas), plus fresh ones printed above. */
const FIXED_SEEDS_3 = Array.from({ length: 16 }, (_, i) => 1 + i);
const FIXED_SEEDS_5 = Array.from({ length: 12 }, (_, i) => 101 + i);
const FRESH_SEEDS = [fresh, fresh + 1, fresh + 2];

function check(t: { ok(value: unknown, message: string): unknown }, result: SimulationResult, replicas: number): void {
  const replay = `node packages/vsr/dist/sim/main.js --seed ${result.seed} --replicas ${replicas} --trace`;
  t.ok(result.ok, `seed ${result.seed}: ${result.failure ?? 'ok'}${result.ok ? '' : `\n  replay: ${replay}`}`);
}

t.test('3-replica clusters stay safe under faults and converge after them', async (t) => {
  for (const seed of FIXED_SEEDS_3) check(t, simulate(optionsForSeed(seed, { replicaCount: 3 })), 3);
});

t.test('5-replica clusters stay safe under faults and converge after them', async (t) => {
  for (const seed of FIXED_SEEDS_5) check(t, simulate(optionsForSeed(seed, { replicaCount: 5 })), 5);
});

t.test('fresh seeds', async (t) => {
  for (const seed of FRESH_SEEDS) {
    const options = optionsForSeed(seed);
    t.comment(`fresh seed ${seed} (${options.replicaCount} replicas)`);
    check(t, simulate(options), options.replicaCount);
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
  const result = simulate(optionsForSeed(11, {
    replicaCount: 1, faults: { ...optionsForSeed(11).faults, partitions: false, downMax: 1 },
  }));
  check(t, result, 1);
  t.ok(result.stats.committedOps > 50);
});
