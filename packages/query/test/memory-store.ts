import { assert, compareKeys, type IndexLayout, type Key, type KeyBound, type Row, type ScanOptions, type TableLayout, type TableWriter, type Value } from '@veritydb/types';

/** A small in-memory TableWriter for tests: sorted arrays, linear inserts. It asserts the
 * layout rules the real store asserts, so the executor's checks-before-writes are exercised. */
interface Table {
  layout: TableLayout;
  rows: Row[];
  indexes: Map<string, IndexLayout>;
}

function keyOf(row: Row, columns: readonly number[]): Key {
  return columns.map((c) => row[c] as Value);
}

function prefixCompare(key: Key, bound: KeyBound): number {
  return compareKeys(key.slice(0, bound.key.length), bound.key);
}

function inRange(key: Key, options: ScanOptions | undefined): boolean {
  const range = options?.range;
  if (range === undefined) return true;
  if (range.lower !== undefined) {
    const c = prefixCompare(key, range.lower);
    if (c < 0 || (c === 0 && !range.lower.inclusive)) return false;
  }
  if (range.upper !== undefined) {
    const c = prefixCompare(key, range.upper);
    if (c > 0 || (c === 0 && !range.upper.inclusive)) return false;
  }
  return true;
}

export class MemoryStore implements TableWriter {
  readonly tables = new Map<string, Table>();
  /** Rows read through scans and gets, to check early stops and index use. */
  rowsRead = 0;

  #table(name: string): Table {
    const t = this.tables.get(name);
    assert(t !== undefined, `table ${name} exists`);
    return t;
  }

  hasTable(table: string): boolean {
    return this.tables.has(table);
  }

  *scan(table: string, options?: ScanOptions): Iterable<Row> {
    const t = this.#table(table);
    const rows = t.rows.filter((r) => inRange(keyOf(r, t.layout.primaryKey), options));
    if (options?.reverse === true) rows.reverse();
    for (const r of rows) {
      this.rowsRead++;
      yield r;
    }
  }

  get(table: string, key: Key): Row | undefined {
    const t = this.#table(table);
    const row = t.rows.find((r) => compareKeys(keyOf(r, t.layout.primaryKey), key) === 0);
    if (row !== undefined) this.rowsRead++;
    return row;
  }

  *indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row> {
    const t = this.#table(table);
    const layout = t.indexes.get(index);
    assert(layout !== undefined, `index ${index} exists`);
    const rows = t.rows.filter((r) => inRange(keyOf(r, layout.columns), options));
    rows.sort((a, b) => compareKeys(keyOf(a, layout.columns), keyOf(b, layout.columns)) || compareKeys(keyOf(a, t.layout.primaryKey), keyOf(b, t.layout.primaryKey)));
    if (options?.reverse === true) rows.reverse();
    for (const r of rows) {
      this.rowsRead++;
      yield r;
    }
  }

  rowCount(table: string): number {
    return this.#table(table).rows.length;
  }

  createTable(table: string, layout: TableLayout): void {
    assert(!this.tables.has(table), `table ${table} is new`);
    this.tables.set(table, { layout, rows: [], indexes: new Map() });
  }

  dropTable(table: string): void {
    assert(this.tables.delete(table), `table ${table} existed`);
  }

  createIndex(table: string, index: string, layout: IndexLayout): void {
    const t = this.#table(table);
    assert(!t.indexes.has(index), `index ${index} is new`);
    t.indexes.set(index, layout);
    this.#checkUnique(t);
  }

  dropIndex(table: string, index: string): void {
    assert(this.#table(table).indexes.delete(index), `index ${index} existed`);
  }

  alterTable(table: string, layout: TableLayout, migrate: (row: Row) => Row): void {
    const t = this.#table(table);
    t.layout = layout;
    t.rows = t.rows.map(migrate);
    for (const r of t.rows) assert(r.length === layout.columnCount, 'migrated row has the new width');
  }

  insert(table: string, row: Row): void {
    const t = this.#table(table);
    assert(row.length === t.layout.columnCount, 'row width');
    const key = keyOf(row, t.layout.primaryKey);
    assert(this.get(table, key) === undefined, 'primary key is new');
    t.rows.push(row);
    t.rows.sort((a, b) => compareKeys(keyOf(a, t.layout.primaryKey), keyOf(b, t.layout.primaryKey)));
    this.#checkUnique(t);
  }

  update(table: string, key: Key, row: Row): void {
    const t = this.#table(table);
    const i = t.rows.findIndex((r) => compareKeys(keyOf(r, t.layout.primaryKey), key) === 0);
    assert(i >= 0, 'updated row exists');
    t.rows.splice(i, 1);
    this.insert(table, row);
  }

  delete(table: string, key: Key): void {
    const t = this.#table(table);
    const i = t.rows.findIndex((r) => compareKeys(keyOf(r, t.layout.primaryKey), key) === 0);
    assert(i >= 0, 'deleted row exists');
    t.rows.splice(i, 1);
  }

  #checkUnique(t: Table): void {
    for (const layout of t.indexes.values()) {
      if (!layout.unique) continue;
      const keys = t.rows.map((r) => keyOf(r, layout.columns)).filter((k) => k.every((v) => v !== null));
      keys.sort(compareKeys);
      for (let i = 1; i < keys.length; i++) assert(compareKeys(keys[i - 1] as Key, keys[i] as Key) !== 0, 'unique index holds');
    }
  }
}
