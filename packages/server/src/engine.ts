import type { Position, Row, SqlType, Value } from '@veritydb/types';
import type { BackupCut, EngineStatus, LogReader } from '@veritydb/runtime';
import type { Consistency, TenantInfo, WireError } from '@veritydb/wire';

/**
 * What the server needs from a database engine: the seam between the network edge (this
 * package) and the runtime that owns the log, the kernel and the store. The server never
 * imports the SDK (it sits above us); `LocalEngine` implements this over the durable log and
 * the kernel for a single node. Outcomes a user can cause are values (`{ ok: false, error }`
 * with a wire error code); only broken invariants throw.
 */
export interface Engine {
  /** The cluster this engine's log belongs to. */
  readonly clusterId: bigint;
  createTenant(id: number, name: string, actor: string): Promise<EngineOutcome<{ readonly position: Position }>>;
  dropTenant(id: number, actor: string): Promise<EngineOutcome<{ readonly position: Position }>>;
  listTenants(): readonly TenantInfo[];
  /**
   * One atomic log entry: all statements apply, or none (the attempt is still logged). With
   * `session` (engines that offer `register`), it is request `session.request` of that client
   * session: executed at most once however often it is retried.
   */
  execute(tenant: number, statements: readonly EngineStatement[], actor: string, session?: SessionNumbers | null): Promise<EngineOutcome<ExecuteOutcome>>;
  /** Registers an exactly-once client session; the position is the session's registration. Absent: no sessions. */
  register?(client: bigint, signal?: AbortSignal): Promise<EngineOutcome<{ readonly position: Position }>>;
  query(tenant: number, statement: EngineStatement, options: ReadRequest): Promise<EngineOutcome<QueryOutcome>>;
  /** `__events` rows of a tenant with position ≥ `from` (one stream, or all), at the head. */
  events(tenant: number, from: Position, stream: string | null): EngineOutcome<readonly Row[]>;
  /** Called after every applied entry with its tenant and position; returns an unsubscribe. */
  onApplied(listener: (tenant: number, position: Position) => void): () => void;
  status(): EngineStatus;
  /**
   * The log this server keeps, read-only, for verify and export while it serves: a single node's
   * log, or a cluster replica's ledger of committed ops (first caught up with every op committed
   * so far).
   */
  auditLog(): Promise<EngineOutcome<LogReader>>;
  /**
   * A consistent cut of the data dir for a backup while the server keeps serving (a single node:
   * a fresh checkpoint and the log up to its position); the caller releases it. A cluster replica
   * answers `NotSupported` (yet).
   */
  backupCut(): Promise<EngineOutcome<BackupCut>>;
  /** Stops taking writes, waits for the ones in flight, makes the log durable and closes it. */
  close(): Promise<void>;
}

/** A write's place in a client session (PROTOCOL.md §5). */
export interface SessionNumbers {
  readonly client: bigint;
  readonly request: number;
}

/** A statement parameter: an engine value, or a Date (typed as TIMESTAMP). */
export type EngineParam = Value | Date;

export interface EngineStatement {
  readonly sql: string;
  readonly params: readonly EngineParam[];
}

export interface EngineColumn {
  readonly name: string;
  readonly type: SqlType;
}

export interface StatementRows {
  readonly columns: readonly EngineColumn[];
  readonly rows: readonly Row[];
  readonly rowsAffected: number;
}

export interface ExecuteOutcome {
  readonly position: Position;
  readonly statements: readonly StatementRows[];
}

export interface QueryOutcome {
  readonly position: Position;
  readonly columns: readonly EngineColumn[];
  readonly rows: readonly Row[];
}

export interface ReadRequest {
  readonly consistency: Consistency;
  readonly position: Position;
  /** How long the read may wait for the position it needs. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Positions, tenants, writes in flight and the failure, if any (the runtime engine's status). */
export type { EngineStatus } from '@veritydb/runtime';

export type EngineOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WireError };

export const EVENT_COLUMN_TYPES: readonly EngineColumn[] = Object.freeze([
  { name: 'position', type: 'BIGINT' }, { name: 'index', type: 'INTEGER' }, { name: 'stream', type: 'TEXT' },
  { name: 'event_type', type: 'TEXT' }, { name: 'key', type: 'JSON' }, { name: 'data', type: 'JSON' },
  { name: 'actor', type: 'TEXT' }, { name: 'timestamp', type: 'TIMESTAMP' }, { name: 'hash', type: 'TEXT' },
]);
