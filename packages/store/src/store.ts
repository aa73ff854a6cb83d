import { blake3 } from '@noble/hashes/blake3.js';
import {
  assert, compareKeys, position as toPosition, tenantId as toTenantId, type Position, type TenantId, type Value,
} from '@veritydb/types';
import { WriteBatch, type BatchHost } from './batch.js';
import { ByteReader, ByteWriter, DecodeError } from './codec.js';
import { Reader } from './reader.js';
import { decodeState, encodeState } from './state.js';
import { TableState, countsFromVersions, type TableView } from './table.js';
import { checkTreeStructure, indexEntryKey, NEVER, project, type Version } from './tree.js';

/**
 * BLAKE3-256 of a whole checkpoint body. The default is the portable reference
 * (`@noble/hashes`); a runtime passes its WebAssembly build (same digests, several times faster:
 * hashing was about half of a checkpoint's CPU).
 */
export type CheckpointHash = (bytes: Uint8Array) => Uint8Array;

function referenceHash(bytes: Uint8Array): Uint8Array {
  return blake3(bytes);
}

const CHECKPOINT_MAGIC = new Uint8Array([0x56, 0x44, 0x42, 0x53, 0x54, 0x4f, 0x52, 0x45]); // "VDBSTORE"
/** Bumped whenever the checkpoint layout or the hashed state encoding changes. */
export const CHECKPOINT_FORMAT_VERSION = 1;
const CHECKSUM_BYTES = 32;
/** Domain separation, so a state hash is never mistaken for another BLAKE3 digest. */
const STATE_HASH_DOMAIN = 'veritydb.store.state.v1';

/** A read view at one position. `position` is the position it reads at. */
export type Snapshot = Reader;

export type RestoreResult =
  | { readonly ok: true; readonly store: Store; readonly extra: Uint8Array }
  | { readonly ok: false; readonly reason: string };

class Tenant implements BatchHost {
  readonly tables = new Map<string, TableState[]>();
  #published: ReadonlyMap<string, readonly TableView[]> = new Map();
  /** Whether anything changed since `#published` was built. Views are built when a reader asks,
   * not at every commit: an applier running ahead of its readers clones nothing, and the
   * copy-on-write cost of a clone is only paid when a snapshot actually holds one. */
  #stale = true;
  #finish: (batch: WriteBatch, committed: boolean) => void;

  constructor(readonly id: TenantId, finish: (batch: WriteBatch, committed: boolean) => void) {
    this.#finish = finish;
  }

  finish(batch: WriteBatch, committed: boolean): void {
    // Lists empty only when an incarnation is removed (DDL, or the undo of DDL): row writes
    // never change them, so most batches skip the pass over the catalog.
    if (batch.lifetimesChanged) this.compact();
    this.#stale = true;
    this.#finish(batch, committed);
  }

  /** Marks the views out of date (prune). */
  invalidate(): void {
    this.#stale = true;
  }

  /** Drops empty incarnation lists. Never while a batch is open: its undo relies on them. */
  compact(): void {
    for (const [name, list] of this.tables) {
      if (list.length === 0) {
        this.tables.delete(name);
        continue;
      }
      for (const table of list) {
        for (const [indexName, indexes] of table.indexes) if (indexes.length === 0) table.indexes.delete(indexName);
      }
    }
  }

  /**
   * What snapshots read: a view per incarnation, reusing views of incarnations no batch changed.
   * Built from the applier's trees, possibly while a batch is open: its pending versions carry a
   * position after every position a snapshot may read, so they are never visible, and a batch
   * that ends invalidates the views of the tables it touched.
   */
  view(): ReadonlyMap<string, readonly TableView[]> {
    if (!this.#stale) return this.#published;
    const published = new Map<string, readonly TableView[]>();
    for (const [name, list] of this.tables) {
      if (list.length > 0) published.set(name, list.map((table) => (table.view ??= table.publish())));
    }
    this.#published = published;
    this.#stale = false;
    return published;
  }
}

/**
 * The MVCC projection store: per tenant, per table incarnation, a B+tree of row versions
 * {createdAt, deletedAt, row} and one per secondary index. Pure and synchronous.
 *
 * One write batch at a time (the applier), at strictly increasing positions; any number of
 * snapshots, each fixed at its position and unaffected by later commits.
 *
 * @example
 *   const store = new Store();
 *   store.createTenant(tenantId(1));
 *   const batch = store.begin(tenantId(1), position(1));
 *   batch.createTable('p', { primaryKey: [0], columnCount: 2 });
 *   batch.insert('p', [1n, 'Ann']);
 *   batch.commit();
 *   store.snapshotAt(tenantId(1), position(1)).get('p', [1n]);   // [1n, 'Ann']
 */
export class Store {
  readonly #tenants = new Map<number, Tenant>();
  #lastPosition = 0;
  #horizon = 0;
  #batch: WriteBatch | undefined;

