import {
  assert, clientId, limits, position, tenantId, type ClientId, type Position, type TenantId,
} from '@veritydb/types';
import { decodeCatalog, emptyCatalog, encodeCatalog, type Catalog } from '@veritydb/query';
import { ByteReader, ByteWriter, DecodeFailure } from './codec/bytes.js';
import { TimestampIndex } from './timestamps.js';

/**
 * Kernel state besides the store's tables: tenants, each tenant's catalog history, client
 * sessions and the timestamp index. It travels in the store checkpoint's `extra` slot, in a
 * canonical encoding (maps written in key order), so equal states give equal bytes and the
 * same log replayed anywhere gives the same bytes.
 *
 * Catalogs are kept as a history of versions (one per DDL entry), because `AS OF POSITION p`
 * must read a table with the columns it had at p.
 */
export interface TenantRecord {
  readonly id: TenantId;
  readonly name: string;
  readonly createdAt: Position;
  /** Position of the drop; a dropped tenant's id is never reused. */
  readonly droppedAt: Position | null;
}

export interface CatalogVersion {
  /** First position at which this catalog is in force. */
  readonly from: Position;
  readonly catalog: Catalog;
}

/** One client session (DESIGN §5.3). VSR fills `lastRequest`; the kernel keeps the table. */
export interface SessionRecord {
  readonly client: ClientId;
  readonly registeredAt: Position;
  readonly lastRequest: number;
}

export const STATE_FORMAT_VERSION = 1;

export class KernelState {
  readonly tenants = new Map<TenantId, TenantRecord>();
  readonly catalogs = new Map<TenantId, CatalogVersion[]>();
  readonly sessions = new Map<ClientId, SessionRecord>();
  readonly timestamps: TimestampIndex;

  constructor(timestamps: TimestampIndex = new TimestampIndex()) {
    this.timestamps = timestamps;
  }

  /** The last applied position. */
  get head(): Position {
    return this.timestamps.head;
  }

  liveTenant(id: TenantId): TenantRecord | undefined {
    const record = this.tenants.get(id);
    return record === undefined || record.droppedAt !== null ? undefined : record;
  }

  /** The tenant if its state at `at` can be read: created at or before `at` and not dropped.
   * Dropping a tenant erases its history too (the store forgets it; DESIGN §12), so a dropped
   * tenant has no readable past. */
  tenantAt(id: TenantId, at: Position): TenantRecord | undefined {
    const record = this.liveTenant(id);
    return record === undefined || record.createdAt > at ? undefined : record;
  }

  addTenant(record: TenantRecord): void {
    assert(!this.tenants.has(record.id), `tenant ${record.id} is new`);
    this.tenants.set(record.id, record);
    this.catalogs.set(record.id, [{ from: record.createdAt, catalog: emptyCatalog() }]);
  }

  dropTenant(id: TenantId, at: Position): void {
    const record = this.liveTenant(id);
    assert(record !== undefined, `tenant ${id} is live`);
    this.tenants.set(id, { ...record, droppedAt: at });
  }

  catalog(id: TenantId): Catalog {
    const versions = this.catalogs.get(id);
    if (versions === undefined || versions.length === 0) assert(false, `tenant ${id} has a catalog`);
    return (versions[versions.length - 1] as CatalogVersion).catalog;
  }

  catalogAt(id: TenantId, at: Position): Catalog | undefined {
    const versions = this.catalogs.get(id);
    if (versions === undefined) return undefined;
    let found: Catalog | undefined;
    for (const version of versions) {
      if (version.from > at) break;
      found = version.catalog;
    }
    return found;
  }

  setCatalog(id: TenantId, at: Position, catalog: Catalog): void {
    const versions = this.catalogs.get(id);
    assert(versions !== undefined, `tenant ${id} has a catalog`);
    const last = versions[versions.length - 1] as CatalogVersion;
    assert(last.from <= at, 'catalog versions in position order');
    if (last.from === at) versions[versions.length - 1] = { from: at, catalog };
    else versions.push({ from: at, catalog });
  }

