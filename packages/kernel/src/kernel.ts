import {
  assert, assertNever, position as toPosition, tenantId as toTenantId, type Checksum, type ClientId, type JsonValue,
  type Position, type Row, type TenantId,
} from '@veritydb/types';
import { Store, type CheckpointHash } from '@veritydb/store';
import { findProjection, recomputeProjection } from '@veritydb/query';
import { decodeEnvelope, type Command, type Envelope, type SqlBatchCommand } from './codec/command.js';
import {
  createEventsTable, EVENTS_TABLE, TENANT_STREAM, writeEvents, type EventStamp, type PendingEvent,
} from './events.js';
import { KernelState } from './state.js';
import { executeBatch, executeRead, type History, type ReadOutcome, type StatementOutcome } from './sql.js';

/**
 * The kernel: pure, deterministic apply of committed log entries (DESIGN §6). It owns the
 * tenants, their catalogs, the client session table and the timestamp index, and drives SQL
 * through the store's write batch. The same entries applied in the same order give the same
 * state, byte for byte (`stateHash`), wherever and however often they are applied.
 *
 * Outcomes a user can cause (unknown table, constraint violated, …) are values: the entry stays
 * in the log, changes nothing but `__events` (where it is recorded as `rejected`), and the
 * reply says why. Only broken invariants throw.
 *
 * @example
 *   const kernel = Kernel.create();
 *   const r = kernel.apply(ctx, encodeEnvelope({ tenant: tenantId(1), actor: 'ann', command: { kind: 'tenant_create', id: tenantId(1), name: 'clinic' } }));
 *   kernel.read(tenantId(1), 'SELECT * FROM __events', []);
 */
export interface ApplyContext {
  readonly position: Position;
  /** Stamped by the primary: strictly increasing µs since the epoch. */
  readonly timestampMicros: number;
  /** The log header's tenant, when the driver has one: an entry whose body names another
   * tenant is rejected (`InvalidEntry`). The body's tenant is the one applied. */
  readonly tenant?: TenantId;
  /** The entry's hash in the log's chain. */
  readonly hash: Checksum;
}

/** The context with the tenant settled (from the entry body). */
interface EntryContext extends ApplyContext {
  readonly tenant: TenantId;
}

/** A user-caused failure, as a value. `statement` is the batch index of the failing statement. */
export interface KernelError {
  readonly code: string;
  /** PostgreSQL SQLSTATE for SQL errors, null for the kernel's own codes. */
  readonly sqlState: string | null;
  readonly message: string;
  readonly statement: number | null;
  readonly line?: number;
  readonly column?: number;
}

export type Reply =
  | { readonly kind: 'sql'; readonly statements: readonly StatementOutcome[] }
  | { readonly kind: 'tenant_created'; readonly tenant: TenantId }
  | { readonly kind: 'tenant_dropped'; readonly tenant: TenantId }
  | { readonly kind: 'noop' }
  | { readonly kind: 'registered'; readonly client: ClientId; readonly evicted: ClientId | null }
  | { readonly kind: 'rejected'; readonly error: KernelError };

/** What applying one entry did. `events` are the rows written to the tenant's `__events`. */
export interface ApplyResult {
  readonly position: Position;
  readonly actor: string;
  readonly reply: Reply;
  readonly events: readonly PendingEvent[];
}

export const SYSTEM_TENANT = toTenantId(0);

export interface KernelOptions {
  /** BLAKE3-256 for checkpoint bodies: the runtime passes its WebAssembly build (same digests). */
  readonly checkpointHash?: CheckpointHash;
}

export type Restored = { readonly ok: true; readonly kernel: Kernel } | { readonly ok: false; readonly reason: string };

export class Kernel {
  readonly #store: Store;
  readonly #state: KernelState;

  /** Hashes checkpoint bodies (`KernelOptions.checkpointHash`); undefined: the store's reference. */
  readonly #checkpointHash: CheckpointHash | undefined;

