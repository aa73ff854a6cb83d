import {
  ClosedError, InvalidArgument, Overloaded, SingleNodeEngine, runtimeLimits, type BackupCut, type LogReader, type SessionRegisterOutcome, type SessionWriteOutcome,
  type WaitOutcome,
} from '@veritydb/runtime';
import type { ApplyResult, Envelope, Kernel, KernelError } from '@veritydb/kernel';
import { assert, assertNever, position as toPosition, tenantId, type Position, type Row } from '@veritydb/types';
import type { TenantInfo, WireError } from '@veritydb/wire';
import type {
  Engine, EngineOutcome, EngineStatement, EngineStatus, ExecuteOutcome, QueryOutcome, ReadRequest, SessionNumbers, StatementRows,
} from './engine.js';

/**
 * The server's `Engine` over the runtime's single-node engine (`@veritydb/runtime`: the log
 * with group commit, the kernel, checkpoints, the data dir's lock and cluster identity — the
 * same engine the SDK's embedded mode runs). This class is the network edge's view of it:
 * refusals become wire errors (values), and a read waits, bounded, for the position its
 * consistency mode needs. Exactly-once sessions (`register`, `execute` with a session) behave
 * as a cluster's do (PROTOCOL.md §5): the runtime engine keeps the session table.
 *
 * @example
 *   const engine = await LocalEngine.open({ dataDir: './data', clusterId: null });
 *   await engine.createTenant(1, 'clinic', 'admin');
 */
export interface LocalEngineOptions {
  readonly dataDir: string;
  /** The cluster id the configuration names; null = the data dir's own (created at first start). */
  readonly clusterId: bigint | null;
  /** Wall clock in µs since the epoch (injected for tests). */
  readonly nowMicros?: () => number;
}

export const engineLimits = Object.freeze({
  ...runtimeLimits,
  /** A read's wait when the request names no timeout. */
  readWaitMsDefault: 5_000,
  /** The longest a read waits for its position, whatever the request asks (a client cannot pin a request for days). */
  readWaitMsMax: 15_000,
});

/** How long a read with this requested timeout may wait (0 = the default), capped at `readWaitMsMax`. */
export function readWaitMs(requested: number): number {
  return requested > 0 ? Math.min(requested, engineLimits.readWaitMsMax) : engineLimits.readWaitMsDefault;
}

export class LocalEngine implements Engine {
  readonly clusterId: bigint;
  readonly #engine: SingleNodeEngine;

  private constructor(engine: SingleNodeEngine) {
    this.clusterId = engine.clusterId;
    this.#engine = engine;
  }

  /** Opens the data dir: its latest checkpoint plus the log after it. */
  static async open(options: LocalEngineOptions): Promise<LocalEngine> {
    return new LocalEngine(await SingleNodeEngine.open({
      dataDir: options.dataDir, clusterId: options.clusterId,
      ...(options.nowMicros === undefined ? {} : { nowMicros: options.nowMicros }),
    }));
  }

  /** Called once if the engine fails (an fsync error): the node must stop rather than serve. */
  onFatal(listener: (error: Error) => void): void {
    this.#engine.onFatal(listener);
  }

