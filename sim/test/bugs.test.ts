import t from 'tap';
import type { ReplicaBugs } from '@veritydb/vsr';
import { harshOptionsForSeed, simulate } from '../src/cluster.js';

/**
 * Each deliberate protocol bug must be caught by the simulator's checkers within a seed budget.
 * A checker that never fails would let these pass silently.
 */
function caughtWithin(bug: keyof ReplicaBugs, firstSeed: number, budget: number): { seed: number; failure: string } | undefined {
  for (let seed = firstSeed; seed < firstSeed + budget; seed++) {
    const result = simulate(harshOptionsForSeed(seed, { replicaCount: 3, bugs: { [bug]: true } }));
    if (!result.ok) return { seed, failure: result.failure ?? '' };
  }
  return undefined;
}

const cases: readonly { bug: keyof ReplicaBugs; budget: number; expect: RegExp }[] = [
  { bug: 'commitWithoutQuorum', budget: 20, expect: /SafetyViolation|AssertionError/ },
  { bug: 'sessionAtPrepare', budget: 10, expect: /SafetyViolation|AssertionError/ },
  { bug: 'ackBeforeDurable', budget: 40, expect: /SafetyViolation|AssertionError/ },
];

for (const { bug, budget, expect } of cases) {
  t.test(`bug "${bug}" is caught within ${budget} seeds`, async (t) => {
    const caught = caughtWithin(bug, 1, budget);
    t.ok(caught, `caught ${bug}`);
    if (caught !== undefined) {
      t.comment(`caught at seed ${caught.seed}: ${caught.failure}`);
      t.match(caught.failure, expect);
    }
  });
}
