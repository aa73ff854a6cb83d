import t from 'tap';
import fc from 'fast-check';
import { seedFrom } from '@veritydb/types';
import {
  checkTreeStructure, countPrefix, countPrefixAt, entryKey, insertAt, NEVER, newTree, replaceBefore, seek, seekEnd, TreeCursor, type TreeKey, type Version, type VersionTree,
} from '../src/tree.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${seed}`);

/** One step: add a version of `key` (ending the live one, if any), end the live version of
 * `key`, or clone the tree (a published view: its nodes become shared). `viaGet` positions the
 * cursor with a lookup first, as the batch does after a `get`; otherwise the cursor is taken
 * fresh at the write. */
type Step =
  | { readonly kind: 'put'; readonly key: number; readonly viaGet: boolean }
  | { readonly kind: 'end'; readonly key: number }
  | { readonly kind: 'append' }
  | { readonly kind: 'clone' };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.nat(1_500), viaGet: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('end' as const), key: fc.nat(1_500) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clone' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'append' as const }) },
);

function pairs(tree: VersionTree): [TreeKey, Version][] {
  return [...tree.entries()].map(([key, version]) => [key, version]);
}

/** Whether two trees hold the same key and version objects, in the same order. */
function samePairs(a: readonly [TreeKey, Version][], b: readonly [TreeKey, Version][]): boolean {
  return a.length === b.length && a.every(([key, version], i) => key === b[i]?.[0] && version === b[i]?.[1]);
}

/** The live version of `key` as the plain operations find it, and its tree key. */
function livePair(tree: VersionTree, key: number): [TreeKey, Version] | undefined {
  const pair = tree.getPairOrNextLower({ key: [key], createdAt: 0, edge: 1 });
  if (pair === undefined || pair[0].key[0] !== key || pair[1].deletedAt !== NEVER) return undefined;
  return [pair[0], pair[1]];
}

t.test('seek, replaceBefore and insertAt leave a tree exactly as sorted-btree\'s set would, clones untouched', async (t) => {
  let inPlace = 0;
  let fellBack = 0;
  fc.assert(fc.property(fc.array(stepArbitrary, { minLength: 1, maxLength: 4_000, size: 'max' }), (steps) => {
    const fast = newTree();
    const plain = newTree();
    const cursor = new TreeCursor();
    const clones: { tree: VersionTree; expected: [TreeKey, Version][] }[] = [];
    steps.forEach((step, i) => {
      const at = i + 1;
      if (step.kind === 'clone') {
        const clone = fast.clone();
        clones.push({ tree: clone, expected: pairs(clone) });
        return;
      }
      if (step.kind === 'append') {
        // A key after every other (keys of the other steps stay below 2 000).
        const key = entryKey([2_000 + i], at);
        const version: Version = { createdAt: at, deletedAt: NEVER, row: [2_000 + i, at] };
        plain.set(key, version, false);
        seekEnd(fast, cursor);
        if (cursor.beforeKey !== fast.maxKey()) t.fail(`step ${i}: the cursor at the end is after the last key`);
        if (insertAt(fast, cursor, key, version)) inPlace += 1;
        else {
          fellBack += 1;
          if (!fast.set(key, version, false)) t.fail(`step ${i}: a fallback append adds the key`);
        }
        return;
      }
      const live = livePair(plain, step.key);
      const probe = entryKey([step.key], at);
      seek(fast, probe, cursor);
      const before = cursor.beforeKey;
      const seen = before !== undefined && before.key[0] === step.key && cursor.beforeVersion?.deletedAt === NEVER ? cursor.beforeVersion : undefined;
      if (seen !== live?.[1]) t.fail(`step ${i}: the cursor finds the live version as getPairOrNextLower does`);
      if (step.kind === 'end') {
        if (live === undefined) return;
        const ended: Version = { ...live[1], deletedAt: at };
        plain.set(live[0], ended, true);
        if (replaceBefore(fast, cursor, live[1], ended)) inPlace += 1;
        else {
          fellBack += 1;
          fast.set(live[0], ended, true);
        }
        return;
      }
      const version: Version = { createdAt: at, deletedAt: NEVER, row: [step.key, at] };
      let ended = true;
      if (live !== undefined) {
        const endedVersion: Version = { ...live[1], deletedAt: at };
        plain.set(live[0], endedVersion, true);
        ended = replaceBefore(fast, cursor, live[1], endedVersion);
        if (!ended) fast.set(live[0], endedVersion, true);
      }
      plain.set(probe, version, false);
      if (!ended || !step.viaGet) seek(fast, probe, cursor);
      if (insertAt(fast, cursor, probe, version)) inPlace += 1;
      else {
        fellBack += 1;
        if (!fast.set(probe, version, false)) t.fail(`step ${i}: a fallback insert adds the key`);
      }
    });
    checkTreeStructure(fast);
    if (!samePairs(pairs(fast), pairs(plain)) || fast.size !== plain.size) t.fail('same entries as the plain operations');
    for (const { tree, expected } of clones) {
      checkTreeStructure(tree);
      if (!samePairs(pairs(tree), expected)) t.fail('a clone keeps the entries it had');
    }
  }), { seed, numRuns: 12 });
  t.ok(inPlace > 0 && fellBack > 0, `${inPlace} writes in place, ${fellBack} left to sorted-btree`);
});

