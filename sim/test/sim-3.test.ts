import t from 'tap';
import { describeResult, optionsForSeed, simulate } from '../src/cluster.js';

/** Seeds every CI run replays with 3 replicas (fault profile drawn from each seed). */
const SEEDS = Array.from({ length: 96 }, (_, i) => 1 + i);

t.test('3-replica clusters stay safe under faults and converge once faults stop', async (t) => {
  for (const seed of SEEDS) {
    const result = simulate(optionsForSeed(seed, { replicaCount: 3 }));
    t.ok(result.ok, describeResult(result, 3));
  }
});