  private constructor(store: Store, state: KernelState, options: KernelOptions) {
    this.#store = store;
    this.#state = state;
    this.#checkpointHash = options.checkpointHash;
  }

  static create(options: KernelOptions = {}): Kernel {
    return new Kernel(new Store(), new KernelState(), options);
  }

  /** Loads `checkpoint()` bytes; anything but an intact, known-version checkpoint is refused. */
  static restore(checkpoint: Uint8Array, options: KernelOptions = {}): Restored {
    const restored = Store.restore(checkpoint, options.checkpointHash);
    if (!restored.ok) return { ok: false, reason: restored.reason };
    const state = KernelState.decode(restored.extra);
    if (!state.ok) return { ok: false, reason: `kernel state: ${state.reason}` };
    if (state.value.head !== restored.store.lastPosition) {
      return { ok: false, reason: `kernel state at ${state.value.head} but store at ${restored.store.lastPosition}` };
    }
    for (const tenant of state.value.tenants.values()) {
      if ((tenant.droppedAt === null) !== restored.store.hasTenant(tenant.id)) return { ok: false, reason: `tenant ${tenant.id} disagrees with the store` };
    }
    return { ok: true, kernel: new Kernel(restored.store, state.value, options) };
  }

  /** The last applied position (0 before any). */
  get head(): Position {
    return this.#state.head;
  }

  /** Timestamp (µs) of the last applied entry, 0 before any. */
  get lastTimestampMicros(): number {
    return this.#state.timestamps.lastTimestamp;
  }

  /** A self-contained image of all state: the store's checkpoint carrying kernel state in its
   * `extra` slot. */
  checkpoint(): Uint8Array {
    return this.#store.checkpoint(this.#state.encode(), this.#checkpointHash);
  }

  /** BLAKE3-256 over all state: the checksum that ends `checkpoint()`, which covers the store's
   * canonical state, its positions and the kernel's state. Equal for equal histories. */
  stateHash(): Uint8Array {
    const image = this.checkpoint();
    return image.slice(image.length - 32);
  }

  /** Applies the entry at `ctx.position` (which must be `head + 1`). */
  apply(ctx: ApplyContext, body: Uint8Array): ApplyResult {
    const decoded = decodeEnvelope(body);
    if (decoded.ok) return this.applyEnvelope(ctx, decoded.value);
    this.#begin(ctx);
    return this.#invalidEntry(ctx, `undecodable entry: ${decoded.reason}`);
  }