t.test('a cursor at the first key of a leaf finds the entry before it at the end of the previous leaf', async (t) => {
  const tree = newTree();
  for (let i = 0; i < 5_000; i += 2) tree.set(entryKey([i], 1), { createdAt: 1, deletedAt: NEVER, row: [i] });
  const cursor = new TreeCursor();
  for (let i = -1; i < 5_001; i++) {
    seek(tree, entryKey([i], 2), cursor);
    const expected = tree.getPairOrNextLower(entryKey([i], 2));
    if (expected === undefined) t.equal(cursor.beforeKey, undefined, `nothing before ${i}`);
    else if (cursor.beforeKey !== expected[0] || cursor.beforeVersion !== expected[1]) t.fail(`entry before ${i}`);
  }
  t.pass('every probe agrees with getPairOrNextLower');
});

t.test('countPrefix counts the visible versions of a prefix as a full filter does, across leaves', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.record({ group: fc.nat(30), id: fc.nat(100_000), createdAt: fc.integer({ min: 1, max: 50 }), life: fc.nat(60) }), { maxLength: 3_000, size: 'max' }),
    fc.nat(30), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 80 }),
    (entries, group, position, limit) => {
      const tree = newTree();
      for (const e of entries) {
        tree.set(entryKey([e.group, e.id], e.createdAt), { createdAt: e.createdAt, deletedAt: e.life === 0 ? NEVER : e.createdAt + e.life, row: [] }, true);
      }
      let expected = 0;
      for (const [key, version] of tree.entries()) {
        if (key.key[0] === group && version.createdAt <= position && position < version.deletedAt) expected += 1;
      }
      const counted = countPrefix(tree, position, [group], limit);
      if (counted !== Math.min(expected, limit)) t.fail(`group ${group} at ${position}, limit ${limit}: ${counted}, expected ${Math.min(expected, limit)}`);
    }), { seed, numRuns: 60 });
  t.pass('countPrefix agrees with a full filter');
});

t.test('countPrefixAt, from the cursor insertAt leaves, counts as countPrefix does or declines', async (t) => {
  let answered = 0;
  let declined = 0;
  fc.assert(fc.property(
    fc.array(fc.record({ group: fc.nat(40), id: fc.nat(100_000), createdAt: fc.integer({ min: 1, max: 50 }), life: fc.nat(60) }), { maxLength: 2_000, size: 'max' }),
    fc.array(fc.record({ group: fc.nat(40), id: fc.nat(100_000), prefix: fc.nat(45), position: fc.integer({ min: 1, max: 60 }), limit: fc.integer({ min: 0, max: 30 }), clone: fc.boolean() }), { minLength: 1, maxLength: 40 }),
    (entries, writes) => {
      const tree = newTree();
      for (const e of entries) {
        tree.set(entryKey([e.group, e.id], e.createdAt), { createdAt: e.createdAt, deletedAt: e.life === 0 ? NEVER : e.createdAt + e.life, row: [] }, true);
      }
      const cursor = new TreeCursor();
      for (const w of writes) {
        if (w.clone) tree.clone();
        const key = entryKey([w.group, w.id], 55);
        seek(tree, key, cursor);
        if (cursor.found) continue;
        const version: Version = { createdAt: 55, deletedAt: NEVER, row: [] };
        if (!insertAt(tree, cursor, key, version)) {
          tree.set(key, version, false);
          if (countPrefixAt(tree, cursor, w.position, [w.group], w.limit) !== undefined) t.fail('a spent cursor declines');
          continue;
        }
        // The written key's own prefix, and another group's (which the cursor's entry lacks).
        for (const prefix of [[w.group], [w.prefix], [w.group, w.id], []]) {
          const counted = countPrefixAt(tree, cursor, w.position, prefix, w.limit);
          if (counted === undefined) {
            declined += 1;
            continue;
          }
          answered += 1;
          const expected = countPrefix(tree, w.position, prefix, w.limit);
          if (counted !== expected) t.fail(`prefix ${JSON.stringify(prefix)} at ${w.position}, limit ${w.limit}: ${counted}, countPrefix ${expected}`);
        }
      }
    }), { seed, numRuns: 40 });
  t.ok(answered > 0 && declined > 0, `${answered} answered from the leaf, ${declined} declined`);
});
