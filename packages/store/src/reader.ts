import { assert, type Key, type KeyRange, type Position, type Row, type ScanOptions, type TableReader } from '@veritydb/types';
import { visibleIncarnation, type CatalogSource, type IndexSource, type TableSource } from './table.js';
import { scanTree, versionAt, type Version, type VersionTree } from './tree.js';

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

  constructor(catalog: CatalogSource, readonly position: Position, isolateScans: boolean) {
    this.#catalog = catalog;
    this.#isolateScans = isolateScans;
  }

  hasTable(table: string): boolean {
    return visibleIncarnation(this.#catalog.get(table), this.position) !== undefined;
  }

  scan(table: string, options?: ScanOptions): Iterable<Row> {
    const source = this.table(table);
    checkRange(options?.range, source.layout.primaryKey.length);
    return rows(scanTree(this.#iterable(source.primary), this.position, options?.range, options?.reverse === true));
  }

  get(table: string, key: Key): Row | undefined {
    const source = this.table(table);
    assert(key.length === source.layout.primaryKey.length,
      `get on ${table} needs a key of ${source.layout.primaryKey.length} values, got ${key.length}`);
    return versionAt(source.primary, key, this.position)?.row;
  }

  indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row> {
    const source = this.table(table);
    const found = this.index(source, index);
    checkRange(options?.range, found.layout.columns.length);
    return rows(scanTree(this.#iterable(found.tree), this.position, options?.range, options?.reverse === true));
  }

  rowCount(table: string): number {
    return this.table(table).rowCountAt(this.position);
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
    assert(source !== undefined, `unknown table ${JSON.stringify(table)} at position ${this.position}`);
    return source;
  }

  private index(source: TableSource, index: string): IndexSource {
    const found = visibleIncarnation(source.indexes.get(index), this.position);
    assert(found !== undefined, `unknown index ${JSON.stringify(index)} on ${JSON.stringify(source.name)} at position ${this.position}`);
    return found;
  }

  #iterable(tree: VersionTree): VersionTree {
    return this.#isolateScans ? tree.clone() : tree;
  }
}

function checkRange(range: KeyRange | undefined, keyLength: number): void {
  if (range === undefined) return;
  for (const bound of [range.lower, range.upper]) {
    if (bound === undefined) continue;
    assert(bound.key.length <= keyLength, `a bound of ${bound.key.length} values on a key of ${keyLength}`);
  }
}

function* rows(versions: Iterable<Version>): Generator<Row> {
  for (const version of versions) yield version.row;
}
