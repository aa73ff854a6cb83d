import {
  assert, type IndexLayout, type Key, type Position, type Row, type ScanOptions, type TableLayout, type TableWriter, type Value,
} from '@veritydb/types';
import { Reader, ScanGuard } from './reader.js';
import { checkIndexLayout, checkTableLayout, IndexState, TableState, visibleIncarnation, type Lifetime } from './table.js';
import {
  compareKeyValues, countPrefixAt, entryKey, indexEntryKey, insertAt, liveVersion, liveWithPrefix, NEVER, project, replaceBefore, sameKey, seek, seekEnd, TreeCursor,
  type TreeKey, type Version, type VersionTree,
} from './tree.js';

/** What a batch needs from its tenant: the applier's catalog, and the hook that ends it. */
export interface BatchHost {
  readonly tables: Map<string, TableState[]>;
  finish(batch: WriteBatch, committed: boolean): void;
}

type BatchState = 'open' | 'committed' | 'aborted';

/**
 * The writes of one log entry for one tenant at one position. Writes go straight into the
 * applier's trees with an undo record each, so the batch's own reads see them at once and
 * `abort()` rolls them back. Snapshots read frozen O(1) clones of those trees, taken when a
 * reader asks after a commit, and filter versions by position, so a batch's writes (stamped with
 * its position) stay invisible to them until it commits.
 *
 * @example
 *   const batch = store.begin(tenant, position(7));
 *   batch.createTable('p', { primaryKey: [0], columnCount: 2 });
 *   batch.insert('p', [1n, 'Ann']);
 *   batch.commit();
 */
export class WriteBatch implements TableWriter {
  readonly #host: BatchHost;
  readonly #reader: Reader;
  /** Scans of this batch's reads that are suspended over the trees it writes. */
  readonly #scans = new ScanGuard();
  /** What `abort()` reverts, newest last: a function, or (for the row writes, which are most of
   * them) a version added or ended, recorded without allocating a closure. */
  readonly #undo: Undo[] = [];
  readonly #dirty = new Set<TableState>();
  #state: BatchState = 'open';
  /** Whether this batch added or ended a table or index incarnation (DDL). */
  #lifetimesChanged = false;
  /** What the last `get` found, so a write of that key right after skips a second lookup: an
   * update or delete of the row it returned (the read-modify-write of projection state, a
   * delete that reads its before-image), an insert of the key it did not find (INSERT checks
   * for a conflict first). Valid while its table's primary tree is unchanged (`primaryWrites`). */
  readonly #lastRead: LastRead = { state: undefined, version: undefined, absent: undefined, writes: 0, cursor: new TreeCursor() };
  /** Where an insert that no `get` prepared looks for its key (and then writes it). */
  readonly #insertCursor = new TreeCursor();
  /** Per live index of the last row added: where its entry went, left on it until that index
   * tree is next written (`#beforeWrite`), so `indexCount` of the new row's prefix (a LEFT
   * JOIN's "was this the first match?") reads the leaf just written instead of descending. */
  readonly #indexCursors: TreeCursor[] = [];

  constructor(host: BatchHost, readonly position: Position) {
    this.#host = host;
    this.#reader = new Reader(host.tables, position, true, this.#scans);
  }

  get state(): BatchState {
    return this.#state;
  }

  /** Whether this batch created or dropped a table or index: only then can an incarnation
   * list have become empty (the tenant compacts its catalog after such batches only). */
  get lifetimesChanged(): boolean {
    return this.#lifetimesChanged;
  }

