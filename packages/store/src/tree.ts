import btree from 'sorted-btree';
import type * as BTreeModule from 'sorted-btree';
import { assert, compareValues, type Key, type KeyBound, type KeyRange, type Row, type Value } from '@veritydb/types';

/** sorted-btree is CommonJS with a `default` export: under ESM the class sits on `.default`. */
const BTree = btree.default;

/** "Not deleted yet": the deletedAt of a live version, the droppedAt of a live table or index. */
export const NEVER = Number.POSITIVE_INFINITY;

/** One version of one row: visible at positions p with createdAt <= p < deletedAt. Immutable:
 * ending a version replaces the object, so published tree clones keep the old one. */
export interface Version {
  readonly createdAt: number;
  readonly deletedAt: number;
  readonly row: Row;
}

/**
 * A tree key: a key tuple plus the createdAt of the version it belongs to. `edge` is 0 for
 * stored entries; search probes use -1 ("before every key with this prefix") and +1 ("after
 * every key with this prefix"), which is how prefix bounds of a KeyRange become tree positions.
 */
export interface TreeKey {
  readonly key: Key;
  readonly createdAt: number;
  readonly edge: -1 | 0 | 1;
}

export type VersionTree = BTreeModule.default<TreeKey, Version>;

/** compareValues with inline fast paths for the common same-type cases (the B+tree calls this
 * ~20 times per lookup); anything else falls through to the one definition of the order. */
export function compareKeyValues(x: Value, y: Value): number {
  // `typeof v === '…'` tests compile to type checks; a `typeof` kept in a variable does not.
  if (typeof x === 'number') {
    if (typeof y === 'number' && x === x && y === y) return x === y ? 0 : x < y ? -1 : 1;
  } else if (typeof x === 'string') {
    if (typeof y === 'string') return x === y ? 0 : x < y ? -1 : 1;
  } else if (typeof x === 'bigint') {
    if (typeof y === 'bigint') return x === y ? 0 : x < y ? -1 : 1;
  }
  return compareValues(x, y);
}

export function compareTreeKeys(a: TreeKey, b: TreeKey): number {
  const x = a.key;
  const y = b.key;
  const n = x.length < y.length ? x.length : y.length;
  for (let i = 0; i < n; i++) {
    const c = compareKeyValues(x[i] as Value, y[i] as Value);
    if (c !== 0) return c;
  }
  if (x.length < y.length) return a.edge !== 0 ? a.edge : -1;
  if (x.length > y.length) return b.edge !== 0 ? -b.edge : 1;
  if (a.edge !== b.edge) return a.edge < b.edge ? -1 : 1;
  return a.createdAt === b.createdAt ? 0 : a.createdAt < b.createdAt ? -1 : 1;
}

export function newTree(): VersionTree {
  return new BTree<TreeKey, Version>(undefined, compareTreeKeys);
}

export function entryKey(key: Key, createdAt: number): TreeKey {
  return { key, createdAt, edge: 0 };
}

/** Positions a bound as a probe: where iteration starts (lower) or stops (upper). */
function lowerProbe(bound: KeyBound): TreeKey {
  return { key: bound.key, createdAt: 0, edge: bound.inclusive ? -1 : 1 };
}
function upperProbe(bound: KeyBound): TreeKey {
  return { key: bound.key, createdAt: 0, edge: bound.inclusive ? 1 : -1 };
}

export function visibleAt(version: Version, position: number): boolean {
  return version.createdAt <= position && position < version.deletedAt;
}

/**
 * Where a scan reads from. A scan of a tree that may be written while the scan is suspended
 * (the open write batch's trees) reads the live tree until the first such write; just before
 * it, the writer hands the scan a clone of the tree as it was (`ScanGuard.beforeWrite`), and
 * the scan resumes in the clone after the last key it saw. So a scan sees the tree as of its
 * start, as if it had cloned it up front, but a scan that no write interrupts (almost all of
 * them) costs no clone: a clone marks the tree's nodes shared, and the next write to the live
 * tree would copy its path.
 */