  /** The highest position applied (committed or advanced past); 0 before any. */
  get lastPosition(): Position {
    return toPosition(this.#lastPosition);
  }

  /** Positions before this were pruned: snapshots at them are refused. */
  get horizon(): Position {
    return toPosition(this.#horizon);
  }

  createTenant(id: TenantId): void {
    this.#checkIdle();
    toTenantId(id);
    assert(!this.#tenants.has(id), `tenant ${id} already exists`);
    this.#tenants.set(id, this.#newTenant(id));
  }

  /** Forgets the tenant and all its history (crypto-shredding, tenant deletion). Snapshots
   * already taken keep working. */
  dropTenant(id: TenantId): void {
    this.#checkIdle();
    assert(this.#tenants.delete(id), `unknown tenant ${id}`);
  }

  hasTenant(id: TenantId): boolean {
    return this.#tenants.has(id);
  }

  tenants(): TenantId[] {
    return [...this.#tenants.keys()].sort((a, b) => a - b).map(toTenantId);
  }

  /** Opens the write batch of the log entry at `position` for `tenant`. */
  begin(tenant: TenantId, position: Position): WriteBatch {
    this.#checkIdle();
    toPosition(position);
    if (position <= this.#lastPosition) assert(false, `position ${position} not after the last applied ${this.#lastPosition}`);
    const batch = new WriteBatch(this.#tenant(tenant), position);
    this.#batch = batch;
    return batch;
  }

  /** Records that positions up to `position` are applied without writes here (entries for no
   * tenant's tables), so snapshots at them are allowed. */
  advance(position: Position): void {
    this.#checkIdle();
    toPosition(position);
    assert(position >= this.#lastPosition, `position ${position} before the last applied ${this.#lastPosition}`);
    this.#lastPosition = position;
  }

  /** The tenant's tables exactly as of `position` (horizon <= position <= lastPosition). */
  snapshotAt(tenant: TenantId, position: Position): Snapshot {
    toPosition(position);
    assert(position <= this.#lastPosition, `position ${position} not applied yet (last ${this.#lastPosition})`);
    assert(position >= this.#horizon, `position ${position} is before the history horizon ${this.#horizon}`);
    return new Reader(this.#tenant(tenant).view(), position, false);
  }

  latest(tenant: TenantId): Snapshot {
    return this.snapshotAt(tenant, toPosition(this.#lastPosition));
  }

  /** Drops history no snapshot at or after `horizon` can see: versions deleted and incarnations
   * dropped at or before it. Costs a pass over every tree; call it at checkpoints. */
  prune(horizon: Position): void {
    this.#checkIdle();
    toPosition(horizon);
    assert(horizon >= this.#horizon && horizon <= this.#lastPosition, `horizon ${horizon} outside [${this.#horizon}, ${this.#lastPosition}]`);
    this.#horizon = horizon;
    for (const tenant of this.#sortedTenants()) {
      for (const [name, list] of tenant.tables) {
        const kept = list.filter((table) => table.droppedAt > horizon);
        tenant.tables.set(name, kept);
        for (const table of kept) pruneTable(table, horizon);
      }
      tenant.compact();
      tenant.invalidate();
    }
  }

  /**
   * A self-contained, checksummed image of the store with all retained history, plus `extra`
   * bytes the caller keeps alongside (the kernel's catalog and sessions).
   *
   *   "VDBSTORE" | u32 version | varuint lastPosition | varuint horizon | bytes extra | state |
   *   BLAKE3-256 of everything before it
   */
  checkpoint(extra: Uint8Array = new Uint8Array(0), hash: CheckpointHash = referenceHash): Uint8Array {
    this.#checkIdle();
    const writer = new ByteWriter();
    writer.raw(CHECKPOINT_MAGIC);
    writer.u32(CHECKPOINT_FORMAT_VERSION);
    writer.varuint(this.#lastPosition);
    writer.varuint(this.#horizon);
    writer.bytes(extra);
    encodeState(writer, this.#sortedTenants());
    const body = writer.finish();
    const out = new Uint8Array(body.length + CHECKSUM_BYTES);
    out.set(body);
    out.set(hash(body), body.length);
    return out;
  }

  /** Rebuilds a store from `checkpoint()` bytes; anything but an intact checkpoint of a known
   * version is refused with a reason. */
  static restore(bytes: Uint8Array, hash: CheckpointHash = referenceHash): RestoreResult {
    if (bytes.length < CHECKPOINT_MAGIC.length + 4 + CHECKSUM_BYTES) return { ok: false, reason: 'checkpoint too short' };
    const bodyLength = bytes.length - CHECKSUM_BYTES;
    const expected = hash(bytes.subarray(0, bodyLength));
    for (let i = 0; i < CHECKSUM_BYTES; i++) {
      if (expected[i] !== bytes[bodyLength + i]) return { ok: false, reason: 'checkpoint checksum mismatch' };
    }
    try {
      const reader = new ByteReader(bytes, 0, bodyLength);
      const magic = reader.raw(CHECKPOINT_MAGIC.length);
      if (compareKeys([magic], [CHECKPOINT_MAGIC]) !== 0) return { ok: false, reason: 'not a store checkpoint' };
      const version = reader.u32();
      if (version !== CHECKPOINT_FORMAT_VERSION) return { ok: false, reason: `unknown checkpoint version ${version}` };
      const store = new Store();
      store.#lastPosition = reader.varuint();
      store.#horizon = reader.varuint();
      if (store.#horizon > store.#lastPosition) return { ok: false, reason: 'horizon after the last position' };
      const extra = reader.bytes();
      for (const [id, tables] of decodeState(reader, store.#lastPosition)) {
        const tenant = store.#newTenant(toTenantId(id));
        for (const [name, list] of tables) tenant.tables.set(name, list);
        store.#tenants.set(id, tenant);
      }
      if (reader.remaining !== 0) return { ok: false, reason: 'trailing bytes in checkpoint' };
      return { ok: true, store, extra };
    } catch (error) {
      if (error instanceof DecodeError) return { ok: false, reason: error.message };
      throw error;
    }
  }

  /** BLAKE3-256 of the canonical encoding of every tenant's tables and retained history:
   * equal for stores that hold the same history however it was batched or shaped. */
  stateHash(): Uint8Array {
    this.#checkIdle();
    const hasher = blake3.create();
    const writer = new ByteWriter((chunk) => hasher.update(chunk));
    writer.string(STATE_HASH_DOMAIN);
    encodeState(writer, this.#sortedTenants());
    writer.finish();
    return hasher.digest();
  }

  /** Checks every derived structure against the versions it derives from: index trees, row
   * counts, uniqueness, version intervals. O(size); for tests and the simulator. */
  checkInvariants(): void {
    this.#checkIdle();
    for (const tenant of this.#sortedTenants()) {
      for (const list of tenant.tables.values()) {
        for (let i = 1; i < list.length; i++) {
          assert((list[i - 1] as TableState).droppedAt <= (list[i] as TableState).createdAt, 'incarnations in order');
        }
        for (const table of list) checkTable(table, this.#horizon, this.#lastPosition);
      }
    }
  }

  #newTenant(id: TenantId): Tenant {
    return new Tenant(id, (batch, committed) => {
      assert(this.#batch === batch, 'the finishing batch is the open one');
      this.#batch = undefined;
      if (committed) this.#lastPosition = batch.position;
    });
  }

  #tenant(id: TenantId): Tenant {
    const tenant = this.#tenants.get(id);
    if (tenant === undefined) assert(false, `unknown tenant ${id}`);
    return tenant;
  }

  #sortedTenants(): Tenant[] {
    return [...this.#tenants.values()].sort((a, b) => a.id - b.id);
  }

  #checkIdle(): void {
    if (this.#batch !== undefined) assert(false, `a write batch at ${this.#batch.position} is open`);
  }
}

function pruneTable(table: TableState, horizon: number): void {
  const trees = [table.primary];
  for (const [name, list] of table.indexes) {
    const kept = list.filter((index) => index.droppedAt > horizon);
    table.indexes.set(name, kept);
    table.indexesChanged();
    for (const index of kept) trees.push(index.tree);
  }
  for (const tree of trees) {
    const doomed: ReturnType<typeof tree.keysArray> = [];
    for (const [key, version] of tree.entries()) if (version.deletedAt <= horizon) doomed.push(key);
    for (const key of doomed) tree.delete(key);
  }
  table.pruneCounts(horizon);
  table.view = undefined;
}

function checkTable(table: TableState, horizon: number, lastPosition: number): void {
  // The B+trees' own structure (order, sizes, internal keys): the batch writes some leaves in place.
  checkTreeStructure(table.primary);
  for (const list of table.indexes.values()) for (const index of list) checkTreeStructure(index.tree);
  const versions: Version[] = [];
  let live = 0;
  let previous: Version | undefined;
  for (const [key, version] of table.primary.entries()) {
    assert(compareKeys(key.key, project(version.row, table.layout.primaryKey)) === 0 && key.createdAt === version.createdAt,
      'primary entry keyed by its row');
    assert(version.createdAt < version.deletedAt && version.createdAt >= table.createdAt, 'version interval');
    assert(version.createdAt < table.droppedAt && (version.deletedAt === NEVER || version.deletedAt < table.droppedAt),
      'a dropped table keeps the versions it had before the drop');
    assert(version.deletedAt > horizon, 'pruned versions are gone');
    assert(version.createdAt <= lastPosition, 'no version from the future');
    if (previous !== undefined && compareKeys(project(previous.row, table.layout.primaryKey), key.key) === 0) {
      assert(previous.deletedAt <= version.createdAt, 'versions of a row do not overlap');
    }
    if (version.deletedAt === NEVER) live += 1;
    versions.push(version);
    previous = version;
  }
  assert(live === table.liveCount, `live count ${table.liveCount} but ${live} live versions`);
  const derived = countsFromVersions(versions);
  for (let i = 0; i < derived.positions.length; i++) {
    const at = derived.positions[i] as number;
    if (at < horizon) continue;
    assert(table.committedCountAt(at) === derived.values[i], `row count at ${at}`);
  }
  for (const [name, list] of table.indexes) {
    for (const index of list) {
      assert(index.name === name, 'index filed under its name');
      assert(index.createdAt >= table.createdAt && index.createdAt < table.droppedAt, 'an index lives within its table');
      const expected = versions.filter((v) => v.createdAt < index.droppedAt && v.deletedAt > index.createdAt);
      assert(index.tree.size === expected.length, `index ${name} holds ${index.tree.size} entries, expected ${expected.length}`);
      for (const version of expected) {
        const key = indexEntryKey(version.row, index.layout.columns, table.layout.primaryKey);
        const found = index.tree.get({ key, createdAt: version.createdAt, edge: 0 });
        assert(found !== undefined && found.row === version.row, `index ${name} entry for a version`);
        assert(Math.min(found.deletedAt, index.droppedAt) === Math.min(version.deletedAt, index.droppedAt), `index ${name} entry interval`);
      }
      if (index.layout.unique && index.droppedAt === NEVER) checkUnique(table, index.layout.columns, versions);
    }
  }
}

function checkUnique(table: TableState, columns: readonly number[], versions: readonly Version[]): void {
  const keys = versions.filter((v) => v.deletedAt === NEVER).map((v) => project(v.row, columns))
    .filter((key) => !key.some((value: Value) => value === null)).sort(compareKeys);
  for (let i = 1; i < keys.length; i++) {
    assert(compareKeys(keys[i - 1] as Value[], keys[i] as Value[]) !== 0, `duplicate unique key in ${table.name}`);
  }
}