  hasTable(table: string): boolean {
    this.#checkOpen();
    return this.#reader.hasTable(table);
  }
  scan(table: string, options?: ScanOptions): Iterable<Row> {
    this.#checkOpen();
    return this.#reader.scan(table, options);
  }
  get(table: string, key: Key): Row | undefined {
    this.#checkOpen();
    const state = visibleIncarnation(this.#host.tables.get(table), this.position);
    // Hot paths test before building an assertion's message (JSON.stringify on every call).
    if (state === undefined) assert(false, `unknown table ${JSON.stringify(table)} at position ${this.position}`);
    if (key.length !== state.layout.primaryKey.length) {
      assert(false, `get on ${table} needs a key of ${state.layout.primaryKey.length} values, got ${key.length}`);
    }
    // The version visible here is the last one at or before (key, position); the cursor keeps
    // its place for a write of this key right after (see #lastRead).
    const read = this.#lastRead;
    const cursor = read.cursor;
    seek(state.primary, entryKey(key, this.position), cursor);
    const before = cursor.beforeKey;
    const version = before !== undefined && sameKey(before.key, key) && this.position < (cursor.beforeVersion as Version).deletedAt
      ? cursor.beforeVersion : undefined;
    read.state = state;
    read.version = version;
    read.absent = version === undefined ? key.slice() : undefined;
    read.writes = state.primaryWrites;
    return version?.row;
  }
  indexScan(table: string, index: string, options?: ScanOptions): Iterable<Row> {
    this.#checkOpen();
    return this.#reader.indexScan(table, index, options);
  }
  rowCount(table: string): number {
    this.#checkOpen();
    return this.#reader.rowCount(table);
  }
  indexCount(table: string, index: string, prefix: Key, limit: number): number {
    this.#checkOpen();
    const state = visibleIncarnation(this.#host.tables.get(table), this.position);
    const found = state === undefined ? undefined : visibleIncarnation(state.indexes.get(index), this.position);
    if (found !== undefined && prefix.length <= found.layout.columns.length) {
      for (const cursor of this.#indexCursors) {
        if (cursor.tree !== found.tree) continue;
        const n = countPrefixAt(found.tree, cursor, this.position, prefix, limit);
        if (n !== undefined) return n;
      }
    }
    return this.#reader.indexCount(table, index, prefix, limit);
  }
  hasIndex(table: string, index: string): boolean {
    this.#checkOpen();
    return this.#reader.hasIndex(table, index);
  }

  createTable(table: string, layout: TableLayout): void {
    this.#checkOpen();
    assert(!this.#reader.hasTable(table), `table ${JSON.stringify(table)} already exists`);
    this.#addTable(new TableState(table, checkTableLayout(layout), this.position));
  }

  dropTable(table: string): void {
    this.#endTable(this.#liveTable(table));
  }

  createIndex(table: string, index: string, layout: IndexLayout): void {
    const state = this.#liveTable(table);
    assert(visibleIncarnation(state.indexes.get(index), this.position) === undefined,
      `index ${JSON.stringify(index)} on ${JSON.stringify(table)} already exists`);
    const created = new IndexState(index, checkIndexLayout(layout, state.layout.columnCount), this.position);
    for (const [, version] of state.primary.entries()) {
      if (version.deletedAt !== NEVER) continue;
      if (created.layout.unique) this.#checkUnique(created, version.row, undefined, state);
      created.tree.set(entryKey(indexEntryKey(version.row, created.layout.columns, state.layout.primaryKey), version.createdAt), version);
    }
    this.#addLifetime(state.indexes, index, created, state);
    this.#dirty.add(state);
  }

  dropIndex(table: string, index: string): void {
    const state = this.#liveTable(table);
    const found = visibleIncarnation(state.indexes.get(index), this.position);
    assert(found !== undefined, `unknown index ${JSON.stringify(index)} on ${JSON.stringify(table)}`);
    if (found.createdAt !== this.position) this.#forgetBatchEntries(found.tree, false);
    this.#endLifetime(state.indexes, index, found, state);
    this.#dirty.add(state);
  }

  alterTable(table: string, layout: TableLayout, migrate: (row: Row) => Row): void {
    const old = this.#liveTable(table);
    const next = new TableState(table, checkTableLayout(layout), this.position);
    for (const index of old.liveIndexes()) {
      next.indexes.set(index.name, [new IndexState(index.name, checkIndexLayout(index.layout, next.layout.columnCount), this.position)]);
    }
    const rows: Row[] = [];
    for (const [, version] of old.primary.entries()) if (version.deletedAt === NEVER) rows.push(version.row);
    this.#endTable(old);
    this.#addTable(next);
    for (const row of rows) this.#insertInto(next, migrate(row));
  }

  insert(table: string, row: Row): void {
    this.#insertInto(this.#liveTable(table), row);
  }

  update(table: string, key: Key, row: Row): void {
    const state = this.#liveTable(table);
    const read = this.#justRead(state, key);
    const current = read ?? this.#liveRow(state, key);
    this.#checkRow(state, row);
    const newKey = project(row, state.layout.primaryKey);
    const samePlace = sameKey(newKey, key);
    if (!samePlace && liveVersion(state.primary, newKey) !== undefined) {
      assert(false, `update of ${JSON.stringify(table)} moves a row onto an existing primary key`);
    }
    for (const index of state.liveIndexes()) if (index.layout.unique) this.#checkUnique(index, row, key, state);
    // The read left the cursor at (key, this position): just after the live version, where the
    // new one goes. Ending the old one in place keeps the cursor valid for that insert.
    const cursor = read !== undefined && samePlace ? this.#lastRead.cursor : undefined;
    const endedInPlace = this.#endVersion(state, current, cursor);
    if (!endedInPlace) {
      this.#addVersion(state, row, newKey);
      return;
    }
    // The new version's tree key shares the ended one's key tuple when its values are the very
    // same (tuples are immutable): one array fewer kept per version of a row updated in place,
    // as every projection group is. (`samePlace` compares by SQL order, under which 0 = -0.)
    const ended = ((cursor as TreeCursor).beforeKey as TreeKey).key;
    this.#addVersion(state, row, identicalValues(ended, newKey) ? ended : newKey, cursor);
  }

  delete(table: string, key: Key): void {
    const state = this.#liveTable(table);
    const read = this.#justRead(state, key);
    this.#endVersion(state, read ?? this.#liveRow(state, key), read === undefined ? undefined : this.#lastRead.cursor);
  }

  /** Makes the writes visible to snapshots at this position. */
  commit(): void {
    this.#checkOpen();
    for (const table of this.#dirty) {
      table.recordCount(this.position);
      table.view = undefined;
    }
    this.#state = 'committed';
    this.#host.finish(this, true);
  }

  /** Discards every write of this batch, as if it had never begun. */
  abort(): void {
    this.#checkOpen();
    for (let i = this.#undo.length - 1; i >= 0; i--) {
      const undo = this.#undo[i] as Undo;
      if (typeof undo === 'function') undo();
      else if (undo.added) this.#unadd(undo);
      else this.#unend(undo);
    }
    // A view built while this batch was open holds its writes: never reuse it.
    for (const table of this.#dirty) table.view = undefined;
    this.#state = 'aborted';
    this.#host.finish(this, false);
  }

  #checkOpen(): void {
    if (this.#state !== 'open') assert(false, `write batch at ${this.position} is ${this.#state}`);
  }

  #liveTable(table: string): TableState {
    this.#checkOpen();
    const state = visibleIncarnation(this.#host.tables.get(table), this.position);
    if (state === undefined) assert(false, `unknown table ${JSON.stringify(table)}`);
    return state;
  }

  /** The live version of `key` if `get` just returned it and its table has not been written
   * since (so it is still the live version). */
  #justRead(state: TableState, key: Key): Version | undefined {
    const read = this.#lastRead;
    if (read.version === undefined || read.state !== state || read.writes !== state.primaryWrites) return undefined;
    if (!rowHasKey(read.version.row, state.layout.primaryKey, key)) return undefined;
    assert(read.version.deletedAt === NEVER, 'a row read in this batch, with its table unchanged since, is live');
    return read.version;
  }

  /** Whether `get` just looked for `key` and found no row, with its table unwritten since. */
  #justMissed(state: TableState, key: Key): boolean {
    const read = this.#lastRead;
    return read.absent !== undefined && read.state === state && read.writes === state.primaryWrites && sameKey(read.absent, key);
  }

  #liveRow(state: TableState, key: Key): Version {
    if (key.length !== state.layout.primaryKey.length) {
      assert(false, `key of ${key.length} values for a primary key of ${state.layout.primaryKey.length}`);
    }
    const version = liveVersion(state.primary, key);
    if (version === undefined) assert(false, `no row with this primary key in ${JSON.stringify(state.name)}`);
    return version;
  }

  #checkRow(state: TableState, row: Row): void {
    if (!Array.isArray(row) || row.length !== state.layout.columnCount) {
      assert(false, `row of ${row.length} values for ${JSON.stringify(state.name)} with ${state.layout.columnCount} columns`);
    }
    for (let i = 0; i < row.length; i++) assert(row[i] !== undefined, 'undefined is not a SQL value');
  }