  /** Registers a session; when the table is full, evicts the least recently registered one
   * (ties impossible: one registration per position). Returns the evicted client, if any. */
  registerSession(client: ClientId, at: Position): ClientId | undefined {
    let evicted: ClientId | undefined;
    if (!this.sessions.has(client) && this.sessions.size >= limits.clientSessionsMax) {
      let oldest: SessionRecord | undefined;
      for (const session of this.sessions.values()) {
        if (oldest === undefined || session.registeredAt < oldest.registeredAt) oldest = session;
      }
      assert(oldest !== undefined, 'a full session table has an oldest session');
      this.sessions.delete(oldest.client);
      evicted = oldest.client;
    }
    this.sessions.set(client, { client, registeredAt: at, lastRequest: 0 });
    return evicted;
  }

  encode(): Uint8Array {
    const writer = new ByteWriter(1024);
    writer.u8(STATE_FORMAT_VERSION);
    const tenants = [...this.tenants.values()].sort((a, b) => a.id - b.id);
    writer.varuint(tenants.length);
    for (const tenant of tenants) {
      writer.varuint(tenant.id).string(tenant.name).varuint(tenant.createdAt).varuint(tenant.droppedAt ?? 0);
      const versions = this.catalogs.get(tenant.id) ?? [];
      writer.varuint(versions.length);
      for (const version of versions) writer.varuint(version.from).string(encodeCatalog(version.catalog));
    }
    const sessions = [...this.sessions.values()].sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
    writer.varuint(sessions.length);
    for (const session of sessions) writer.bigint(session.client).varuint(session.registeredAt).varuint(session.lastRequest);
    this.timestamps.encode(writer);
    return writer.finish();
  }

  /** Decodes checkpointed state; a malformed one is reported, never half-loaded. */
  static decode(bytes: Uint8Array): { ok: true; value: KernelState } | { ok: false; reason: string } {
    try {
      return { ok: true, value: decodeState(new ByteReader(bytes)) };
    } catch (error) {
      if (error instanceof DecodeFailure) return { ok: false, reason: error.message };
      throw error;
    }
  }
}

function decodeState(reader: ByteReader): KernelState {
  const version = reader.u8();
  if (version !== STATE_FORMAT_VERSION) throw new DecodeFailure(`unknown kernel state version ${version}`);
  const tenants: TenantRecord[] = [];
  const catalogs = new Map<TenantId, CatalogVersion[]>();
  const tenantCount = reader.varuint();
  for (let i = 0; i < tenantCount; i++) {
    const id = tenantId(reader.varuint());
    const name = reader.string();
    const createdAt = position(reader.varuint());
    const dropped = reader.varuint();
    if (tenants.length > 0 && (tenants[tenants.length - 1] as TenantRecord).id >= id) throw new DecodeFailure('tenants out of order');
    tenants.push({ id, name, createdAt, droppedAt: dropped === 0 ? null : position(dropped) });
    const versionCount = reader.varuint();
    const versions: CatalogVersion[] = [];
    for (let v = 0; v < versionCount; v++) {
      const from = position(reader.varuint());
      const decoded = decodeCatalog(reader.string());
      if (!decoded.ok) throw new DecodeFailure(decoded.error.message);
      if (versions.length > 0 && (versions[versions.length - 1] as CatalogVersion).from >= from) throw new DecodeFailure('catalog versions out of order');
      versions.push({ from, catalog: decoded.value });
    }
    if (versions.length === 0) throw new DecodeFailure(`tenant ${id} has no catalog`);
    catalogs.set(id, versions);
  }
  const sessions: SessionRecord[] = [];
  const sessionCount = reader.varuint();
  for (let i = 0; i < sessionCount; i++) {
    const raw = reader.bigint();
    if (raw < 0n || raw >= 1n << 128n) throw new DecodeFailure('session client id is not a u128');
    sessions.push({ client: clientId(raw), registeredAt: position(reader.varuint()), lastRequest: reader.varuint() });
  }
  const state = new KernelState(TimestampIndex.decode(reader));
  reader.end();
  for (const tenant of tenants) {
    if (tenant.createdAt > state.head || (tenant.droppedAt ?? 0) > state.head) throw new DecodeFailure(`tenant ${tenant.id} is from the future`);
    state.tenants.set(tenant.id, tenant);
    state.catalogs.set(tenant.id, catalogs.get(tenant.id) as CatalogVersion[]);
  }
  for (const session of sessions) state.sessions.set(session.client, session);
  return state;
}
