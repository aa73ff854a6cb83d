import type { Key, Row } from './value.js';

/**
 * The contract between the SQL layer (`query`, `kernel`) and the MVCC projection store
 * (`store`). Both sides import these types; neither imports the other.
 *
 * Tables are addressed by name within one tenant's view. Rows are arrays in the table's
 * column order. A table's primary key is a tuple of columns; secondary indexes are tuples too.
 */

/** One end of a key range. Bounds compare against the key's prefix of the bound's length, so a
 * bound on the first column of a composite key selects every key that starts with it. */
export interface KeyBound {
  readonly key: Key;
  readonly inclusive: boolean;
}

export interface KeyRange {
  readonly lower?: KeyBound;
  readonly upper?: KeyBound;
}

export interface ScanOptions {
  readonly range?: KeyRange;
  /** Descending key order. */
  readonly reverse?: boolean;
}

export interface TableLayout {
  /** Column positions of the primary key, in key order. */
  readonly primaryKey: readonly number[];
  /** Number of columns a row of this table has. */
  readonly columnCount: number;
}

export interface IndexLayout {
  /** Column positions of the index key, in key order. */
  readonly columns: readonly number[];
  readonly unique: boolean;
}

/** A consistent read view of one tenant's tables (a snapshot at a position, or a write batch
 * that sees its own pending writes). Iterables are lazy: stopping early costs nothing more. */
export interface TableReader {
  hasTable(table: string): boolean;
  /** Rows in primary-key order. */
  scan(table: string, options?: ScanOptions): Iterable<Row>;
  /** The row with this primary key, if present. */
  get(table: string, key: Key): Row | undefined;
  /** Rows in index-key order (ties in primary-key order). */
  indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row>;
  /** Live rows in the table. */
  rowCount(table: string): number;
}

/** Writes of one log entry for one tenant. Writes are visible to this writer's reads at once,
 * and to snapshots only after the store commits the batch. Violating a layout (duplicate
 * primary key, duplicate unique-index key, wrong column count, missing table) is a bug in the
 * caller: it checks first, with the reads above, and the store asserts. */
export interface TableWriter extends TableReader {
  createTable(table: string, layout: TableLayout): void;
  dropTable(table: string): void;
  createIndex(table: string, index: string, layout: IndexLayout): void;
  dropIndex(table: string, index: string): void;
  /** Rewrites every row through `migrate` (ALTER TABLE ADD/DROP COLUMN), with a new layout. */
  alterTable(table: string, layout: TableLayout, migrate: (row: Row) => Row): void;
  insert(table: string, row: Row): void;
  /** Replaces the row whose primary key is `key` (the new row may have a different key). */
  update(table: string, key: Key, row: Row): void;
  delete(table: string, key: Key): void;
}
