import t from 'tap';
import { checksum } from '@veritydb/types';
import { Harness } from '../src/harness.js';
import { CounterMachine } from '../src/machine.js';

/** Registers a client and sends `count` requests through a 3-replica harness. */
function script(count: number): string {
  const lines = ['register 1'];
  for (let request = 1; request <= count; request++) lines.push(`request 1 ${request}:a`);
  lines.push('tick 20');
  return lines.join('\n');
}

t.test('replicas exchange and agree on checkpoint state hashes', async (t) => {
  const harness = new Harness(3, { checkpointIntervalOps: 2 });
  const transcript = harness.run(script(5));
  t.match(transcript, /r1->r0 checkpoint op2 /, 'a backup reports its hash at op 2');
  t.match(transcript, /r0->r2 checkpoint op4 /, 'the primary reports its hash at op 4');
});

/** A machine that computes the same replies but whose state hash differs: diverged state. */
class DivergentMachine extends CounterMachine {
  override stateHash() {
    const honest = super.stateHash();
    const flipped = honest.slice();
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    return checksum(flipped);
  }
}

t.test('a replica whose state hash differs at a checkpoint stops the replica that sees it', async (t) => {
  const harness = new Harness(3, { checkpointIntervalOps: 2, machine: (r) => (r === 2 ? new DivergentMachine() : new CounterMachine()) });
  t.throws(() => harness.run(script(3)), /state diverged at checkpoint op 2: replica 2 reports another state hash than replica 0|state diverged at checkpoint op 2/);
});

t.test('a restarted replica whose replay reaches another state at its persisted checkpoint stops', async (t) => {
  let incarnations = 0;
  const machine = (r: number) => (r === 1 && incarnations++ > 0 ? new DivergentMachine() : new CounterMachine());
  const harness = new Harness(3, { checkpointIntervalOps: 2, machine });
  // Past the superblock's commit interval, so r1's superblock holds a checkpoint and its hash.
  harness.run(script(40));
  t.throws(() => harness.run('crash 1\nrestart 1\ntick 5'), /replayed state at checkpoint op \d+ differs from the hash persisted before the restart/);
});

t.test('without a state hash from the machine, no checkpoint messages are sent', async (t) => {
  const harness = new Harness(3, { checkpointIntervalOps: 2, machine: () => ({ apply: ({ body }) => body }) });
  t.notMatch(harness.run(script(5)), /checkpoint/);
});
