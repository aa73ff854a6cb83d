import t from 'tap';
import { describeResult, optionsForSeed, simulate } from '../src/cluster.js';

/** Seeds every CI run replays with 5 replicas (fault profile drawn from each seed). */
const SEEDS = Array.from({ length: 80 }, (_, i) => 101 + i);

t.test('5-replica clusters stay safe under faults and converge once faults stop', async (t) => {
  for (const seed of SEEDS) {
    const result = simulate(optionsForSeed(seed, { replicaCount: 5 }));
    t.ok(result.ok, describeResult(result, 5));
  }
});