export interface ScanCursor {
  source: VersionTree;
  /** Set when `source` was replaced while the scan was suspended. */
  moved: boolean;
}

/** Versions visible at `position` within `range`, in tree order (or reversed). Lazy. With a
 * cursor, reads `cursor.source`, resuming after the last key seen when it is replaced. */
export function* scanTree(tree: VersionTree, position: number, range: KeyRange | undefined,
  reverse: boolean, cursor?: ScanCursor): Generator<Version> {
  const lower = range?.lower === undefined ? undefined : lowerProbe(range.lower);
  const upper = range?.upper === undefined ? undefined : upperProbe(range.upper);
  if (lower !== undefined && upper !== undefined && compareTreeKeys(lower, upper) >= 0) return;
  let source = cursor?.source ?? tree;
  let last: TreeKey | undefined;
  for (;;) {
    const entries = reverse ? source.entriesReversed(last ?? upper) : source.entries(last ?? lower);
    let resumed = false;
    for (const [key, version] of entries) {
      if (last !== undefined && compareTreeKeys(key, last) === 0) continue;
      if (!reverse && upper !== undefined && compareTreeKeys(key, upper) >= 0) return;
      if (reverse && lower !== undefined && compareTreeKeys(key, lower) <= 0) return;
      last = key;
      if (!visibleAt(version, position)) continue;
      yield version;
      if (cursor !== undefined && cursor.moved) {
        cursor.moved = false;
        source = cursor.source;
        resumed = true;
        break;
      }
    }
    if (!resumed) return;
  }
}

/**
 * sorted-btree's nodes as the package lays them out (its internals, the same throughout 2.x):
 * a leaf holds sorted `keys` and their `values`; an internal node holds `children`, `keys[i]`
 * the largest key under `children[i]`, and `_size` the entries under it. `isShared` marks a node
 * reachable from a clone too: it must be copied, not written. `TreeCursor` reads this layout to
 * find a key's place once and then write there without descending again; `checkTreeLayout`
 * asserts it when this module loads, so a sorted-btree that lays nodes out otherwise stops here.
 */
interface TreeNode {
  readonly keys: TreeKey[];
  readonly values: Version[];
  readonly children?: TreeNode[];
  _size?: number;
  readonly isShared?: boolean;
}

interface TreeInternals {
  readonly _root: TreeNode;
  readonly _maxNodeSize: number;
}

function internals(tree: VersionTree): TreeInternals {
  return tree as unknown as TreeInternals;
}

/**
 * Where a probe key sits in a tree: the internal nodes from the root down and the child taken
 * in each, the leaf, the probe's index in it (or where it would go), and the last entry at or
 * before the probe. A write batch keeps one per kind of use and reuses it (no allocation per
 * lookup). Valid until the tree is next written: callers track that themselves.
 */
export class TreeCursor {
  tree: VersionTree | undefined = undefined;
  readonly nodes: TreeNode[] = [];
  readonly slots: number[] = [];
  depth = 0;
  leaf: TreeNode | undefined = undefined;
  /** The probe's index in `leaf` when `found`, else its insertion index. */
  index = 0;
  found = false;
  /** The last entry at or before the probe (getPairOrNextLower), if any. */
  beforeKey: TreeKey | undefined = undefined;
  beforeVersion: Version | undefined = undefined;
}