  #invalidEntry(ctx: ApplyContext, message: string): ApplyResult {
    const reply = rejected('InvalidEntry', message);
    if (ctx.tenant === undefined || this.#state.liveTenant(ctx.tenant) === undefined) {
      this.#store.advance(ctx.position);
      return { position: ctx.position, actor: '', reply, events: [] };
    }
    // The attempt is part of the tenant's audit trail even though nobody can say what it asked.
    const event: PendingEvent = { stream: TENANT_STREAM, eventType: 'rejected', key: null, data: rejectionData(reply.error) };
    const audit = this.#store.begin(ctx.tenant, ctx.position);
    writeEvents(audit, { position: ctx.position, actor: '', timestampMicros: ctx.timestampMicros, hash: ctx.hash }, [event]);
    audit.commit();
    return { position: ctx.position, actor: '', reply, events: [event] };
  }

  applyEnvelope(given: ApplyContext, envelope: Envelope): ApplyResult {
    this.#begin(given);
    if (given.tenant !== undefined && given.tenant !== envelope.tenant) {
      return this.#invalidEntry(given, `the entry body names tenant ${envelope.tenant}, its log header tenant ${given.tenant}`);
    }
    const ctx: EntryContext = { ...given, tenant: envelope.tenant };
    const stamp: EventStamp = { position: ctx.position, actor: envelope.actor, timestampMicros: ctx.timestampMicros, hash: ctx.hash };
    const { reply, events } = this.#dispatch(ctx, stamp, envelope.command);
    if (this.#store.lastPosition !== ctx.position) assert(false, `the store reached position ${ctx.position}`);
    return { position: ctx.position, actor: envelope.actor, reply, events };
  }

  #begin(ctx: ApplyContext): void {
    if (ctx.position !== this.head + 1) assert(false, `apply expects position ${this.head + 1}, got ${ctx.position}`);
    this.#state.timestamps.append(ctx.position, ctx.timestampMicros);
  }

  #dispatch(ctx: EntryContext, stamp: EventStamp, command: Command): { reply: Reply; events: readonly PendingEvent[] } {
    switch (command.kind) {
      case 'tenant_create': return this.#createTenant(ctx, stamp, command.id, command.name);
      case 'tenant_drop': return this.#dropTenant(ctx, command.id);
      case 'sql': return this.#sql(ctx, stamp, command);
      case 'noop':
        this.#store.advance(ctx.position);
        return { reply: { kind: 'noop' }, events: [] };
      case 'client_register': {
        const evicted = this.#state.registerSession(command.client, ctx.position);
        this.#store.advance(ctx.position);
        return { reply: { kind: 'registered', client: command.client, evicted: evicted ?? null }, events: [] };
      }
      default: return assertNever(command);
    }
  }

  #createTenant(ctx: EntryContext, stamp: EventStamp, id: TenantId, name: string): { reply: Reply; events: readonly PendingEvent[] } {
    const refuse = (code: string, message: string): { reply: Reply; events: readonly PendingEvent[] } => {
      this.#store.advance(ctx.position);
      return { reply: rejected(code, message), events: [] };
    };
    if (id === SYSTEM_TENANT) return refuse('InvalidTenant', 'tenant 0 is the system tenant');
    if (ctx.tenant !== id) return refuse('InvalidTenant', `entry of tenant ${ctx.tenant} cannot create tenant ${id}`);
    if (this.#state.tenants.has(id)) return refuse('TenantExists', `tenant ${id} already exists`);
    this.#state.addTenant({ id, name, createdAt: ctx.position, droppedAt: null });
    this.#store.createTenant(id);
    const batch = this.#store.begin(id, ctx.position);
    createEventsTable(batch);
    const events: PendingEvent[] = [{ stream: TENANT_STREAM, eventType: 'ddl', key: null, data: { tenant: id, name, action: 'create' } }];
    writeEvents(batch, stamp, events);
    batch.commit();
    return { reply: { kind: 'tenant_created', tenant: id }, events };
  }

  #dropTenant(ctx: EntryContext, id: TenantId): { reply: Reply; events: readonly PendingEvent[] } {
    this.#store.advance(ctx.position);
    if (ctx.tenant !== id) return { reply: rejected('InvalidTenant', `entry of tenant ${ctx.tenant} cannot drop tenant ${id}`), events: [] };
    if (this.#state.liveTenant(id) === undefined) return { reply: rejected('TenantNotFound', `tenant ${id} does not exist`), events: [] };
    this.#state.dropTenant(id, ctx.position);
    this.#store.dropTenant(id);
    return { reply: { kind: 'tenant_dropped', tenant: id }, events: [] };
  }

  #sql(ctx: EntryContext, stamp: EventStamp, command: SqlBatchCommand): { reply: Reply; events: readonly PendingEvent[] } {
    if (this.#state.liveTenant(ctx.tenant) === undefined) {
      this.#store.advance(ctx.position);
      return { reply: rejected('TenantNotFound', `tenant ${ctx.tenant} does not exist`), events: [] };
    }
    const batch = this.#store.begin(ctx.tenant, ctx.position);
    // AS OF inside a write sees committed history only: positions before this entry.
    const outcome = executeBatch({
      batch, catalog: this.#state.catalog(ctx.tenant), statements: command.statements,
      history: this.#history(ctx.tenant, toPosition(ctx.position - 1)),
    });
    if (outcome.ok) {
      writeEvents(batch, stamp, outcome.events);
      batch.commit();
      if (outcome.catalog !== this.#state.catalog(ctx.tenant)) this.#state.setCatalog(ctx.tenant, ctx.position, outcome.catalog);
      return { reply: { kind: 'sql', statements: outcome.statements }, events: outcome.events };
    }
    batch.abort();
    const error = outcome.error;
    const event: PendingEvent = {
      stream: outcome.stream, eventType: 'rejected', key: null, data: rejectionData(error),
    };
    const audit = this.#store.begin(ctx.tenant, ctx.position);
    writeEvents(audit, stamp, [event]);
    audit.commit();
    return { reply: { kind: 'rejected', error }, events: [event] };
  }

  /**
   * Runs a read-only statement against the tenant's state at `at` (default: the head).
   * `AS OF` clauses inside the statement pick their own snapshots.
   */
  read(tenant: TenantId, sql: string, params: readonly unknown[], at: Position = this.head): ReadOutcome {
    if (at > this.head) return { ok: false, error: { code: 'PositionUnavailable', sqlState: null, message: `position ${at} is beyond the last applied position ${this.head}`, statement: null } };
    if (this.#state.tenantAt(tenant, at) === undefined) {
      return { ok: false, error: { code: 'TenantNotFound', sqlState: null, message: `tenant ${tenant} does not exist at position ${at}`, statement: null } };
    }
    return executeRead({ sql, params, at, history: this.#history(tenant, this.head) });
  }

  #history(tenant: TenantId, head: Position): History {
    return {
      head,
      view: (at) => {
        const catalog = this.#state.catalogAt(tenant, at);
        if (this.#state.tenantAt(tenant, at) === undefined || catalog === undefined) return undefined;
        return { catalog, reader: this.#store.snapshotAt(tenant, at) };
      },
      positionAt: (micros) => this.#state.timestamps.positionAt(micros),
    };
  }

  /**
   * Projection `name` of `tenant` evaluated from scratch over the base tables at `at` (default:
   * the head), in no particular order; undefined if it did not exist then. The incrementally
   * maintained rows must equal it at every position (tests, verification).
   */
  recomputeProjection(tenant: TenantId, name: string, at: Position = this.head): Row[] | undefined {
    const view = this.#history(tenant, this.head).view(at);
    if (view === undefined || findProjection(view.catalog, name) === undefined) return undefined;
    return recomputeProjection(view.catalog, name, view.reader);
  }

  /** `__events` rows of `tenant` with position ≥ `from` (optionally one stream), at the head. */
  *events(tenant: TenantId, from: Position, stream?: string): Generator<Row> {
    if (this.#state.liveTenant(tenant) === undefined) return;
    const snapshot = this.#store.snapshotAt(tenant, this.head);
    const range = { lower: { key: [BigInt(from)], inclusive: true } };
    for (const row of snapshot.scan(EVENTS_TABLE, { range })) {
      if (stream === undefined || row[2] === stream) yield row;
    }
  }

  hasTenant(tenant: TenantId): boolean {
    return this.#state.liveTenant(tenant) !== undefined;
  }

  /** The last position whose timestamp is ≤ `timestampMicros` (0 if none). */
  positionAt(timestampMicros: number): Position {
    return this.#state.timestamps.positionAt(timestampMicros);
  }
}

function rejected(code: string, message: string): Reply & { kind: 'rejected' } {
  return { kind: 'rejected', error: { code, sqlState: null, message, statement: null } };
}

function rejectionData(error: KernelError): JsonValue {
  const data: Record<string, JsonValue> = { code: error.code, message: error.message, statement: error.statement };
  if (error.sqlState !== null) data['sqlState'] = error.sqlState;
  return data;
}