  /** SQL unique indexes let rows share a key that contains NULL (NULL equals nothing). */
  #checkUnique(index: IndexState, row: Row, ownKey: Key | undefined, state: TableState): void {
    const key = project(row, index.layout.columns);
    if (key.some((value: Value) => value === null)) return;
    for (const other of liveWithPrefix(index.tree, key)) {
      assert(ownKey !== undefined && sameKey(project(other.row, state.layout.primaryKey), ownKey),
        `duplicate key in unique index ${JSON.stringify(index.name)} on ${JSON.stringify(state.name)}`);
    }
  }

  /** The duplicate check finds the key's place: a `get` that just missed it left a cursor
   * there, a key after the tree's last goes at the end (no comparisons on the way down), and
   * any other key is looked up once, the same descent serving the check and the write. */
  #insertInto(state: TableState, row: Row): void {
    this.#checkRow(state, row);
    const key = project(row, state.layout.primaryKey);
    let cursor: TreeCursor;
    if (this.#justMissed(state, key)) {
      cursor = this.#lastRead.cursor;
    } else if (afterLastKey(state.primary, key)) {
      cursor = this.#insertCursor;
      seekEnd(state.primary, cursor);
    } else {
      cursor = this.#insertCursor;
      seek(state.primary, entryKey(key, this.position), cursor);
      const before = cursor.beforeKey;
      if (before !== undefined && sameKey(before.key, key) && (cursor.beforeVersion as Version).deletedAt === NEVER) {
        assert(false, `duplicate primary key in ${JSON.stringify(state.name)}`);
      }
    }
    for (const index of state.liveIndexes()) if (index.layout.unique) this.#checkUnique(index, row, undefined, state);
    this.#addVersion(state, row, key, cursor);
  }

  /** Adds a live version of `row` (primary key `key`), at `cursor` when one is positioned at
   * (key, this position) over an unchanged tree. */
  #addVersion(state: TableState, row: Row, key: Key, cursor?: TreeCursor): void {
    // A frozen row cannot change under the store: share it rather than copy it.
    const stored = Object.isFrozen(row) ? row : Object.freeze(row.slice());
    const version: Version = Object.freeze({ createdAt: this.position, deletedAt: NEVER, row: stored });
    const indexes = state.liveIndexes();
    // A row that is all key (projection state) is its own key: one array, not two.
    const primaryKey = entryKey(state.keyIsRow ? stored : key, this.position);
    this.#beforeWrite(state.primary);
    if (cursor === undefined || !insertAt(state.primary, cursor, primaryKey, version)) {
      assert(state.primary.set(primaryKey, version, false), 'a new version has a fresh tree key');
    }
    for (let i = 0; i < indexes.length; i++) this.#addIndexEntry(indexes[i] as IndexState, i, indexTreeKey(state, indexes[i] as IndexState, version), version);
    state.liveCount += 1;
    state.primaryWrites += 1;
    this.#dirty.add(state);
    this.#undo.push({ added: true, state, version, indexes });
  }

  /** Writes an index entry with one descent (sorted-btree's `set` when the leaf is full or
   * shared), leaving cursor `slot` on it. */
  #addIndexEntry(index: IndexState, slot: number, key: TreeKey, version: Version): void {
    this.#beforeWrite(index.tree);
    let cursor = this.#indexCursors[slot];
    if (cursor === undefined) {
      cursor = new TreeCursor();
      this.#indexCursors[slot] = cursor;
    }
    seek(index.tree, key, cursor);
    if (cursor.found) assert(false, 'a new version has a fresh index key');
    if (!insertAt(index.tree, cursor, key, version)) assert(index.tree.set(key, version, false), 'a new version has a fresh index key');
  }

  /** Call before every write to a tree of this batch: moves suspended scans of it to a clone,
   * and retires the index cursors on it. */
  #beforeWrite(tree: VersionTree): void {
    this.#scans.beforeWrite(tree);
    for (const cursor of this.#indexCursors) if (cursor.tree === tree) cursor.tree = undefined;
  }

  #unadd({ state, version, indexes }: RowUndo): void {
    this.#beforeWrite(state.primary);
    assert(state.primary.delete(entryKey(project(version.row, state.layout.primaryKey), version.createdAt)), 'undo removes the version it added');
    for (const index of indexes) {
      this.#beforeWrite(index.tree);
      assert(index.tree.delete(indexTreeKey(state, index, version)), 'undo removes the index entry it added');
    }
    state.liveCount -= 1;
    state.primaryWrites += 1;
  }

  /** Ends a live version at this position. An entry that would then cover no position of its
   * tree (the version, or the index, was created by this batch) is removed outright, so history
   * never depends on how writes were batched. With `cursor` (a `get` of the version's key just
   * left it there) the primary entry is ended in place when it can be; returns whether it was,
   * which leaves the cursor valid for an insert of the key's next version. */
  #endVersion(state: TableState, version: Version, cursor?: TreeCursor): boolean {
    const indexes = state.liveIndexes();
    const ended: Version = Object.freeze({ createdAt: version.createdAt, deletedAt: this.position, row: version.row });
    this.#beforeWrite(state.primary);
    // A version of this batch is removed, not ended: that changes the tree's shape, left to sorted-btree.
    const inPlace = cursor !== undefined && version.createdAt !== this.position && replaceBefore(state.primary, cursor, version, ended);
    if (!inPlace) {
      const primaryKey = entryKey(project(version.row, state.layout.primaryKey), version.createdAt);
      this.#endEntry(state.primary, primaryKey, version, ended, state.createdAt);
    }
    for (const index of indexes) this.#endEntry(index.tree, indexTreeKey(state, index, version), version, ended, index.createdAt);
    state.liveCount -= 1;
    state.primaryWrites += 1;
    this.#dirty.add(state);
    this.#undo.push({ added: false, state, version, indexes });
    return inPlace;
  }

  /** Puts back the version an `#endVersion` ended or removed. */
  #unend({ state, version, indexes }: RowUndo): void {
    this.#beforeWrite(state.primary);
    state.primary.set(entryKey(project(version.row, state.layout.primaryKey), version.createdAt), version, true);
    for (const index of indexes) {
      this.#beforeWrite(index.tree);
      index.tree.set(indexTreeKey(state, index, version), version, true);
    }
    state.liveCount += 1;
    state.primaryWrites += 1;
  }

  /** Ends `version`'s entry `key` in a tree that exists since `since`. */
  #endEntry(tree: VersionTree, key: TreeKey, version: Version, ended: Version, since: number): void {
    this.#beforeWrite(tree);
    if (version.createdAt === this.position || since === this.position) assert(tree.delete(key), 'the entry to remove is present');
    else assert(!tree.set(key, ended, true), 'the entry to end is present');
  }

  #addTable(table: TableState): void {
    this.#addLifetime(this.#host.tables, table.name, table);
    this.#dirty.add(table);
  }

  /** A table dropped (or altered) at this position keeps, as its last state, the rows it had
   * before this batch: writes of this batch to it could never be seen, and keeping them would
   * make history depend on batching. Costs a pass over the table. */
  #endTable(table: TableState): void {
    if (table.createdAt !== this.position) {
      for (const [name, list] of table.indexes) {
        const last = list[list.length - 1];
        if (last !== undefined && last.createdAt === this.position) this.#endLifetime(table.indexes, name, last, table);
      }
      this.#forgetBatchEntries(table.primary, true);
      table.primaryWrites += 1;
      for (const index of table.liveIndexes()) this.#forgetBatchEntries(index.tree, true);
      const before = table.liveCount;
      let live = 0;
      for (const [, version] of table.primary.entries()) if (version.deletedAt === NEVER) live += 1;
      table.liveCount = live;
      this.#undo.push(() => {
        table.liveCount = before;
      });
    }
    this.#endLifetime(this.#host.tables, table.name, table);
    this.#dirty.add(table);
  }

  /** Removes the entries this batch created in `tree` and, if `revive`, un-ends those it ended. */
  #forgetBatchEntries(tree: VersionTree, revive: boolean): void {
    const changes: [TreeKey, Version, Version | undefined][] = [];
    for (const [key, version] of tree.entries()) {
      if (version.createdAt === this.position) changes.push([key, version, undefined]);
      else if (revive && version.deletedAt === this.position) {
        changes.push([key, version, Object.freeze({ createdAt: version.createdAt, deletedAt: NEVER, row: version.row })]);
      }
    }
    this.#beforeWrite(tree);
    for (const [key, , replacement] of changes) {
      if (replacement === undefined) tree.delete(key);
      else tree.set(key, replacement, true);
    }
    this.#undo.push(() => {
      this.#beforeWrite(tree);
      for (const [key, original] of changes) tree.set(key, original, true);
    });
  }

  /** Incarnation lists are never removed while a batch is open (undo relies on them staying
   * put); the tenant drops empty ones when it publishes. */
  #addLifetime<T extends Lifetime>(map: Map<string, T[]>, name: string, item: T, owner?: TableState): void {
    this.#lifetimesChanged = true;
    let list = map.get(name);
    if (list === undefined) {
      list = [];
      map.set(name, list);
    }
    const at = list;
    const previous = at[at.length - 1];
    assert(previous === undefined || previous.droppedAt <= item.createdAt, 'incarnations do not overlap');
    at.push(item);
    owner?.indexesChanged();
    this.#undo.push(() => {
      assert(at.pop() === item, 'undo removes the incarnation it added');
      owner?.indexesChanged();
    });
  }

  /** Drops an incarnation at this position; one created by this batch disappears entirely. */
  #endLifetime<T extends Lifetime & { droppedAt: number }>(map: Map<string, T[]>, name: string, item: T, owner?: TableState): void {
    this.#lifetimesChanged = true;
    const list = map.get(name);
    assert(list !== undefined && list[list.length - 1] === item, 'only the newest incarnation is live');
    if (item.createdAt === this.position) {
      list.pop();
      this.#undo.push(() => {
        list.push(item);
        owner?.indexesChanged();
      });
    } else {
      item.droppedAt = this.position;
      this.#undo.push(() => {
        item.droppedAt = NEVER;
        owner?.indexesChanged();
      });
    }
    owner?.indexesChanged();
  }
}