/** First index whose key is not below `probe` (`keys.length` if none). */
function lowerBound(keys: readonly TreeKey[], probe: TreeKey): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareTreeKeys(keys[middle] as TreeKey, probe) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Positions `cursor` at `probe` in `tree`: one descent, the path sorted-btree's `set` takes. */
export function seek(tree: VersionTree, probe: TreeKey, cursor: TreeCursor): void {
  let node = internals(tree)._root;
  let depth = 0;
  while (node.children !== undefined) {
    const slot = Math.min(lowerBound(node.keys, probe), node.children.length - 1);
    cursor.nodes[depth] = node;
    cursor.slots[depth] = slot;
    depth += 1;
    node = node.children[slot] as TreeNode;
  }
  const index = lowerBound(node.keys, probe);
  const found = index < node.keys.length && compareTreeKeys(node.keys[index] as TreeKey, probe) === 0;
  cursor.tree = tree;
  cursor.depth = depth;
  cursor.leaf = node;
  cursor.index = index;
  cursor.found = found;
  const before = found ? index : index - 1;
  if (before >= 0) {
    cursor.beforeKey = node.keys[before];
    cursor.beforeVersion = node.values[before];
    return;
  }
  cursor.beforeKey = undefined;
  cursor.beforeVersion = undefined;
  // The probe sorts first in its leaf: the entry before it ends the previous leaf.
  for (let d = depth - 1; d >= 0; d--) {
    const slot = cursor.slots[d] as number;
    if (slot === 0) continue;
    let previous = ((cursor.nodes[d] as TreeNode).children as TreeNode[])[slot - 1] as TreeNode;
    while (previous.children !== undefined) previous = previous.children[previous.children.length - 1] as TreeNode;
    cursor.beforeKey = previous.keys[previous.keys.length - 1];
    cursor.beforeVersion = previous.values[previous.keys.length - 1];
    return;
  }
}

/** Positions `cursor` after the tree's last key (for an append): down the rightmost path,
 * with no key comparisons. */
export function seekEnd(tree: VersionTree, cursor: TreeCursor): void {
  let node = internals(tree)._root;
  let depth = 0;
  while (node.children !== undefined) {
    const slot = node.children.length - 1;
    cursor.nodes[depth] = node;
    cursor.slots[depth] = slot;
    depth += 1;
    node = node.children[slot] as TreeNode;
  }
  const last = node.keys.length - 1;
  cursor.tree = tree;
  cursor.depth = depth;
  cursor.leaf = node;
  cursor.index = last + 1;
  cursor.found = false;
  cursor.beforeKey = last >= 0 ? node.keys[last] : undefined;
  cursor.beforeVersion = last >= 0 ? node.values[last] : undefined;
}

/** Whether the cursor's path may be written in place: it starts at the tree's root and no node
 * on it is shared with a clone (a published view, a suspended scan). */
function writablePath(tree: VersionTree, cursor: TreeCursor): boolean {
  if (cursor.tree !== tree) return false;
  const leaf = cursor.leaf as TreeNode;
  if (internals(tree)._root !== (cursor.depth === 0 ? leaf : cursor.nodes[0]) || leaf.isShared === true) return false;
  for (let d = 0; d < cursor.depth; d++) if ((cursor.nodes[d] as TreeNode).isShared === true) return false;
  return true;
}

/**
 * Replaces, in place, the value of the cursor's entry at or before its probe when that entry
 * holds `version` (ending a version keeps its key): what `tree.set(key, ended, true)` does,
 * without a descent. False, and nothing written, when the cursor does not hold `version` or
 * its path is shared.
 */
export function replaceBefore(tree: VersionTree, cursor: TreeCursor, version: Version, replacement: Version): boolean {
  if (cursor.beforeVersion !== version || !writablePath(tree, cursor)) return false;
  const leaf = cursor.leaf as TreeNode;
  const at = cursor.found ? cursor.index : cursor.index - 1;
  if (at < 0 || leaf.values[at] !== version) return false;
  leaf.values[at] = replacement;
  cursor.beforeVersion = replacement;
  return true;
}

/**
 * Inserts `key` → `version` at the cursor, which must have been positioned at `key` (absent)
 * with the tree unchanged since: what `tree.set(key, version, false)` does, without a descent.
 * A full leaf is split first when its parent has room (an insert at the leaf's end starts a new
 * leaf, so appends leave full leaves behind; any other splits it in halves). False, and
 * nothing written, when the path is shared or a split would reach further up (left to
 * sorted-btree): the cursor is spent. True: the cursor is left on the new entry (found), valid
 * until the tree is next written (`countPrefixAt` reads its leaf).
 */
