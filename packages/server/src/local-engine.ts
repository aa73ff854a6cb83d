import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Kernel, OPERATION, decodeEnvelope, encodeEnvelope, validateCommand, type ApplyResult, type Envelope, type KernelError,
} from '@veritydb/kernel';
import { Log } from '@veritydb/storage';
import {
  assert, limits, position as toPosition, tenantId, U128_MAX, VerityError, type Checksum, type ClientId, type ClusterId,
  type Position, type Row, type View,
} from '@veritydb/types';
import type { TenantInfo, WireError } from '@veritydb/wire';
import type {
  Engine, EngineOutcome, EngineStatement, EngineStatus, ExecuteOutcome, QueryOutcome, ReadRequest, StatementRows,
} from './engine.js';

/**
 * A single-node engine over the durable log and the kernel (DESIGN §5.7: append, fsync, apply,
 * reply). Positions are assigned at submission; appends share fdatasyncs (the log's group
 * commit); entries are applied in position order once durable, and only then answered, so a
 * read never sees a write that a crash could lose. Restart replays the log from position 1.
 *
 * This is the core that `packages/runtime` is meant to own once it exists (shared with the SDK's
 * embedded mode); the server only depends on the `Engine` interface.
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
  /** Writes submitted but not yet answered; beyond it, writes are refused with Overloaded. */
  writesInFlightMax: limits.requestQueueMax,
  /** Reads waiting for a position. */
  readWaitersMax: limits.requestQueueMax,
  /** A read's wait when the request names no timeout. */
  readWaitMsDefault: 5_000,
});

interface PendingWrite {
  readonly position: Position;
  readonly tenant: number;
  readonly timestampMicros: number;
  readonly hash: Checksum;
  readonly body: Uint8Array;
  readonly resolve: (result: ApplyResult | Error) => void;
}

interface ReadWaiter {
  readonly position: Position;
  readonly wake: () => void;
}

const CLUSTER_ID_FILE = 'cluster.id';

export class LocalEngine implements Engine {
  readonly clusterId: bigint;
  readonly #log: Log;
  readonly #kernel: Kernel;
  readonly #tenants = new Map<number, string>();
  readonly #pendingCreates = new Map<number, number>();
  readonly #pending = new Map<number, PendingWrite>();
  readonly #readWaiters = new Set<ReadWaiter>();
  readonly #listeners = new Set<(tenant: number, position: Position) => void>();
  readonly #nowMicros: () => number;
  #assigned: Position;
  #lastTimestampMicros: number;
  #failure: Error | null = null;
  #closing = false;
  #onFatal: ((error: Error) => void) | null = null;

  private constructor(clusterId: bigint, log: Log, kernel: Kernel, nowMicros: () => number) {
    this.clusterId = clusterId;
    this.#log = log;
    this.#kernel = kernel;
    this.#nowMicros = nowMicros;
    this.#assigned = kernel.head;
    this.#lastTimestampMicros = kernel.lastTimestampMicros;
  }

  /** Opens the data dir's log and rebuilds the state by replaying it. */
  static async open(options: LocalEngineOptions): Promise<LocalEngine> {
    await mkdir(options.dataDir, { recursive: true });
    const clusterId = await clusterIdentity(options.dataDir, options.clusterId);
    const log = await Log.open(options.dataDir, { cluster: clusterId as ClusterId });
    const kernel = Kernel.create();
    const tenants = new Map<number, string>();
    try {
      for await (const record of log.scan(toPosition(1))) {
        const result = kernel.apply({ position: record.position, timestampMicros: record.timestamp, tenant: record.tenant, hash: record.hash }, record.body);
        trackTenants(tenants, result, record.body);
      }
    } catch (error) {
      await log.close();
      throw error;
    }
    assert(kernel.head === log.head().position, `replay reached ${kernel.head}, the log head is ${log.head().position}`);
    if (kernel.head > 0) log.setCommitted(kernel.head);
    const nowMicros = options.nowMicros ?? (() => Date.now() * 1000);
    const engine = new LocalEngine(clusterId, log, kernel, nowMicros);
    for (const [id, name] of tenants) engine.#tenants.set(id, name);
    return engine;
  }

  /** Called once if the log fails (an fsync error): the node must stop rather than serve. */
  onFatal(listener: (error: Error) => void): void {
    this.#onFatal = listener;
  }

