import { assert, limits, type IndexLayout, type TableLayout } from '@veritydb/types';
import { entryKey, indexEntryKey, newTree, NEVER, project, type Version, type VersionTree } from './tree.js';

/**
 * Tables and indexes have incarnations: `CREATE TABLE t` at 5, `DROP TABLE t` at 9 and
 * `CREATE TABLE t` again at 12 give two incarnations of `t`, each with its own layout and trees,
 * visible at positions createdAt <= p < droppedAt. ALTER TABLE ends one incarnation and starts
 * the next, so AS OF reads before it keep the old layout and rows.
 */
export interface Lifetime {
  readonly createdAt: number;
  readonly droppedAt: number;
}

export interface IndexSource extends Lifetime {
  readonly name: string;
  readonly layout: IndexLayout;
  readonly tree: VersionTree;
}

export interface TableSource extends Lifetime {
  readonly name: string;
  readonly layout: TableLayout;
  readonly primary: VersionTree;
  readonly indexes: ReadonlyMap<string, readonly IndexSource[]>;
  rowCountAt(position: number): number;
}

/** Table name to its incarnations, oldest first. */
export type CatalogSource = ReadonlyMap<string, readonly TableSource[]>;

export function visibleIncarnation<T extends Lifetime>(list: readonly T[] | undefined, position: number): T | undefined {
  if (list === undefined) return undefined;
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i] as T;
    if (item.createdAt <= position) return position < item.droppedAt ? item : undefined;
  }
  return undefined;
}

export function checkTableLayout(layout: TableLayout): TableLayout {
  assert(Number.isInteger(layout.columnCount) && layout.columnCount >= 1 && layout.columnCount <= limits.tableColumnsMax,
    `column count ${layout.columnCount} outside [1, ${limits.tableColumnsMax}]`);
  checkColumns(layout.primaryKey, layout.columnCount, 'primary key');
  return Object.freeze({ primaryKey: Object.freeze([...layout.primaryKey]), columnCount: layout.columnCount });
}

export function checkIndexLayout(layout: IndexLayout, columnCount: number): IndexLayout {
  checkColumns(layout.columns, columnCount, 'index');
  return Object.freeze({ columns: Object.freeze([...layout.columns]), unique: layout.unique === true });
}

function checkColumns(columns: readonly number[], columnCount: number, what: string): void {
  assert(columns.length >= 1, `${what} needs at least one column`);
  const seen = new Set<number>();
  for (const column of columns) {
    assert(Number.isInteger(column) && column >= 0 && column < columnCount, `${what} column ${column} outside [0, ${columnCount})`);
    assert(!seen.has(column), `${what} repeats column ${column}`);
    seen.add(column);
  }
}

/** The applier's mutable index incarnation. */
export class IndexState implements IndexSource {
  droppedAt = NEVER;
  readonly tree = newTree();
  constructor(readonly name: string, readonly layout: IndexLayout, readonly createdAt: number) {}
}

/** Committed row counts: at positions[i] (and until the next entry) the table had values[i] live
 * rows. Append-only, so a published view shares the arrays and remembers its length; pruning
 * builds new arrays. */
interface CountHistory {
  readonly positions: number[];
  readonly values: number[];
}

function countAt(history: CountHistory, length: number, position: number): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((history.positions[middle] as number) <= position) low = middle + 1;
    else high = middle;
  }
  return low === 0 ? 0 : history.values[low - 1] as number;
}

/** The applier's mutable table incarnation. Its trees are written in place by the open batch;
 * snapshots read `TableView`s, frozen O(1) clones taken at commit. */
export class TableState implements TableSource {
  droppedAt = NEVER;
  readonly primary = newTree();
  readonly indexes = new Map<string, IndexState[]>();
  /** Live rows including the open batch's writes. */
  liveCount = 0;
  /** Bumped by every change to `primary` (the open batch's read-then-write shortcut checks it). */
  primaryWrites = 0;
  counts: CountHistory = { positions: [], values: [] };
  /** The published view, until a batch changes this incarnation. */
  view: TableView | undefined;
  #liveIndexes: readonly IndexState[] | undefined;

  /** Whether the primary key is every column in order, so a stored row can be its own key. */
  readonly keyIsRow: boolean;

  constructor(readonly name: string, readonly layout: TableLayout, readonly createdAt: number) {
    this.keyIsRow = layout.primaryKey.length === layout.columnCount && layout.primaryKey.every((column, i) => column === i);
  }

  /** Only the open batch reads the applier's state, at its own position: the live count. */
  rowCountAt(_position: number): number {
    return this.liveCount;
  }

  /** The committed row count at `position` (invariant checks). */
  committedCountAt(position: number): number {
    return countAt(this.counts, this.counts.positions.length, position);
  }