export function insertAt(tree: VersionTree, cursor: TreeCursor, key: TreeKey, version: Version): boolean {
  assert(!cursor.found, 'a new key is absent where the cursor looked');
  let leaf = cursor.leaf as TreeNode;
  const max = internals(tree)._maxNodeSize;
  const full = leaf.keys.length >= max;
  const ok = writablePath(tree, cursor) && leaf.values.length === leaf.keys.length
    && (!full || (cursor.depth > 0 && (cursor.nodes[cursor.depth - 1] as TreeNode).keys.length < max));
  cursor.tree = undefined;
  if (!ok) return false;
  let index = cursor.index;
  assert((index === 0 || compareTreeKeys(leaf.keys[index - 1] as TreeKey, key) < 0)
    && (index === leaf.keys.length || compareTreeKeys(key, leaf.keys[index] as TreeKey) < 0), 'the cursor is at the key it inserts');
  if (full) {
    const right = splitLeaf(cursor, leaf, index === leaf.keys.length ? leaf.keys.length : leaf.keys.length >> 1);
    if (index >= leaf.keys.length) {
      index -= leaf.keys.length;
      leaf = right;
      cursor.slots[cursor.depth - 1] = (cursor.slots[cursor.depth - 1] as number) + 1;
      cursor.leaf = leaf;
      cursor.index = index;
    }
  }
  insertInArray(leaf.keys, index, key);
  insertInArray(leaf.values, index, version);
  // Every node on the path holds one more entry, and its key for the child may have grown.
  let child = leaf;
  for (let d = cursor.depth - 1; d >= 0; d--) {
    const node = cursor.nodes[d] as TreeNode;
    node._size = (node._size as number) + 1;
    node.keys[cursor.slots[d] as number] = child.keys[child.keys.length - 1] as TreeKey;
    child = node;
  }
  cursor.tree = tree;
  cursor.found = true;
  cursor.beforeKey = key;
  cursor.beforeVersion = version;
  return true;
}

/**
 * What `countPrefix(tree, position, prefix, limit)` returns, read from the leaf of a cursor
 * left on an entry with that prefix (an index entry just written), without a descent: the
 * entries with the prefix are the run around the cursor's. Undefined when the cursor is not on
 * such an entry of `tree`, or the run reaches an edge of the leaf before `limit` (it may go on
 * in the next leaf). The caller must know `tree` unwritten since the cursor was positioned.
 */
export function countPrefixAt(tree: VersionTree, cursor: TreeCursor, position: number, prefix: Key, limit: number): number | undefined {
  if (cursor.tree !== tree || !cursor.found) return undefined;
  if (limit <= 0) return 0;
  const leaf = cursor.leaf as TreeNode;
  const keys = leaf.keys;
  const at = cursor.index;
  if (at >= keys.length || !hasPrefix(keys[at] as TreeKey, prefix)) return undefined;
  let n = visibleAt(leaf.values[at] as Version, position) ? 1 : 0;
  if (n >= limit) return n;
  let i = at - 1;
  for (; i >= 0 && hasPrefix(keys[i] as TreeKey, prefix); i--) {
    if (visibleAt(leaf.values[i] as Version, position) && ++n >= limit) return n;
  }
  if (i < 0) return undefined;
  let j = at + 1;
  for (; j < keys.length && hasPrefix(keys[j] as TreeKey, prefix); j++) {
    if (visibleAt(leaf.values[j] as Version, position) && ++n >= limit) return n;
  }
  return j === keys.length ? undefined : n;
}

/** `array.splice(at, 0, item)` without the array of removed items splice returns. */
function insertInArray<T>(array: T[], at: number, item: T): void {
  for (let i = array.length; i > at; i--) array[i] = array[i - 1] as T;
  array[at] = item;
}

/** Moves the cursor's leaf's entries from `at` on into a new leaf, placed after it in its
 * parent (which has room); returns the new leaf. */
