import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { Log, type VerifyOptions, type VerifyProgress, type VerifyResult } from '@veritydb/storage';
import { encodeEnvelope, OPERATION, validateCommand, type ApplyResult, type Envelope, type Kernel } from '@veritydb/kernel';
import type { Session, SessionTable } from '@veritydb/vsr';
import {
  assert, assertNever, checksum, CHECKSUM_BYTES, clientId, clusterId as toClusterId, limits, position, tenantId, U128_MAX, VerityError, view,
  type Checksum, type Position, type TenantId,
} from '@veritydb/types';
import { describeCut, type BackupCut } from './backup-cut.js';
import { CHECKPOINT_FILE, removeStaleCheckpointTemp, writeCheckpointFile, type TenantName } from './checkpoint-file.js';
import { clusterIdentity } from './cluster-identity.js';
import { ClosedError, InvalidArgument, Overloaded } from './errors.js';
import { lockDirectory, type DirectoryLock } from './lock.js';
import { AppliedWaiters, type WaitOutcome } from './waiters.js';

export type { WaitOutcome } from './waiters.js';
import { replay, trackTenants, type Replayed } from './recovery.js';
import { applyEntry, cachedResult, checkRequest, REGISTER_ENVELOPE, type AppliedEntry, type SessionEntry } from './sessions.js';
import { JOURNAL_DIR } from './cluster/journal.js';
import type { LogReader } from './export/writer.js';

/**
 * The single-node engine: the append → apply → read path a replica runs, as a one-replica
 * cluster (DESIGN §5.7, §9). Used by `vdb-server` (behind its `Engine` seam) and by the SDK's
 * embedded mode. Writes get their position at submission, are appended to the log, acknowledged
 * only once an fdatasync covers them (group commit: concurrent writes share one), applied by
 * the kernel in position order, and only then answered, so a read never sees a write that a
 * crash could lose. Checkpoints of the whole state are written every `checkpointIntervalEntries`
 * entries and on close; open loads the latest and replays the log after it. One process at a
 * time may open a data directory (a lock file), and the directory belongs to one cluster
 * (`cluster.id`).
 *
 * Exactly-once client sessions (DESIGN §5.3) work as in a cluster: `register` logs a
 * registration and the session is its position; `submitInSession` runs request n of a session
 * at most once — a retry of the last committed request gets its cached reply, an older one is
 * refused, one of an unknown or evicted session too. The session table is derived from the log
 * at apply time (see `sessions.ts`), kept in memory, bounded, checkpointed and replayed.
 *
 * @example
 *   const engine = await SingleNodeEngine.open({ dataDir: './data', clusterId: null });
 *   const result = await engine.submit({ tenant: tenantId(1), actor: 'admin', command: { kind: 'tenant_create', id: tenantId(1), name: 'clinic' } });
 *   await engine.close();
 */
export interface EngineOptions {
  readonly dataDir: string;
  /** The cluster id the configuration names; null = the data dir's own (created at first start). */
  readonly clusterId: bigint | null;
  /** The id a fresh data dir gets when `clusterId` is null (default: a random one). */
  readonly freshClusterId?: bigint;
  /** Entries between automatic checkpoints (default `limits.checkpointIntervalOps`). */
  readonly checkpointIntervalEntries?: number;
  /** Log segment size (default the log's). */
  readonly segmentBytes?: number;
  /** Wall clock in µs since the epoch, for entry timestamps (injected for tests). */
  readonly nowMicros?: () => number;
}

export const runtimeLimits = Object.freeze({
  /** Writes submitted but not yet applied; beyond it, writes are refused with `Overloaded`. */
  writesInFlightMax: limits.requestQueueMax,
  /** Reads waiting for a position; beyond it, `waitApplied` answers `overloaded`. */
  readWaitersMax: limits.requestQueueMax,
});

/**
 * A checkpoint encodes the whole state synchronously (the store has no incremental
 * checkpoints yet), so its cost grows with the data. Periodic checkpoints therefore also wait
 * until the time since the last one is at least its cost divided by this share: checkpointing
 * never takes more than ~5% of the engine's time, whatever the data size (replay after a crash
 * grows accordingly, and is bounded the same way).
 */
export const CHECKPOINT_TIME_SHARE_MAX = 0.05;

/** The SDK's embedded databases are one-replica clusters with this id (unless the data dir
 * already names another, e.g. a server's data dir opened offline). */
export const EMBEDDED_CLUSTER = toClusterId(0x5644_4201n);