  createTenant(id: number, name: string, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    if (this.#tenants.has(id) || this.#pendingCreates.has(id)) return Promise.resolve(refused({ code: 'TenantExists', message: `tenant ${id} already exists` }));
    this.#pendingCreates.set(id, (this.#pendingCreates.get(id) ?? 0) + 1);
    return this.#submit(id, { tenant: tenantId(id), actor, command: { kind: 'tenant_create', id: tenantId(id), name } })
      .finally(() => this.#settleCreate(id))
      .then((outcome) => outcome.ok ? { ok: true, value: { position: outcome.value.position } } : outcome);
  }

  dropTenant(id: number, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    if (!this.#mayExist(id)) return Promise.resolve(tenantNotFound(id));
    return this.#submit(id, { tenant: tenantId(id), actor, command: { kind: 'tenant_drop', id: tenantId(id) } })
      .then((outcome) => outcome.ok ? { ok: true, value: { position: outcome.value.position } } : outcome);
  }

  listTenants(): readonly TenantInfo[] {
    return [...this.#tenants].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id: tenantId(id), name }));
  }

  async execute(tenant: number, statements: readonly EngineStatement[], actor: string): Promise<EngineOutcome<ExecuteOutcome>> {
    if (!this.#mayExist(tenant)) return tenantNotFound(tenant);
    const outcome = await this.#submit(tenant, { tenant: tenantId(tenant), actor, command: { kind: 'sql', statements } });
    if (!outcome.ok) return outcome;
    const reply = outcome.value.reply;
    assert(reply.kind === 'sql', `an sql entry replies sql, got ${reply.kind}`);
    const results: StatementRows[] = reply.statements.map((s) => ({ columns: s.columns, rows: s.rows, rowsAffected: s.rowsAffected }));
    return { ok: true, value: { position: outcome.value.position, statements: results } };
  }

  async query(tenant: number, statement: EngineStatement, options: ReadRequest): Promise<EngineOutcome<QueryOutcome>> {
    if (this.#failure !== null) return unavailable(this.#failure);
    const needed = options.consistency === 'causal' || options.consistency === 'atPosition' ? options.position : toPosition(0);
    if (needed > this.#kernel.head) {
      const waited = await this.#waitApplied(needed, options.timeoutMs > 0 ? options.timeoutMs : engineLimits.readWaitMsDefault, options.signal);
      if (!waited.ok) return waited;
    }
    // Single node: every acknowledged write is applied, so the head is linearizable.
    const at = options.consistency === 'atPosition' ? options.position : this.#kernel.head;
    const read = this.#kernel.read(tenantId(tenant), statement.sql, statement.params, at);
    if (!read.ok) return refused(kernelError(read.error, null));
    return { ok: true, value: { position: read.position, columns: read.columns, rows: read.rows } };
  }

  events(tenant: number, from: Position, stream: string | null): EngineOutcome<readonly Row[]> {
    if (!this.#kernel.hasTenant(tenantId(tenant))) return tenantNotFound(tenant);
    return { ok: true, value: [...this.#kernel.events(tenantId(tenant), from, stream ?? undefined)] };
  }

  onApplied(listener: (tenant: number, position: Position) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): EngineStatus {
    return {
      logHead: this.#log.head().position, durable: this.#log.durablePosition(), applied: this.#kernel.head,
      tenants: this.#tenants.size, writesInFlight: this.#pending.size, failure: this.#failure?.message ?? null,
    };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#failure === null) await this.#log.sync().catch(() => undefined);
    await this.#log.close();
    for (const waiter of [...this.#readWaiters]) waiter.wake();
  }

  #mayExist(tenant: number): boolean {
    return this.#kernel.hasTenant(tenantId(tenant)) || this.#pendingCreates.has(tenant);
  }

  #settleCreate(id: number): void {
    const count = (this.#pendingCreates.get(id) ?? 1) - 1;
    if (count === 0) this.#pendingCreates.delete(id);
    else this.#pendingCreates.set(id, count);
  }

  /** Logs one entry and resolves once it is durable and applied; user errors come back as values. */
  #submit(tenant: number, envelope: Envelope): Promise<EngineOutcome<ApplyResult>> {
    if (this.#failure !== null) return Promise.resolve(unavailable(this.#failure));
    if (this.#closing) return Promise.resolve(refused({ code: 'Unavailable', message: 'the server is shutting down' }));
    if (this.#pending.size >= engineLimits.writesInFlightMax) {
      return Promise.resolve(refused({ code: 'Overloaded', message: `${this.#pending.size} writes are in flight`, retryAfterMs: 10 }));
    }
    const problem = validateCommand(envelope);
    if (problem !== undefined) return Promise.resolve(refused({ code: 'SqlError', message: problem, sqlState: '54000', line: 0, column: 0 }));
    const body = encodeEnvelope(envelope);
    if (body.length > limits.recordBodyBytesMax) {
      return Promise.resolve(refused({ code: 'SqlError', message: `the request is ${body.length} bytes, an entry holds at most ${limits.recordBodyBytesMax}`, sqlState: '54000', line: 0, column: 0 }));
    }
    const position = toPosition(this.#assigned + 1);
    const timestampMicros = Math.max(this.#nowMicros(), this.#lastTimestampMicros + 1);
    let durable: Promise<Position>;
    try {
      durable = this.#log.append([{
        view: 0 as View, position, commit: toPosition(position - 1), timestamp: timestampMicros, client: 0n as ClientId,
        request: 0, tenant: tenantId(tenant), operation: OPERATION[envelope.command.kind], body,
      }]);
    } catch (error) {
      if (error instanceof VerityError && error.code === 'LogOverloaded') return Promise.resolve(refused({ code: 'Overloaded', message: error.message, retryAfterMs: 10 }));
      throw error;
    }
    this.#assigned = position;
    this.#lastTimestampMicros = timestampMicros;
    const hash = this.#log.head().hash;
    const applied = new Promise<ApplyResult | Error>((resolve) => {
      this.#pending.set(position, { position, tenant, timestampMicros, hash, body, resolve });
    });
    durable.then(() => this.#applyDurable(), (error: unknown) => this.#fail(error));
    return applied.then((result): EngineOutcome<ApplyResult> => {
      if (result instanceof Error) {
        return refused({ code: 'Indeterminate', message: `the log failed before this write was known to be durable: ${result.message}` });
      }
      return result.reply.kind === 'rejected' ? refused(kernelError(result.reply.error, result.position)) : { ok: true, value: result };
    });
  }

  /** Applies, in position order, every pending entry the log has made durable. */
  #applyDurable(): void {
    if (this.#failure !== null) return;
    const durable = this.#log.durablePosition();
    for (let next = this.#kernel.head + 1; next <= durable; next++) {
      const pending = this.#pending.get(next);
      if (pending === undefined) break;
      this.#pending.delete(next);
      let result: ApplyResult;
      try {
        result = this.#kernel.apply({ position: pending.position, timestampMicros: pending.timestampMicros, tenant: tenantId(pending.tenant), hash: pending.hash }, pending.body);
      } catch (error) {
        // A broken invariant in apply: stop rather than serve a state that may be wrong.
        pending.resolve(error instanceof Error ? error : new Error(String(error)));
        this.#fail(error);
        return;
      }
      trackTenants(this.#tenants, result, pending.body);
      this.#log.setCommitted(pending.position);
      pending.resolve(result);
      for (const listener of this.#listeners) listener(pending.tenant, pending.position);
    }
    for (const waiter of [...this.#readWaiters]) if (waiter.position <= this.#kernel.head) waiter.wake();
  }

  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error instanceof Error ? error : new Error(String(error));
    // Nothing more is applied or acknowledged: every write still waiting is indeterminate.
    for (const pending of this.#pending.values()) pending.resolve(this.#failure);
    this.#pending.clear();
    this.#onFatal?.(this.#failure);
  }

  #waitApplied(needed: Position, timeoutMs: number, signal: AbortSignal | undefined): Promise<EngineOutcome<null>> {
    if (this.#readWaiters.size >= engineLimits.readWaitersMax) {
      return Promise.resolve(refused({ code: 'Overloaded', message: `${this.#readWaiters.size} reads are waiting`, retryAfterMs: 10 }));
    }
    return new Promise((resolve) => {
      const done = (outcome: EngineOutcome<null>): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#readWaiters.delete(waiter);
        resolve(outcome);
      };
      const waiter: ReadWaiter = {
        position: needed,
        wake: () => done(this.#kernel.head >= needed ? { ok: true, value: null } : refused({ code: 'Unavailable', message: 'the server is shutting down' })),
      };
      const timer = setTimeout(() => done(refused({
        code: 'Timeout', message: `position ${needed} was not applied within ${timeoutMs} ms (applied: ${this.#kernel.head})`,
      })), timeoutMs);
      const onAbort = (): void => done(refused({ code: 'Cancelled', message: 'the read was cancelled' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#readWaiters.add(waiter);
    });
  }
}

function trackTenants(tenants: Map<number, string>, result: ApplyResult, body: Uint8Array): void {
  const reply = result.reply;
  if (reply.kind === 'tenant_created') {
    const decoded = decodeEnvelope(body);
    assert(decoded.ok && decoded.value.command.kind === 'tenant_create', 'a created tenant came from a tenant_create');
    tenants.set(reply.tenant, decoded.value.command.name);
  } else if (reply.kind === 'tenant_dropped') {
    tenants.delete(reply.tenant);
  }
}

/** Reads `<data>/cluster.id` (hex), creating it on a fresh dir; a mismatch with the config fails closed. */
async function clusterIdentity(dataDir: string, configured: bigint | null): Promise<bigint> {
  const path = join(dataDir, CLUSTER_ID_FILE);
  let text: string | null = null;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== null) {
    if (!/^[0-9a-f]{1,32}$/.test(text)) throw new VerityError('CorruptIdentity', `${path} does not hold a hex cluster id`);
    const stored = BigInt(`0x${text}`);
    if (configured !== null && configured !== stored) {
      throw new VerityError('ClusterMismatch', `${dataDir} belongs to cluster 0x${text}, the configuration says 0x${configured.toString(16)}`);
    }
    return stored;
  }
  const id = configured ?? (BigInt(`0x${randomBytes(16).toString('hex')}`) & U128_MAX) | 1n;
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w', 0o644);
  try {
    await file.writeFile(`${id.toString(16)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  return id;
}

function refused<T>(error: WireError): EngineOutcome<T> {
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