function splitLeaf(cursor: TreeCursor, leaf: TreeNode, at: number): TreeNode {
  const Leaf = leaf.constructor as new (keys: TreeKey[], values: Version[]) => TreeNode;
  const right = new Leaf(leaf.keys.splice(at), leaf.values.splice(at));
  const parent = cursor.nodes[cursor.depth - 1] as TreeNode;
  const slot = cursor.slots[cursor.depth - 1] as number;
  (parent.children as TreeNode[]).splice(slot + 1, 0, right);
  // Both keys are set again once the new entry is in (an empty right leaf gets its first).
  parent.keys.splice(slot + 1, 0, parent.keys[slot] as TreeKey);
  parent.keys[slot] = leaf.keys[leaf.keys.length - 1] as TreeKey;
  return right;
}

function hasPrefix(key: TreeKey, prefix: Key): boolean {
  if (key.key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (compareKeyValues(key.key[i] as Value, prefix[i] as Value) !== 0) return false;
  return true;
}

/** Checks a tree's nodes: keys strictly ordered, each internal key equal to the largest key
 * under its child (equal, not the same object: an overwrite with an equal key leaves the
 * parent's), sizes the sums of their children's, leaves holding a value per key. O(size). */
export function checkTreeStructure(tree: VersionTree): void {
  const root = internals(tree)._root;
  const size = checkNode(root, undefined);
  assert(size === tree.size, 'a tree\'s size is its entries');
}

/** Checks `node` (whose keys must all sort after `after`) and returns its entry count. */
function checkNode(node: TreeNode, after: TreeKey | undefined): number {
  for (let i = 0; i < node.keys.length; i++) {
    const previous = i === 0 ? after : node.keys[i - 1];
    assert(previous === undefined || compareTreeKeys(previous, node.keys[i] as TreeKey) < 0, 'tree keys in strictly increasing order');
  }
  if (node.children === undefined) {
    assert(node.values.length >= node.keys.length, 'a leaf holds a value per key');
    return node.keys.length;
  }
  assert(node.children.length === node.keys.length && node.children.length > 0, 'an internal node has a key per child');
  let size = 0;
  for (let i = 0; i < node.children.length; i++) {
    const child = node.children[i] as TreeNode;
    size += checkNode(child, i === 0 ? after : node.keys[i - 1]);
    assert(compareTreeKeys(child.keys[child.keys.length - 1] as TreeKey, node.keys[i] as TreeKey) === 0, 'an internal key is its child\'s largest');
  }
  assert(node._size === size, 'an internal node\'s size is its children\'s');
  return size;
}

/** Fails loudly at load if sorted-btree's nodes are not laid out as `TreeNode` says. */
function checkTreeLayout(): void {
  const tree = newTree();
  const size = internals(tree)._maxNodeSize;
  assert(Number.isInteger(size) && size >= 4, 'sorted-btree keeps its node size in _maxNodeSize');
  const version: Version = { createdAt: 1, deletedAt: NEVER, row: [] };
  for (let i = 0; i <= size * 2; i++) tree.set(entryKey([i], 1), version);
  const root = internals(tree)._root;
  assert(Array.isArray(root.children) && root._size === tree.size && root.keys.length === root.children.length,
    'sorted-btree internal nodes hold children, keys and _size');
  const leaf = root.children[0] as TreeNode;
  assert(leaf.children === undefined && Array.isArray(leaf.keys) && leaf.values.length === leaf.keys.length && root.keys[0] === leaf.keys[leaf.keys.length - 1],
    'sorted-btree leaves hold keys and values; internal keys are their children\'s largest');
  // splitLeaf makes leaves with the leaf class's constructor.
  const Leaf = leaf.constructor as new (keys: TreeKey[], values: Version[]) => TreeNode;
  const keys = [entryKey([0], 1)];
  const made = new Leaf(keys, [version]);
  assert(made.keys === keys && made.values[0] === version && made.children === undefined && made.isShared !== true,
    'sorted-btree\'s leaf constructor takes keys and values');
}
checkTreeLayout();

/** How many versions visible at `position` have a key starting with `prefix`, counting no
 * further than `limit`. Runs to completion without yielding, so it needs no isolation from
 * writes and allocates no iterator chain: the cheap way to ask "none, one or more?". */
export function countPrefix(tree: VersionTree, position: number, prefix: Key, limit: number): number {
  if (limit <= 0) return 0;
  const lower: TreeKey = { key: prefix, createdAt: 0, edge: -1 };
  const upper: TreeKey = { key: prefix, createdAt: 0, edge: 1 };
  // Usually the answer is in the leaf where the prefix starts: one descent, then a walk.
  let node = internals(tree)._root;
  while (node.children !== undefined) node = node.children[Math.min(lowerBound(node.keys, lower), node.children.length - 1)] as TreeNode;
  let n = 0;
  for (let i = lowerBound(node.keys, lower); i < node.keys.length; i++) {
    if (compareTreeKeys(node.keys[i] as TreeKey, upper) >= 0) return n;
    if (visibleAt(node.values[i] as Version, position) && ++n >= limit) return n;
  }
  // The prefix's entries may go on in the next leaf: count them all the general way.
  n = 0;
  tree.forRange(lower, upper, false, (_key, version) => {
    if (visibleAt(version, position) && ++n >= limit) return { break: n };
    return undefined;
  });
  return n;
}

/** The version of `key` visible at `position`, if any: the one with the largest createdAt not
 * after `position`, since a key's versions cover disjoint intervals. */
export function versionAt(tree: VersionTree, key: Key, position: number): Version | undefined {
  const pair = tree.getPairOrNextLower(entryKey(key, position));
  if (pair === undefined) return undefined;
  const [found, version] = pair;
  if (!sameKey(found.key, key)) return undefined;
  return position < version.deletedAt ? version : undefined;
}

/** The live version of `key` (deletedAt = NEVER), if any. */
export function liveVersion(tree: VersionTree, key: Key): Version | undefined {
  const pair = tree.getPairOrNextLower({ key, createdAt: 0, edge: 1 });
  if (pair === undefined) return undefined;
  const [found, version] = pair;
  if (!sameKey(found.key, key)) return undefined;
  return version.deletedAt === NEVER ? version : undefined;
}

/** Live versions whose key starts with `prefix` (unique-index checks). */
export function* liveWithPrefix(tree: VersionTree, prefix: Key): Generator<Version> {
  const end: TreeKey = { key: prefix, createdAt: 0, edge: 1 };
  for (const [key, version] of tree.entries({ key: prefix, createdAt: 0, edge: -1 })) {
    if (compareTreeKeys(key, end) >= 0) return;
    if (version.deletedAt === NEVER) yield version;
  }
}

export function sameKey(a: Key, b: Key): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (compareKeyValues(a[i] as Value, b[i] as Value) !== 0) return false;
  return true;
}

export function project(row: Row, columns: readonly number[]): Key {
  const key = new Array<Value>(columns.length);
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i] as number;
    if (column >= row.length) assert(false, `key column ${column} outside a row of ${row.length} columns`);
    key[i] = row[column] as Value;
  }
  return key;
}

/** An index entry's key: the index columns, then the primary key, so entries are unique and ties
 * come out in primary-key order. */
export function indexEntryKey(row: Row, columns: readonly number[], primaryKey: readonly number[]): Key {
  const key = new Array<Value>(columns.length + primaryKey.length);
  for (let i = 0; i < columns.length; i++) key[i] = keyValue(row, columns[i] as number);
  for (let i = 0; i < primaryKey.length; i++) key[columns.length + i] = keyValue(row, primaryKey[i] as number);
  return key;
}

function keyValue(row: Row, column: number): Value {
  if (column >= row.length) assert(false, `key column ${column} outside a row of ${row.length} columns`);
  return row[column] as Value;
}