/** Whether `a` and `b` hold the same values by `Object.is` (not merely equal in SQL order). */
function identicalValues(a: Key, b: Key): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function indexTreeKey(state: TableState, index: IndexState, version: Version): TreeKey {
  return entryKey(indexEntryKey(version.row, index.layout.columns, state.layout.primaryKey), version.createdAt);
}

/** A version this batch added (`added`) or ended, and the live indexes it was written to. */
interface RowUndo {
  readonly added: boolean;
  readonly state: TableState;
  readonly version: Version;
  readonly indexes: readonly IndexState[];
}

type Undo = (() => void) | RowUndo;

/** Reused by every `get` (no allocation on the read path). */
interface LastRead {
  state: TableState | undefined;
  version: Version | undefined;
  /** A copy of the key looked up, when no row had it. */
  absent: Key | undefined;
  writes: number;
  /** Where the lookup left off: (key, the batch's position) in the primary tree. */
  readonly cursor: TreeCursor;
}

/** Whether `row`'s primary-key columns hold `key` (compared as the trees compare keys). */
function rowHasKey(row: Row, primaryKey: readonly number[], key: Key): boolean {
  if (key.length !== primaryKey.length) return false;
  for (let i = 0; i < key.length; i++) if (compareKeyValues(row[primaryKey[i] as number] as Value, key[i] as Value) !== 0) return false;
  return true;
}

/** Whether `key` sorts after every key in `tree` (so no version of it exists): an O(1) check
 * that spares appends (`__events`, rising ids) the duplicate lookup. */
function afterLastKey(tree: VersionTree, key: Key): boolean {
  const last = tree.maxKey();
  if (last === undefined) return true;
  const n = Math.min(key.length, last.key.length);
  for (let i = 0; i < n; i++) {
    const c = compareKeyValues(key[i] as Value, last.key[i] as Value);
    if (c !== 0) return c > 0;
  }
  return false;
}
