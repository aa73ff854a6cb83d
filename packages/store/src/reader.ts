import { assert, type Key, type KeyRange, type Position, type Row, type ScanOptions, type TableReader } from '@veritydb/types';
import { visibleIncarnation, type CatalogSource, type IndexSource, type TableSource } from './table.js';
import { countPrefix, scanTree, versionAt, type ScanCursor, type Version, type VersionTree } from './tree.js';

/**
 * The open write batch's registry of suspended scans over its live trees (see `ScanCursor`):
 * before the batch writes a tree, the scans open on it move to a clone of it.
 */
export class ScanGuard {
  /** Open scans: few at a time (nested lookups), so a list beats a map here. */
  readonly #open: { readonly tree: VersionTree; readonly cursor: ScanCursor }[] = [];

  open(tree: VersionTree): ScanCursor {
    const cursor: ScanCursor = { source: tree, moved: false };
    this.#open.push({ tree, cursor });
    return cursor;
  }

  close(cursor: ScanCursor): void {
    for (let i = this.#open.length - 1; i >= 0; i--) {
      if ((this.#open[i] as { cursor: ScanCursor }).cursor === cursor) {
        this.#open.splice(i, 1);
        return;
      }
    }
  }

  /** Call before every write to `tree`. */
  beforeWrite(tree: VersionTree): void {
    if (this.#open.length === 0) return;
    let frozen: VersionTree | undefined;
    for (let i = this.#open.length - 1; i >= 0; i--) {
      const open = this.#open[i] as { tree: VersionTree; cursor: ScanCursor };
      if (open.tree !== tree) continue;
      frozen ??= tree.clone();
      open.cursor.source = frozen;
      open.cursor.moved = true;
      // The clone is never written: its scan needs no more guarding.
      this.#open.splice(i, 1);
    }
  }
}

/**
 * A read view of one tenant's tables at one position: sees exactly the versions with
 * createdAt <= position < deletedAt of the table and index incarnations alive at position.
 * Snapshots read frozen published trees; the open write batch reads the applier's trees and
 * clones one (O(1)) before iterating it, so the batch may write while a scan is in progress.
 *
 * @example
 *   const reader = store.snapshotAt(tenant, position(12));
 *   for (const row of reader.scan('patients', { range: { lower: { key: [17], inclusive: true } } })) …
 */
export class Reader implements TableReader {
  readonly #catalog: CatalogSource;
  readonly #isolateScans: boolean;
  readonly #guard: ScanGuard | undefined;

  /** `isolateScans`: the trees may be written while a scan is suspended, so scans must read
   * them as of their start — through `guard` when the writer reports its writes to one, else
   * by cloning each tree up front. */
  constructor(catalog: CatalogSource, readonly position: Position, isolateScans: boolean, guard?: ScanGuard) {
    this.#catalog = catalog;
    this.#isolateScans = isolateScans;
    this.#guard = guard;
  }

  hasTable(table: string): boolean {
    return visibleIncarnation(this.#catalog.get(table), this.position) !== undefined;
  }

  scan(table: string, options?: ScanOptions): Iterable<Row> {
    const source = this.table(table);
    checkRange(options?.range, source.layout.primaryKey.length);
    return this.#scan(source.primary, options);
  }

  get(table: string, key: Key): Row | undefined {
    const source = this.table(table);
    if (key.length !== source.layout.primaryKey.length) {
      assert(false, `get on ${table} needs a key of ${source.layout.primaryKey.length} values, got ${key.length}`);
    }
    return versionAt(source.primary, key, this.position)?.row;
  }

  indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row> {
    const source = this.table(table);
    const found = this.index(source, index);
    checkRange(options?.range, found.layout.columns.length);
    return this.#scan(found.tree, options);
  }

  rowCount(table: string): number {
    return this.table(table).rowCountAt(this.position);
  }

  /** How many rows of `table` have `prefix` as the leading values of index `index`, counting
   * no further than `limit` (cheaper than an `indexScan` for "none, one or more?"). */
  indexCount(table: string, index: string, prefix: Key, limit: number): number {
    const found = this.index(this.table(table), index);
    if (prefix.length > found.layout.columns.length) assert(false, `a prefix of ${prefix.length} values on an index of ${found.layout.columns.length}`);
    return countPrefix(found.tree, this.position, prefix, limit);
  }

  /** Whether `table` has an index `index` at this position (the contract leaves this to the
   * caller's catalog; tests and tools use it). */
  hasIndex(table: string, index: string): boolean {
    const source = visibleIncarnation(this.#catalog.get(table), this.position);
    return source !== undefined && visibleIncarnation(source.indexes.get(index), this.position) !== undefined;
  }

  /** The table incarnation visible here; unknown tables are the caller's bug. */
  protected table(table: string): TableSource {
    const source = visibleIncarnation(this.#catalog.get(table), this.position);
    // Hot paths test before building an assertion's message (JSON.stringify on every call).
    if (source === undefined) assert(false, `unknown table ${JSON.stringify(table)} at position ${this.position}`);
    return source;
  }

  private index(source: TableSource, index: string): IndexSource {
    const found = visibleIncarnation(source.indexes.get(index), this.position);
    if (found === undefined) assert(false, `unknown index ${JSON.stringify(index)} on ${JSON.stringify(source.name)} at position ${this.position}`);
    return found;
  }

  #scan(tree: VersionTree, options: ScanOptions | undefined): Iterable<Row> {
    const reverse = options?.reverse === true;
    if (!this.#isolateScans) return rows(scanTree(tree, this.position, options?.range, reverse));
    if (this.#guard === undefined) return rows(scanTree(tree.clone(), this.position, options?.range, reverse));
    return guardedRows(this.#guard, tree, this.position, options?.range, reverse);
  }
}

function checkRange(range: KeyRange | undefined, keyLength: number): void {
  if (range === undefined) return;
  for (const bound of [range.lower, range.upper]) {
    if (bound === undefined) continue;
    if (bound.key.length > keyLength) assert(false, `a bound of ${bound.key.length} values on a key of ${keyLength}`);
  }
}

function* rows(versions: Iterable<Version>): Generator<Row> {
  for (const version of versions) yield version.row;
}

/** Registers the scan at the call, as a scan reads the tree as of its call; unregisters it when
 * it ends or is abandoned (`return()` from `break`). One never iterated stays registered until
 * the next write to its tree moves it to a clone. */
function guardedRows(guard: ScanGuard, tree: VersionTree, position: number, range: KeyRange | undefined, reverse: boolean): Iterable<Row> {
  const cursor = guard.open(tree);
  return (function* () {
    try {
      for (const version of scanTree(tree, position, range, reverse, cursor)) yield version.row;
    } finally {
      guard.close(cursor);
    }
  })();
}