export interface EngineStatus {
  /** Last position appended to the log (durable or not). */
  readonly logHead: Position;
  readonly durable: Position;
  readonly applied: Position;
  /** Live tenants. */
  readonly tenants: number;
  /** Writes submitted and not yet answered. */
  readonly writesInFlight: number;
  /** Why the engine stopped (a failed fsync, a broken invariant), or null while it serves. */
  readonly failure: string | null;
}


export type { TenantName };

/** How a `register` ended: the session (the registration's position), or why there is none. */
export type SessionRegisterOutcome =
  | { readonly kind: 'ok'; readonly session: Position }
  /** The client id is registered and has committed requests since: a client id registers once. */
  | { readonly kind: 'stale' }
  /** The client has another request in flight (one per session at a time). */
  | { readonly kind: 'busy' };

/** How a request of a session ended. */
export type SessionWriteOutcome =
  /** Applied now, or (`duplicate`) applied before: its committed result, at its position. */
  | { readonly kind: 'ok'; readonly result: ApplyResult; readonly duplicate: boolean }
  /** The session is unknown or was evicted: the request did not execute; register again. */
  | { readonly kind: 'evicted' }
  /** Older than the session's last committed request: its outcome is no longer held. */
  | { readonly kind: 'stale'; readonly lastRequest: number }
  /** Another request of the session is in flight. Nothing was logged. */
  | { readonly kind: 'busy' }
  /** A new request `admit` refused. Nothing was logged. */
  | { readonly kind: 'not_admitted' };

interface PendingEntry extends SessionEntry {
  readonly resolve: (applied: AppliedEntry) => void;
  readonly reject: (error: unknown) => void;
}

/** A session's request in the log and not yet answered (a retry of it waits for the same answer). */
type SessionInFlight =
  | { readonly kind: 'register'; readonly outcome: Promise<SessionRegisterOutcome> }
  | { readonly kind: 'write'; readonly request: number; readonly outcome: Promise<SessionWriteOutcome> };

interface Opened extends Replayed {
  readonly clusterId: bigint;
  /** The dir belongs to a replica of a 3/5-replica cluster (it has a VSR journal): open for reading only. */
  readonly replicaDir: boolean;
  readonly log: Log;
  readonly lock: DirectoryLock;
}