  createTenant(id: number, name: string, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    if (this.#engine.tenantIsTaken(id)) return Promise.resolve(refused({ code: 'TenantExists', message: `tenant ${id} already exists` }));
    return this.#submit({ tenant: tenantId(id), actor, command: { kind: 'tenant_create', id: tenantId(id), name } })
      .then((outcome) => outcome.ok ? { ok: true, value: { position: outcome.value.position } } : outcome);
  }

  dropTenant(id: number, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    if (!this.#engine.tenantMayExist(id)) return Promise.resolve(tenantNotFound(id));
    return this.#submit({ tenant: tenantId(id), actor, command: { kind: 'tenant_drop', id: tenantId(id) } })
      .then((outcome) => outcome.ok ? { ok: true, value: { position: outcome.value.position } } : outcome);
  }

  listTenants(): readonly TenantInfo[] {
    return this.#engine.listTenants().map(({ id, name }) => ({ id: tenantId(id), name }));
  }

  async execute(tenant: number, statements: readonly EngineStatement[], actor: string, session: SessionNumbers | null = null): Promise<EngineOutcome<ExecuteOutcome>> {
    const envelope: Envelope = { tenant: tenantId(tenant), actor, command: { kind: 'sql', statements } };
    if (session !== null) return this.#executeInSession(tenant, envelope, session);
    if (!this.#engine.tenantMayExist(tenant)) return tenantNotFound(tenant);
    const outcome = await this.#submit(envelope);
    return outcome.ok ? { ok: true, value: executeOutcome(outcome.value) } : outcome;
  }

  /** Registers an exactly-once session of `client`; its position identifies it. */
  async register(client: bigint): Promise<EngineOutcome<{ readonly position: Position }>> {
    const outcome = await this.#settle(() => this.#engine.register(client));
    if (!outcome.ok) return outcome;
    return registerOutcome(client, outcome.value);
  }

  async query(tenant: number, statement: EngineStatement, options: ReadRequest): Promise<EngineOutcome<QueryOutcome>> {
    const failure = this.#engine.failure;
    if (failure !== null) return unavailable(failure);
    const needed = options.consistency === 'causal' || options.consistency === 'atPosition' ? options.position : toPosition(0);
    // Single node: every acknowledged write is applied, so the head is linearizable.
    return readWhenApplied(this.#engine, tenant, statement, options, needed);
  }

  events(tenant: number, from: Position, stream: string | null): EngineOutcome<readonly Row[]> {
    const kernel = this.#engine.kernel;
    if (!kernel.hasTenant(tenantId(tenant))) return tenantNotFound(tenant);
    return { ok: true, value: [...kernel.events(tenantId(tenant), from, stream ?? undefined)] };
  }

  onApplied(listener: (tenant: number, position: Position) => void): () => void {
    return this.#engine.onApplied(listener);
  }

  status(): EngineStatus {
    return this.#engine.status();
  }

  async auditLog(): Promise<EngineOutcome<LogReader>> {
    const failure = this.#engine.failure;
    if (failure !== null) return unavailable(failure);
    return { ok: true, value: this.#engine.auditLog };
  }

  async backupCut(): Promise<EngineOutcome<BackupCut>> {
    const failure = this.#engine.failure;
    if (failure !== null) return unavailable(failure);
    try {
      return { ok: true, value: await this.#engine.backupCut() };
    } catch (error) {
      if (error instanceof ClosedError) return refused({ code: 'Unavailable', message: 'the server is shutting down' });
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#engine.close();
  }

  /**
   * Request `session.request` of a session: a retry of its last committed request answers from
   * the session table (even if the tenant has been dropped since); a new one is logged only if
   * the tenant may exist.
   */
  async #executeInSession(tenant: number, envelope: Envelope, session: SessionNumbers): Promise<EngineOutcome<ExecuteOutcome>> {
    if (session.request === 0) {
      return refused({ code: 'BadRequest', message: 'request number 0 is the registration (register); the writes of a session are numbered from 1' });
    }
    const outcome = await this.#settle(() => this.#engine.submitInSession(session.client, session.request, envelope, () => this.#engine.tenantMayExist(tenant)));
    if (!outcome.ok) return outcome;
    const written = outcome.value;
    switch (written.kind) {
      case 'ok': {
        const result = written.result;
        return result.reply.kind === 'rejected' ? refused(kernelError(result.reply.error, result.position)) : { ok: true, value: executeOutcome(result) };
      }
      case 'not_admitted': return tenantNotFound(tenant);
      default: return refused(sessionRefusal(session, written));
    }
  }

  /** Logs one entry and resolves once it is durable and applied; user errors come back as values. */
  async #submit(envelope: Envelope): Promise<EngineOutcome<ApplyResult>> {
    const outcome = await this.#settle(() => this.#engine.submit(envelope));
    if (!outcome.ok) return outcome;
    const result = outcome.value;
    return result.reply.kind === 'rejected' ? refused(kernelError(result.reply.error, result.position)) : { ok: true, value: result };
  }

  /**
   * Runs one engine call that may log an entry: a refusal before the log (thrown synchronously)
   * becomes its wire error; a failure after it (the promise rejects) is `Indeterminate`.
   */
  async #settle<T>(call: () => Promise<T>): Promise<EngineOutcome<T>> {
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (error) {
      if (error !== null && error === this.#engine.failure) return unavailable(error as Error);
      return refused(submitError(error));
    }
    try {
      return { ok: true, value: await pending };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return refused({ code: 'Indeterminate', message: `the log failed before this write was known to be durable: ${message}` });
    }
  }
}

function executeOutcome(result: ApplyResult): ExecuteOutcome {
  const reply = result.reply;
  assert(reply.kind === 'sql', `an sql entry replies sql, got ${reply.kind}`);
  const statements: StatementRows[] = reply.statements.map((s) => ({ columns: s.columns, rows: s.rows, rowsAffected: s.rowsAffected }));
  return { position: result.position, statements };
}

function registerOutcome(client: bigint, outcome: SessionRegisterOutcome): EngineOutcome<{ readonly position: Position }> {
  switch (outcome.kind) {
    case 'ok': return { ok: true, value: { position: outcome.session } };
    // A cluster drops such a registration unanswered, so its client times out: the same code, at once.
    case 'stale': return refused({
      code: 'Indeterminate', message: `client ${client} is registered and has written since: a client id is registered once; register a new client id`,
    });
    case 'busy': return refused({ code: 'Indeterminate', message: 'this client already has a request in flight' });
    default: return assertNever(outcome);
  }
}

/** The wire error for a session request that did not run now (PROTOCOL.md §5, as a cluster answers it). */
function sessionRefusal(session: SessionNumbers, outcome: Exclude<SessionWriteOutcome, { kind: 'ok' | 'not_admitted' }>): WireError {
  switch (outcome.kind) {
    case 'evicted': return { code: 'Evicted', message: 'the client session is unknown or was evicted; register again' };
    // A cluster drops an older request unanswered (its client times out, indeterminate): the same, at once.
    case 'stale': return {
      code: 'Indeterminate',
      message: `request ${session.request} is older than this session's last committed request ${outcome.lastRequest}: its outcome is no longer held`,
    };
    case 'busy': return { code: 'Indeterminate', message: 'this session already has a request in flight' };
    default: return assertNever(outcome);
  }
}

/**
 * A read once `needed` is applied (bounded wait): at `options.position` for `atPosition`, else at
 * the applied head. Shared by the single-node and the cluster engines.
 */
export async function readWhenApplied(
  engine: { readonly kernel: Kernel; waitApplied(needed: Position, timeoutMs: number, abort?: AbortSignal): Promise<WaitOutcome> },
  tenant: number, statement: EngineStatement, options: ReadRequest, needed: Position,
): Promise<EngineOutcome<QueryOutcome>> {
  const kernel = engine.kernel;
  const timeoutMs = readWaitMs(options.timeoutMs);
  if (needed > kernel.head) {
    const waited = await engine.waitApplied(needed, timeoutMs, options.signal);
    if (waited !== 'applied') return refused(waitError(waited, needed, timeoutMs, kernel.head));
  }
  const at = options.consistency === 'atPosition' ? options.position : kernel.head;
  const read = kernel.read(tenantId(tenant), statement.sql, statement.params, at);
  if (!read.ok) return refused(kernelError(read.error, null));
  return { ok: true, value: { position: read.position, columns: read.columns, rows: read.rows } };
}

/** The wire error for a write the engine refused before it reached the log; anything else is a bug. */
export function submitError(error: unknown): WireError {
  if (error instanceof Overloaded) return { code: 'Overloaded', message: error.message, retryAfterMs: 10 };
  if (error instanceof ClosedError) return { code: 'Unavailable', message: 'the server is shutting down' };
  if (error instanceof InvalidArgument) return { code: 'SqlError', message: error.message, sqlState: '54000', line: 0, column: 0 };
  throw error;
}

export function waitError(waited: Exclude<WaitOutcome, 'applied'>, needed: Position, timeoutMs: number, head: Position): WireError {
  switch (waited) {
    case 'timeout': return { code: 'Timeout', message: `position ${needed} was not applied within ${timeoutMs} ms (applied: ${head})` };
    case 'aborted': return { code: 'Cancelled', message: 'the read was cancelled' };
    case 'closed': return { code: 'Unavailable', message: 'the server is shutting down' };
    case 'overloaded': return { code: 'Overloaded', message: 'too many reads are waiting', retryAfterMs: 10 };
  }
}

export function refused<T>(error: WireError): EngineOutcome<T> {
  return { ok: false, error };
}

function tenantNotFound<T>(tenant: number): EngineOutcome<T> {
  return refused({ code: 'TenantNotFound', message: `tenant ${tenant} does not exist` });
}

function unavailable<T>(failure: Error): EngineOutcome<T> {
  return refused({ code: 'Unavailable', message: `the log failed and the node is stopping: ${failure.message}` });
}

/** The wire error for a kernel error; `position` is where a rejected write was logged. */
export function kernelError(error: KernelError, position: Position | null): WireError {
  const where = error.statement === null ? '' : `statement ${error.statement + 1}: `;
  const logged = position === null ? '' : ` (the attempt is logged at position ${position})`;
  const message = `${where}${error.message}${logged}`;
  switch (error.code) {
    case 'TenantNotFound': return { code: 'TenantNotFound', message };
    case 'TenantExists': return { code: 'TenantExists', message };
    case 'InvalidEntry': return { code: 'Internal', message };
  }
  if (error.sqlState === null) return { code: 'SqlError', message: `${error.code}: ${message}`, sqlState: '22023', line: 0, column: 0 };
  if (error.sqlState.startsWith('23')) {
    // The SQL layer names the constraint in its message (`… constraint "p_pkey" …`); else its code stands in.
    const named = /constraint "([^"]{1,255})"/.exec(error.message)?.[1];
    return { code: 'ConstraintViolation', message, constraint: named ?? error.code };
  }
  return { code: 'SqlError', message, sqlState: error.sqlState, line: error.line ?? 0, column: error.column ?? 0 };
}
