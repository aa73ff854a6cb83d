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
  const type = typeof x;
  if (type === typeof y) {
    if (type === 'string' || type === 'bigint') return x === y ? 0 : (x as string) < (y as string) ? -1 : 1;
    if (type === 'number' && x === x && y === y) return x === y ? 0 : (x as number) < (y as number) ? -1 : 1;
  }
  return compareValues(x, y);
}

export function compareTreeKeys(a: TreeKey, b: TreeKey): number {
  const n = Math.min(a.key.length, b.key.length);
  for (let i = 0; i < n; i++) {
    const c = compareKeyValues(a.key[i] as Value, b.key[i] as Value);
    if (c !== 0) return c;
  }
  if (a.key.length < b.key.length) return a.edge !== 0 ? a.edge : -1;
  if (a.key.length > b.key.length) return b.edge !== 0 ? -b.edge : 1;
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

/** How many versions visible at `position` have a key starting with `prefix`, counting no
 * further than `limit`. Runs to completion without yielding, so it needs no isolation from
 * writes and allocates no iterator chain: the cheap way to ask "none, one or more?". */
export function countPrefix(tree: VersionTree, position: number, prefix: Key, limit: number): number {
  if (limit <= 0) return 0;
  let n = 0;
  tree.forRange({ key: prefix, createdAt: 0, edge: -1 }, { key: prefix, createdAt: 0, edge: 1 }, false, (_key, version) => {
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