export class SingleNodeEngine {
  readonly clusterId: bigint;
  readonly #dir: string;
  readonly #log: Log;
  readonly #kernel: Kernel;
  readonly #lock: DirectoryLock;
  readonly #replicaDir: boolean;
  readonly #checkpointIntervalEntries: number;
  readonly #nowMicros: () => number;
  /** Live tenants and their names, kept from applied entries (and the checkpoint). */
  readonly #tenants: Map<number, string>;
  /** Client sessions, kept from applied entries (and the checkpoint). */
  readonly #sessions: SessionTable;
  /** Per client, its request logged and not yet answered (bounded by the writes in flight). */
  readonly #sessionsInFlight = new Map<bigint, SessionInFlight>();
  /** Tenants with a create submitted and not yet answered, with how many. */
  readonly #pendingCreates = new Map<number, number>();
  readonly #pending: PendingEntry[] = [];
  readonly #readWaiters = new AppliedWaiters(() => this.#kernel.head, runtimeLimits.readWaitersMax);
  readonly #listeners = new Set<(tenant: TenantId, position: Position) => void>();
  #fatalListener: ((error: Error) => void) | null = null;
  #lastTimestampMicros: number;
  #lastAppliedHash: Checksum;
  #checkpointPosition: number;
  /** Checkpoint writes run one at a time (they share a temporary file). */
  #checkpointQueue: Promise<void> = Promise.resolve();
  #checkpointDue = false;
  /** Wall-clock end and duration of the last checkpoint, for `CHECKPOINT_TIME_SHARE_MAX`. */
  #lastCheckpointEndMs = 0;
  #lastCheckpointCostMs = 0;
  #applied = signal();
  #failure: Error | null = null;
  #state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(dir: string, options: EngineOptions, opened: Opened) {
    this.clusterId = opened.clusterId;
    this.#dir = dir;
    this.#log = opened.log;
    this.#kernel = opened.kernel;
    this.#lock = opened.lock;
    this.#replicaDir = opened.replicaDir;
    this.#tenants = opened.tenants;
    this.#sessions = opened.sessions;
    this.#checkpointIntervalEntries = options.checkpointIntervalEntries ?? limits.checkpointIntervalOps;
    this.#nowMicros = options.nowMicros ?? (() => Date.now() * 1000);
    this.#lastAppliedHash = opened.lastHash;
    this.#checkpointPosition = opened.checkpointPosition;
    this.#lastTimestampMicros = opened.kernel.lastTimestampMicros;
  }

  /** Opens (creating if needed) the data dir: loads the latest checkpoint and replays the log after it. */
  static async open(options: EngineOptions): Promise<SingleNodeEngine> {
    const interval = options.checkpointIntervalEntries;
    assert(interval === undefined || (Number.isSafeInteger(interval) && interval >= 1), 'checkpoint interval is a positive integer');
    const dir = options.dataDir;
    await mkdir(dir, { recursive: true });
    const lock = await lockDirectory(dir);
    try {
      await initCrypto();
      const clusterId = await clusterIdentity(dir, options.clusterId, options.freshClusterId);
      await removeStaleCheckpointTemp(dir);
      const cluster = toClusterId(clusterId);
      const log = await Log.open(dir, options.segmentBytes === undefined ? { cluster } : { cluster, segmentBytes: options.segmentBytes });
      try {
        const replicaDir = await stat(join(dir, JOURNAL_DIR)).then(() => true, () => false);
        const replayed = await replay(dir, log, replicaDir);
        return new SingleNodeEngine(dir, options, { clusterId, log, lock, replicaDir, ...replayed });
      } catch (error) {
        await log.close();
        throw error;
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** The kernel, for reads. Reads are synchronous and see every acknowledged write. */
  get kernel(): Kernel {
    return this.#kernel;
  }

  /** The last applied position. */
  get head(): Position {
    return this.#kernel.head;
  }

  /** The last position handed to the log (applied or about to be). */
  get logHead(): Position {
    return this.#log.head().position;
  }

  /** Open and not failed: usable for reads and writes. */
  get isOpen(): boolean {
    return this.#state === 'open' && this.#failure === null;
  }

  /** Why the engine stopped serving (failed fsync, broken invariant), or null. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Throws why the engine cannot be used (the failure, or `ClosedError`). */
  checkUsable(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#state !== 'open') throw new ClosedError();
  }

  /** Whether `tenant` is live or has a create in flight (a write to it may succeed). */
  tenantMayExist(tenant: number): boolean {
    return this.#kernel.hasTenant(tenantId(tenant)) || this.#pendingCreates.has(tenant);
  }

  /** Whether `tenant` is live or has a create in flight (a new create of it would fail). */
  tenantIsTaken(tenant: number): boolean {
    return this.#tenants.has(tenant) || this.#pendingCreates.has(tenant);
  }

  /** The live tenants, by id. */
  listTenants(): TenantName[] {
    return [...this.#tenants].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name }));
  }

  /**
   * Appends one entry; the promise resolves with what applying it did, once it is durable and
   * applied. Throws (synchronously) when the entry is refused before reaching the log: the
   * failure, `ClosedError`, `Overloaded`, `InvalidArgument`. Once `submit` returns, the entry is
   * in the log's hands; if the engine then fails, the promise rejects with the failure (the
   * write may or may not have been made durable).
   */
  submit(envelope: Envelope): Promise<ApplyResult> {
    return this.#append(envelope, 0n, 0).then((applied) => applied.result);
  }

  /**
   * Registers client session `client` (a u128, not 0): logs a registration and resolves with
   * its position, which identifies the session. A client registered with no request since gets
   * its registration again. Throws (synchronously) as `submit` does when refused before the log.
   *
   * @example
   *   const registered = await engine.register(7n); // { kind: 'ok', session: 12 }
   */
  register(client: bigint): Promise<SessionRegisterOutcome> {
    checkClient(client);
    this.checkUsable();
    const inFlight = this.#sessionsInFlight.get(client);
    if (inFlight !== undefined) return inFlight.kind === 'register' ? inFlight.outcome : Promise.resolve({ kind: 'busy' });
    const verdict = this.#sessions.check(client, 0, 0);
    if (verdict.kind === 'duplicate') return Promise.resolve({ kind: 'ok', session: position(verdict.op) });
    if (verdict.kind !== 'new') return Promise.resolve({ kind: 'stale' });
    const applied = this.#append(REGISTER_ENVELOPE, client, 0);
    const outcome = applied.then((entry): SessionRegisterOutcome => {
      assert(entry.verdict === 'registered', `a registration applies as one, got ${entry.verdict}`);
      return { kind: 'ok', session: entry.result.position };
    });
    return this.#track(client, { kind: 'register', outcome });
  }

  /**
   * Request `request` (≥ 1) of `client`'s session: applied at most once, however often it is
   * submitted. The session's last committed request answers with its cached result (same
   * position, same reply); a new one is logged (after `admit`, if given, allows it) and
   * applied. Throws (synchronously) as `submit` does when a new request is refused before the log.
   *
   * @example
   *   const first = await engine.submitInSession(7n, 1, envelope);  // { kind: 'ok', duplicate: false, result }
   *   const again = await engine.submitInSession(7n, 1, envelope);  // { kind: 'ok', duplicate: true, result } (same position)
   */
  submitInSession(client: bigint, request: number, envelope: Envelope, admit?: () => boolean): Promise<SessionWriteOutcome> {
    checkClient(client);
    if (!Number.isInteger(request) || request < 1 || request > 0xffff_ffff) {
      throw new InvalidArgument(`request number ${request} is not in [1, 2^32): 0 is the registration`);
    }
    this.checkUsable();
    const inFlight = this.#sessionsInFlight.get(client);
    if (inFlight !== undefined) {
      return inFlight.kind === 'write' && inFlight.request === request ? inFlight.outcome : Promise.resolve({ kind: 'busy' });
    }
    const answered = this.#answerFromTable(client, request);
    if (answered !== null) return Promise.resolve(answered);
    if (admit !== undefined && !admit()) return Promise.resolve({ kind: 'not_admitted' });
    const applied = this.#append(envelope, client, request);
    const outcome = applied.then((entry) => this.#sessionOutcome(client, request, entry));
    return this.#track(client, { kind: 'write', request, outcome });
  }

  /** The committed state of `client`'s session (null: unknown or evicted), e.g. to compare cached replies. */
  session(client: bigint): Session | null {
    return this.#sessions.get(client) ?? null;
  }

  /** Sessions in the table (at most `limits.clientSessionsMax`). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  #append(envelope: Envelope, client: bigint, request: number): Promise<AppliedEntry> {
    this.checkUsable();
    if (this.#replicaDir) {
      throw new InvalidArgument(`${this.#dir} is the data dir of a cluster replica: here it can be read (verify, export, backup) but writes go through vdb-server`);
    }
    if (this.#pending.length >= runtimeLimits.writesInFlightMax) throw new Overloaded(`${this.#pending.length} writes are in flight`);
    const problem = validateCommand(envelope);
    if (problem !== undefined) throw new InvalidArgument(problem);
    const body = encodeEnvelope(envelope);
    if (body.length > limits.recordBodyBytesMax) {
      throw new InvalidArgument(`the request is ${body.length} bytes, an entry holds at most ${limits.recordBodyBytesMax}`);
    }
    const at = position(this.#log.head().position + 1);
    const timestampMicros = Math.max(this.#nowMicros(), this.#lastTimestampMicros + 1);
    const operation = OPERATION[envelope.command.kind];
    let durable: Promise<Position>;
    try {
      durable = this.#log.append([{
        view: view(0), position: at, commit: this.#log.committedPosition(), timestamp: timestampMicros, client: clientId(client), request,
        tenant: envelope.tenant, operation, body,
      }]);
    } catch (error) {
      if (error instanceof VerityError && error.code === 'LogOverloaded') throw new Overloaded(error.message);
      throw error;
    }
    this.#lastTimestampMicros = timestampMicros;
    const hash = this.#log.head().hash;
    const result = new Promise<AppliedEntry>((resolve, reject) => {
      this.#pending.push({ position: at, timestampMicros, tenant: envelope.tenant, hash, client, request, operation, body, resolve, reject });
    });
    durable.then((upTo) => this.#applyDurable(upTo), (error: unknown) => this.#fail(error));
    if (envelope.command.kind !== 'tenant_create') return result;
    const created = envelope.command.id;
    this.#pendingCreates.set(created, (this.#pendingCreates.get(created) ?? 0) + 1);
    return result.finally(() => this.#settleCreate(created));
  }

  /** Checks the log's chains (see `Log.verify`). */
  async verify(options: VerifyOptions, onProgress?: VerifyProgress): Promise<VerifyResult> {
    this.checkUsable();
    return this.#log.verify(options, onProgress);
  }

  /** The log, read-only: what a serving node verifies and exports from (see `prepareTenantExport`). */
  get auditLog(): LogReader {
    this.checkUsable();
    return this.#log;
  }

  /** Resolves at the next apply (or close, or failure): for followers of the log. */
  nextApplied(): Promise<void> {
    return this.#applied.promise;
  }

  /**
   * Waits (bounded: at most `timeoutMs`, at most `runtimeLimits.readWaitersMax` waiters) until
   * `needed` is applied. Never rejects: how the wait ended is the value.
   */
  waitApplied(needed: Position, timeoutMs: number, abort?: AbortSignal): Promise<WaitOutcome> {
    return this.#readWaiters.wait(needed, timeoutMs, this.isOpen, abort);
  }

  /** Called after every applied entry with its tenant and position; returns an unsubscribe. */
  onApplied(listener: (tenant: TenantId, position: Position) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once if the engine fails (an fsync error, a broken invariant): the node must stop
   * rather than serve. */
  onFatal(listener: (error: Error) => void): void {
    this.#fatalListener = listener;
  }

  status(): EngineStatus {
    return {
      logHead: this.#log.head().position, durable: this.#log.durablePosition(), applied: this.#kernel.head,
      tenants: this.#tenants.size, writesInFlight: this.#pending.length, failure: this.#failure?.message ?? null,
    };
  }

  /** Writes a checkpoint of everything applied so far. */
  async checkpoint(): Promise<Position> {
    this.checkUsable();
    await this.#queueCheckpoint();
    return position(this.#checkpointPosition);
  }

  /**
   * A consistent cut of the data dir for a backup taken while the engine keeps serving (see
   * `BackupCut`): a checkpoint written now, its file held open, and the log up to its position.
   * The copy opens at `position` with `stateHash`. Call `release` when the copy is done.
   *
   * @example
   *   const cut = await engine.backupCut();
   *   try { for (const file of cut.files) for await (const chunk of file.chunks(1 << 20)) write(file.path, chunk); }
   *   finally { await cut.release(); }
   */
  async backupCut(): Promise<BackupCut> {
    this.checkUsable();
    // Inside the checkpoint queue: no other checkpoint can replace the file before it is opened.
    const run = this.#checkpointQueue.then(async () => {
      const taken = await this.#writeCheckpoint();
      return { ...taken, handle: await open(join(this.#dir, CHECKPOINT_FILE), 'r') };
    });
    this.#checkpointQueue = run.then(() => undefined, () => undefined);
    const { position: at, stateHash, handle } = await run;
    let prefix;
    try {
      prefix = await this.#log.prefixFiles(at);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return describeCut(this.#dir, { clusterId: this.clusterId, position: at, stateHash }, handle, prefix);
  }

  /** Stops taking writes, waits for the ones in flight, writes a final checkpoint, closes the
   * log and releases the directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    try {
      if (this.#failure === null) {
        await this.#log.sync().catch((error: unknown) => this.#fail(error));
        if (this.#failure === null) this.#applyDurable(this.#log.durablePosition());
        await this.#checkpointQueue;
        if (this.#failure === null && this.#kernel.head > this.#checkpointPosition) await this.#queueCheckpoint();
      }
    } finally {
      this.#state = 'closed';
      await this.#log.close();
      await this.#lock.release();
      this.#wake();
    }
  }

  /** A request the table answers without logging it: its cached result, or why it cannot run (null: new). */
  #answerFromTable(client: bigint, request: number): SessionWriteOutcome | null {
    const verdict = checkRequest(this.#sessions, client, request);
    switch (verdict.kind) {
      case 'new': return null;
      case 'duplicate': return { kind: 'ok', result: cachedResult(verdict.reply, verdict.op), duplicate: true };
      case 'stale': return { kind: 'stale', lastRequest: (this.#sessions.get(client) as Session).request };
      case 'evicted': return { kind: 'evicted' };
      default: return assertNever(verdict);
    }
  }

  /** What a logged request of a session came to, as its apply decided. */
  #sessionOutcome(client: bigint, request: number, entry: AppliedEntry): SessionWriteOutcome {
    if (entry.verdict === 'executed') return { kind: 'ok', result: entry.result, duplicate: false };
    // One request per session is in flight, so the only thing that can come between its
    // admission and its apply is a registration (of another client) that evicts its session.
    assert(entry.verdict === 'evicted', `request ${request} of client ${client} applied as ${entry.verdict}`);
    return { kind: 'evicted' };
  }

  /** Remembers `client`'s request in flight until it is answered (or the engine fails). */
  #track<T>(client: bigint, inFlight: SessionInFlight & { readonly outcome: Promise<T> }): Promise<T> {
    this.#sessionsInFlight.set(client, inFlight);
    const forget = (): void => {
      if (this.#sessionsInFlight.get(client) === inFlight) this.#sessionsInFlight.delete(client);
    };
    inFlight.outcome.then(forget, forget);
    return inFlight.outcome;
  }

  #settleCreate(id: number): void {
    const count = (this.#pendingCreates.get(id) ?? 1) - 1;
    if (count === 0) this.#pendingCreates.delete(id);
    else this.#pendingCreates.set(id, count);
  }

  /** Applies, in position order, every pending entry up to `upTo` (durable). */
  #applyDurable(upTo: number): void {
    if (this.#failure !== null) return;
    if (upTo > this.#log.committedPosition()) this.#log.setCommitted(position(upTo));
    let appliedAny = false;
    while (this.#pending.length > 0 && (this.#pending[0] as PendingEntry).position <= upTo) {
      const entry = this.#pending.shift() as PendingEntry;
      let applied: AppliedEntry;
      try {
        applied = applyEntry(this.#kernel, this.#sessions, entry);
      } catch (error) {
        // A broken invariant in apply: stop rather than serve a state that may be wrong.
        entry.reject(error);
        this.#fail(error);
        return;
      }
      this.#lastAppliedHash = entry.hash;
      trackTenants(this.#tenants, applied.result, entry.body);
      appliedAny = true;
      entry.resolve(applied);
      for (const listener of this.#listeners) listener(entry.tenant, entry.position);
    }
    if (!appliedAny) return;
    this.#wake();
    if (this.#checkpointIsDue()) {
      this.#checkpointDue = true;
      this.#queueCheckpoint()
        .catch((error: unknown) => this.#fail(error))
        .finally(() => { this.#checkpointDue = false; });
    }
  }

  #checkpointIsDue(): boolean {
    if (this.#checkpointDue || this.#state !== 'open') return false;
    if (this.#kernel.head - this.#checkpointPosition < this.#checkpointIntervalEntries) return false;
    return Date.now() - this.#lastCheckpointEndMs >= this.#lastCheckpointCostMs / CHECKPOINT_TIME_SHARE_MAX;
  }

  #queueCheckpoint(): Promise<void> {
    const run = this.#checkpointQueue.then(async () => { await this.#writeCheckpoint(); });
    this.#checkpointQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Captures the state now (synchronously, so it is one consistent position), then writes it.
   * Resolves with the position and the state hash it captured.
   */
  async #writeCheckpoint(): Promise<{ readonly position: Position; readonly stateHash: Checksum }> {
    const startedMs = Date.now();
    const file = {
      position: this.#kernel.head, recordHash: this.#lastAppliedHash, tenants: this.listTenants(), sessions: this.#sessions.encode(),
      payload: this.#kernel.checkpoint(),
    };
    await writeCheckpointFile(this.#dir, file);
    this.#checkpointPosition = Math.max(this.#checkpointPosition, file.position);
    this.#lastCheckpointEndMs = Date.now();
    this.#lastCheckpointCostMs = this.#lastCheckpointEndMs - startedMs;
    // `Kernel.stateHash` is the checksum that ends its checkpoint image: taken from the image
    // already encoded rather than by encoding the whole state a second time.
    return { position: file.position, stateHash: checksum(file.payload.slice(file.payload.length - CHECKSUM_BYTES)) };
  }

  /** A failed fsync or a broken invariant stops the engine: nothing more is applied or acknowledged. */
  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error instanceof Error ? error : new VerityError('EngineFailed', String(error));
    for (const entry of this.#pending.splice(0)) entry.reject(this.#failure);
    this.#wake();
    this.#fatalListener?.(this.#failure);
  }

  /** Wakes followers (`nextApplied`) and the read waiters whose position is applied (all of
   * them once the engine no longer serves). */
  #wake(): void {
    const current = this.#applied;
    this.#applied = signal();
    current.resolve();
    this.#readWaiters.wake(this.isOpen);
  }
}

/** A session's client id is a u128 other than 0 (0 marks a write outside any session in the log). */
function checkClient(client: bigint): void {
  if (client < 1n || client > U128_MAX) throw new InvalidArgument(`client id ${client} is not in [1, 2^128)`);
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}