  /** The live index incarnations. Cached: every write asks, and index DDL is rare. The array
   * is never mutated, so a caller may keep it (undo records do) and see the set it was given. */
  liveIndexes(): readonly IndexState[] {
    if (this.#liveIndexes !== undefined) return this.#liveIndexes;
    const out: IndexState[] = [];
    for (const list of this.indexes.values()) {
      const last = list[list.length - 1];
      if (last !== undefined && last.droppedAt === NEVER) out.push(last);
    }
    this.#liveIndexes = Object.freeze(out);
    return this.#liveIndexes;
  }

  /** Call after any change to `indexes` or to an index's `droppedAt`. */
  indexesChanged(): void {
    this.#liveIndexes = undefined;
  }

  recordCount(position: number): void {
    const { positions, values } = this.counts;
    const last = values.length === 0 ? 0 : values[values.length - 1] as number;
    if (last === this.liveCount) return;
    assert(positions.length === 0 || (positions[positions.length - 1] as number) < position, 'counts recorded in position order');
    positions.push(position);
    values.push(this.liveCount);
  }

  /** Forgets count history before `horizon` except the entry in force at it. */
  pruneCounts(horizon: number): void {
    const { positions, values } = this.counts;
    const inForce = countIndexAt(positions, horizon);
    if (inForce <= 0) return;
    this.counts = { positions: positions.slice(inForce), values: values.slice(inForce) };
  }

  publish(): TableView {
    const indexes = new Map<string, readonly IndexSource[]>();
    for (const [name, list] of this.indexes) {
      indexes.set(name, list.map((index) => Object.freeze({
        name: index.name, layout: index.layout, createdAt: index.createdAt, droppedAt: index.droppedAt,
        tree: frozenClone(index.tree),
      })));
    }
    return new TableView(this, frozenClone(this.primary), indexes);
  }

  /** Rebuilds an incarnation from its versions in tree order (checkpoint restore). Index trees
   * and counts are derived: an index holds every version that overlaps its lifetime. */
  static fromVersions(name: string, layout: TableLayout, lifetime: Lifetime, versions: readonly Version[],
    indexes: ReadonlyMap<string, readonly (Lifetime & { readonly layout: IndexLayout })[]>): TableState {
    const table = new TableState(name, layout, lifetime.createdAt);
    table.droppedAt = lifetime.droppedAt;
    for (const version of versions) {
      const added = table.primary.set(entryKey(project(version.row, layout.primaryKey), version.createdAt), version, false);
      assert(added, 'restored versions are distinct');
      if (version.deletedAt === NEVER) table.liveCount += 1;
    }
    for (const [indexName, list] of indexes) {
      table.indexes.set(indexName, list.map((spec) => {
        const index = new IndexState(indexName, spec.layout, spec.createdAt);
        index.droppedAt = spec.droppedAt;
        for (const version of versions) {
          if (version.createdAt >= spec.droppedAt || version.deletedAt <= spec.createdAt) continue;
          index.tree.set(entryKey(indexEntryKey(version.row, spec.layout.columns, layout.primaryKey), version.createdAt), version);
        }
        return index;
      }));
    }
    table.counts = countsFromVersions(versions);
    return table;
  }
}

function countIndexAt(positions: readonly number[], position: number): number {
  let low = 0;
  let high = positions.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((positions[middle] as number) <= position) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

/** Row counts over time from versions: +1 at each createdAt, -1 at each deletedAt. Positions
 * whose changes cancel out get no entry, as `recordCount` skips unchanged counts. */
export function countsFromVersions(versions: readonly Version[]): CountHistory {
  const delta = new Map<number, number>();
  for (const version of versions) {
    delta.set(version.createdAt, (delta.get(version.createdAt) ?? 0) + 1);
    if (version.deletedAt !== NEVER) delta.set(version.deletedAt, (delta.get(version.deletedAt) ?? 0) - 1);
  }
  const positions = [...delta.keys()].sort((a, b) => a - b);
  const history: CountHistory = { positions: [], values: [] };
  let count = 0;
  for (const position of positions) {
    const change = delta.get(position) as number;
    if (change === 0) continue;
    count += change;
    history.positions.push(position);
    history.values.push(count);
  }
  return history;
}

function frozenClone(tree: VersionTree): VersionTree {
  const clone = tree.clone();
  clone.freeze();
  return clone;
}

/** An immutable published table incarnation: what snapshots read. */
export class TableView implements TableSource {
  readonly name: string;
  readonly layout: TableLayout;
  readonly createdAt: number;
  readonly droppedAt: number;
  readonly #counts: CountHistory;
  readonly #countsLength: number;

  constructor(state: TableState, readonly primary: VersionTree, readonly indexes: ReadonlyMap<string, readonly IndexSource[]>) {
    this.name = state.name;
    this.layout = state.layout;
    this.createdAt = state.createdAt;
    this.droppedAt = state.droppedAt;
    this.#counts = state.counts;
    this.#countsLength = state.counts.positions.length;
  }

  rowCountAt(position: number): number {
    return countAt(this.#counts, this.#countsLength, position);
  }
}
