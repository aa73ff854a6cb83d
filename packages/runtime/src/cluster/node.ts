import { randomBytes, randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { initCrypto } from '@veritydb/crypto';
import {
  decodeReply, encodeEnvelope, Kernel, SYSTEM_TENANT, validateCommand, type ApplyResult, type Envelope,
} from '@veritydb/kernel';
import {
  assert, assertNever, clientId, clusterId as toClusterId, limits, position, Prng, U128_MAX, VerityError, view, type ClusterId, type Position,
  type TenantId,
} from '@veritydb/types';
import {
  decodeMessage, encodeMessage, FROM_CLIENT, Replica, type Effect, type EvictionMessage, type Message, type ReplyMessage,
  type RequestMessage,
} from '@veritydb/vsr';
import { clusterIdentity } from '../cluster-identity.js';
import { trackTenants } from '../recovery.js';
import { ClosedError, InvalidArgument, Overloaded } from '../errors.js';
import { lockDirectory, type DirectoryLock } from '../lock.js';
import type { TenantName } from '../engine.js';
import { AppliedWaiters, type WaitOutcome } from '../waiters.js';
import { Journal } from './journal.js';
import { Ledger, type LedgerView } from './ledger.js';
import { KernelMachine } from './machine.js';
import { KERNEL_OPTIONS } from '../recovery.js';

/**
 * One replica of a 3- or 5-replica cluster on real disks, sockets and clocks (DESIGN §5, §9):
 * the driver of the pure `Replica`. It turns timers into ticks, performs the replica's effects —
 * journal and superblock writes through `Journal` (group commit, completion in issue order),
 * messages to peers through a `PeerTransport`, replies to the requests waiting here — and applies
 * committed ops through the kernel (`KernelMachine`), which serves reads.
 *
 * Writes are taken only by the primary (elsewhere `submit` answers `not_primary` with the
 * primary's index). Every write is a request of a VSR client session: the caller's own session
 * (exactly-once across retries and failover: `register` + `submitInSession`) or one of a pool of
 * sessions this node registers for callers without one (`submit`). A write whose primary loses
 * its view before the reply is `indeterminate`: it may still commit under the next primary.
 *
 * @example
 *   const node = await ClusterNode.open({ dataDir, clusterId, replica: 0, replicaCount: 3 });
 *   node.start({ send: (to, bytes) => peers[to].write(bytes) });
 *   const outcome = await node.submit(envelope, 5_000);
 */
export interface ClusterNodeOptions {
  readonly dataDir: string;
  readonly clusterId: bigint;
  readonly replica: number;
  readonly replicaCount: number;
  /** Milliseconds per replica tick (default 10: a backup suspects its primary after ~0.4 s). */
  readonly tickMs?: number;
  /** Wall clock in µs since the epoch, for the primary's timestamps (injected for tests). */
  readonly nowMicros?: () => number;
  /**
   * What an empty data dir (no superblock) means: `format` — a replica of a brand-new cluster
   * (the default); `rejoin` — a member of an existing cluster whose disk was lost, which takes no
   * part in consensus until it holds the current view's log (DESIGN §5.6, amnesia).
   */
  readonly whenEmpty?: 'format' | 'rejoin';
}

/** Sends one encoded replica message to replica `to`; may drop it (the protocol re-sends). */
export interface PeerTransport {
  send(to: number, bytes: Uint8Array): void;
}

export const clusterNodeLimits = Object.freeze({
  tickMsDefault: 10,
  /** Sessions this node registers for writes that come without one. */
  internalSessionsMax: 64,
  /** Writes waiting here (in the replica or for a pooled session); beyond it: `Overloaded`. */
  writesInFlightMax: limits.requestQueueMax,
  /** Reads waiting for a position. */
  readWaitersMax: limits.requestQueueMax,
  /** A request not yet answered is handed to the replica again after this long (lost prepares, a full queue). */
  resendMs: 250,
});

/** How a write ended. Only `ok` means it committed and was applied. */
export type WriteOutcome =
  | { readonly kind: 'ok'; readonly result: ApplyResult }
  /** This replica is not the primary (`primary`: its index, or null during a view change). Nothing was logged. */
  | { readonly kind: 'not_primary'; readonly primary: number | null }
  /** The write may or may not have committed (timeout, or the primary lost its view). */
  | { readonly kind: 'indeterminate'; readonly reason: string }
  /** The caller's session is unknown or evicted: register again. The request did not execute under it. */
  | { readonly kind: 'evicted' };

export type RegisterOutcome =
  | { readonly kind: 'ok'; readonly session: number }
  | { readonly kind: 'not_primary'; readonly primary: number | null }
  | { readonly kind: 'indeterminate'; readonly reason: string };

export interface ClusterNodeStatus {
  readonly replica: number;
  readonly replicaCount: number;
  readonly view: number;
  readonly status: 'normal' | 'view_change';
  readonly isPrimary: boolean;
  /** The primary of the current view (null during a view change). */
  readonly primary: number | null;
  readonly op: number;
  readonly commit: number;
  readonly applied: Position;
  readonly tenants: number;
  readonly writesInFlight: number;
  readonly failure: string | null;
}

interface Pending {
  readonly message: RequestMessage;
  sentMs: number;
  readonly settle: (outcome: ReplyMessage | EvictionMessage | { readonly kind: 'lost'; readonly reason: string }) => void;
}

interface PooledSession {
  readonly client: bigint;
  readonly session: number;
  request: number;
}

export class ClusterNode {
  readonly clusterId: bigint;
  readonly replicaIndex: number;
  readonly replicaCount: number;
  readonly #cluster: ClusterId;
  readonly #replica: Replica;
  readonly #machine: KernelMachine;
  readonly #journal: Journal;
  readonly #ledger: Ledger;
  /** What the kernel applied in the current replica step, in op order, for the ledger records its `committed` effects complete. */
  readonly #applied: { op: number; tenant: TenantId; body: Uint8Array; operation: number }[] = [];
  readonly #lock: DirectoryLock;
  readonly #tickMs: number;
  readonly #nowMicros: () => number;
  readonly #tenants = new Map<number, string>();
  /** Client → the op of its committed registration (what the replicas' session tables hold). */
  readonly #sessions = new Map<bigint, number>();
  readonly #pending = new Map<bigint, Pending>();
  readonly #pool: PooledSession[] = [];
  #poolSize = 0;
  readonly #poolWaiters: ((session: PooledSession | null) => void)[] = [];
  readonly #readWaiters = new AppliedWaiters(() => this.head, clusterNodeLimits.readWaitersMax);
  readonly #appliedListeners = new Set<(tenant: TenantId, position: Position) => void>();
  readonly #viewListeners = new Set<() => void>();
  #transport: PeerTransport | null = null;
  #timer: NodeJS.Timeout | null = null;
  #failure: Error | null = null;
  #fatal: ((error: Error) => void) | null = null;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #lastStatus = '';
  #barrier: Promise<WriteOutcome> | null = null;
  #barrierNext: Promise<WriteOutcome> | null = null;

  private constructor(options: ClusterNodeOptions, init: {
    replica: Replica; machine: KernelMachine; journal: Journal; ledger: Ledger; lock: DirectoryLock; tenants: Map<number, string>;
  }) {
    this.clusterId = options.clusterId;
    this.replicaIndex = options.replica;
    this.replicaCount = options.replicaCount;
    this.#cluster = toClusterId(options.clusterId);
    this.#replica = init.replica;
    this.#machine = init.machine;
    this.#journal = init.journal;
    this.#ledger = init.ledger;
    this.#ledger.onFailure((error) => this.#fail(error));
    this.#lock = init.lock;
    this.#tenants = init.tenants;
    this.#tickMs = options.tickMs ?? clusterNodeLimits.tickMsDefault;
    this.#nowMicros = options.nowMicros ?? (() => Date.now() * 1000);
  }

  /**
   * Opens the data dir (one process at a time; it must belong to this cluster and replica) and
   * restores the replica from its superblock and journal, or formats a fresh one. The kernel
   * starts empty and catches up by applying the committed log.
   */
  /** Whether `dataDir` holds a replica's superblock (an empty or missing dir does not). */
  static async hasState(dataDir: string): Promise<boolean> {
    return Journal.hasSuperblock(dataDir);
  }

  static async open(options: ClusterNodeOptions): Promise<ClusterNode> {
    assert(options.replicaCount === 3 || options.replicaCount === 5, `a cluster has 3 or 5 replicas, not ${options.replicaCount}`);
    assert(Number.isInteger(options.replica) && options.replica >= 0 && options.replica < options.replicaCount, 'replica index in the cluster');
    await mkdir(options.dataDir, { recursive: true });
    const lock = await lockDirectory(options.dataDir);
    try {
      await initCrypto();
      await clusterIdentity(options.dataDir, options.clusterId, undefined);
      const { journal, opened } = await Journal.open(options.dataDir);
      let ledger: Ledger | null = null;
      try {
        ledger = await Ledger.open(options.dataDir, options.clusterId);
        const cluster = toClusterId(options.clusterId);
        const tenants = new Map<number, string>();
        // The node exists only after the replica does; the machine reports applies through this indirection.
        const sink: { node: ClusterNode | null } = { node: null };
        const machine = new KernelMachine(Kernel.create(KERNEL_OPTIONS), (op, tenant, operation, result, body) => {
          if (result !== null) trackTenants(tenants, result, body);
          if (sink.node !== null) sink.node.#afterApply(op, tenant, operation, body);
        });
        const replicaOptions = {
          cluster, replica: options.replica, replicaCount: options.replicaCount, machine, prng: new Prng(randomInt(0, 2 ** 31)),
        };
        let replica: Replica;
        if (opened.durable === null && options.whenEmpty === 'rejoin') {
          // No superblock yet: the first one is written when the replica installs a view's log.
          replica = Replica.rejoin(replicaOptions);
        } else if (opened.durable === null) {
          replica = Replica.format(replicaOptions);
          await journal.writeSuperblock({
            cluster, replica: options.replica, replicaCount: options.replicaCount, view: 0, logView: 0, commitMax: 0, checkpoint: 0, viewHeaders: [],
          });
        } else {
          const sb = opened.durable.superblock;
          if (sb.cluster !== cluster || sb.replica !== options.replica || sb.replicaCount !== options.replicaCount) {
            throw new VerityError('SuperblockMismatch', `${options.dataDir} holds replica ${sb.replica} of ${sb.replicaCount} in cluster 0x${sb.cluster.toString(16)}; `
              + `the configuration says replica ${options.replica} of ${options.replicaCount} in cluster 0x${options.clusterId.toString(16)}; refusing to start`);
          }
          replica = Replica.open(replicaOptions, opened.durable);
        }
        const node = new ClusterNode(options, { replica, machine, journal, ledger, lock, tenants });
        sink.node = node;
        return node;
      } catch (error) {
        await journal.close();
        await ledger?.close().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Starts ticking and sending: from now on the replica takes part in the cluster. */
  start(transport: PeerTransport): void {
    assert(this.#transport === null, 'started once');
    this.#transport = transport;
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
  }

  /** A replica message from a peer (raw bytes: checksum and cluster are checked before use). */
  onPeerMessage(bytes: Uint8Array): { ok: true } | { ok: false; reason: string } {
    if (!this.#serving()) return { ok: true };
    const decoded = decodeMessage(this.#cluster, bytes);
    if (!decoded.ok) return decoded;
    const message: Message = decoded.value;
    if (message.from >= this.replicaCount || message.from === this.replicaIndex) return { ok: false, reason: `message from replica ${message.from}` };
    if (message.kind === 'reply' || message.kind === 'eviction') {
      // Answers go to clients through the wire protocol, never between replicas. (A `request`
      // may come from a peer: a backup forwards the requests it is handed to its primary.)
      return { ok: false, reason: `a ${message.kind} is not a replica message` };
    }
    this.#perform(() => this.#replica.onMessage(message));
    return { ok: true };
  }

  get kernel(): Kernel {
    return this.#machine.kernel;
  }

  /** This replica's ledger (its committed ops in the storage log format), read-only: verify, export. */
  get ledger(): LedgerView {
    return this.#ledger.view();
  }

  get head(): Position {
    return this.#machine.kernel.head;
  }

  get failure(): Error | null {
    return this.#failure;
  }

  get isOpen(): boolean {
    return this.#state === 'open' && this.#failure === null;
  }

  /** The primary's index when this replica is in a normal view, else null. */
  get primary(): number | null {
    return this.#replica.status === 'normal' ? this.#replica.view % this.replicaCount : null;
  }

  /** This replica takes writes now: the primary of a normal view that hears a quorum (not abdicated). */
  get acceptsWrites(): boolean {
    return this.#notPrimary() === null;
  }

  /** In a normal view and every op known committed is applied: safe to serve reads that need recent state. */
  get ready(): boolean {
    const r = this.#replica;
    // A primary that abdicated (it stopped hearing a quorum) is about to be replaced: not ready.
    return this.isOpen && r.status === 'normal' && r.commitMin === r.commitMax && !(r.isPrimary && r.abdicated);
  }

  status(): ClusterNodeStatus {
    const r = this.#replica;
    return {
      replica: this.replicaIndex, replicaCount: this.replicaCount, view: r.view, status: r.status, isPrimary: r.status === 'normal' && r.isPrimary,
      primary: this.primary, op: r.op, commit: r.commitMax, applied: this.head, tenants: this.#tenants.size,
      writesInFlight: this.#pending.size + this.#poolWaiters.length, failure: this.#failure?.message ?? null,
    };
  }

  /**
   * The applied position, the kernel's state hash there and the log's chain hash (the header
   * checksum of that op): replicas at the same position must agree on both.
   */
  stateSummary(): { readonly applied: Position; readonly stateHash: string; readonly chainHash: string } {
    const applied = this.head;
    const header = this.#replica.header(applied);
    return {
      applied, stateHash: Buffer.from(this.#machine.kernel.stateHash()).toString('hex'),
      chainHash: header === undefined ? '' : Buffer.from(header.checksum).toString('hex'),
    };
  }

  listTenants(): TenantName[] {
    return [...this.#tenants].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name }));
  }

  tenantExists(id: number): boolean {
    return this.#tenants.has(id);
  }

  onApplied(listener: (tenant: TenantId, position: Position) => void): () => void {
    this.#appliedListeners.add(listener);
    return () => this.#appliedListeners.delete(listener);
  }

  onFatal(listener: (error: Error) => void): void {
    this.#fatal = listener;
  }

  /** Resolves at the next view or status change (or close), or after `timeoutMs`, whichever is first. */
  nextViewChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#viewListeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#viewListeners.add(done);
    });
  }

  /** One write through a pooled session (no exactly-once across the caller's retries). */
  async submit(envelope: Envelope, timeoutMs: number, signal?: AbortSignal): Promise<WriteOutcome> {
    const body = this.#checkWrite(envelope);
    const notPrimary = this.#notPrimary();
    if (notPrimary !== null) return notPrimary;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const session = await this.#acquire(deadline, signal);
      if (session === null) return { kind: 'indeterminate', reason: `no client session became free within ${timeoutMs} ms` };
      if ('kind' in session) return session;
      session.request += 1;
      const outcome = await this.#request({
        kind: 'request', from: FROM_CLIENT, client: session.client, session: session.session, request: session.request, operation: 'normal', body,
      }, deadline, signal);
      if (outcome.kind === 'evicted') {
        // Evicted before it executed: drop the session and go again with a fresh one.
        this.#release(null);
        continue;
      }
      this.#release(outcome.kind === 'ok' ? session : null);
      return outcome;
    }
  }

  /** Registers the caller's client session (request number 0); the session is the register's op. */
  async register(client: bigint, timeoutMs: number, signal?: AbortSignal): Promise<RegisterOutcome> {
    this.checkUsable();
    const notPrimary = this.#notPrimary();
    if (notPrimary !== null) return notPrimary;
    if (this.#pending.has(client)) return { kind: 'indeterminate', reason: 'this client already has a request in flight' };
    const outcome = await this.#send({
      kind: 'request', from: FROM_CLIENT, client, session: 0, request: 0, operation: 'register', body: new Uint8Array(0),
    }, Date.now() + timeoutMs, signal);
    if (outcome.kind === 'reply') return { kind: 'ok', session: outcome.op };
    if (outcome.kind === 'eviction') return { kind: 'indeterminate', reason: 'the registration was evicted at once' };
    return { kind: 'indeterminate', reason: outcome.reason };
  }

  /** One write as request `request` of the caller's registered session: exactly once, whatever the retries. */
  async submitInSession(client: bigint, request: number, envelope: Envelope, timeoutMs: number, signal?: AbortSignal): Promise<WriteOutcome> {
    const body = this.#checkWrite(envelope);
    const notPrimary = this.#notPrimary();
    if (notPrimary !== null) return notPrimary;
    const deadline = Date.now() + timeoutMs;
    // A primary that just took over may still be applying the log that holds the registration.
    while (this.#replica.commitMin < this.#replica.commitMax && Date.now() < deadline && this.isOpen) await sleep(this.#tickMs);
    const session = this.#sessions.get(client);
    if (session === undefined) return { kind: 'evicted' };
    if (this.#pending.has(client)) return { kind: 'indeterminate', reason: 'this session already has a request in flight' };
    return this.#request({ kind: 'request', from: FROM_CLIENT, client, session, request, operation: 'normal', body }, deadline, signal);
  }

  /**
   * Waits until a no-op committed by this primary after the call began is applied: every write
   * acknowledged before the call is then applied here, and this replica was the primary of a
   * view a quorum accepted (a deposed primary cannot commit). Concurrent calls share no-ops.
   */
  async linearizableBarrier(timeoutMs: number, signal?: AbortSignal): Promise<WriteOutcome> {
    // A barrier already in flight may have been proposed before this call began: wait for the next one.
    if (this.#barrier === null) {
      this.#barrier = this.#runBarrier(timeoutMs, signal);
      return this.#barrier;
    }
    this.#barrierNext ??= this.#barrier.then(() => {
      this.#barrier = this.#barrierNext;
      this.#barrierNext = null;
      return this.#runBarrier(timeoutMs, signal);
    });
    return this.#barrierNext;
  }

  async #runBarrier(timeoutMs: number, signal?: AbortSignal): Promise<WriteOutcome> {
    try {
      return await this.submit({ tenant: SYSTEM_TENANT, actor: '', command: { kind: 'noop' } }, timeoutMs, signal);
    } finally {
      if (this.#barrierNext === null) this.#barrier = null;
    }
  }

  /** Waits (bounded) until `needed` is applied here. Never rejects. */
  waitApplied(needed: Position, timeoutMs: number, abort?: AbortSignal): Promise<WaitOutcome> {
    return this.#readWaiters.wait(needed, timeoutMs, this.isOpen, abort);
  }

  checkUsable(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#state !== 'open') throw new ClosedError();
  }

  /** Stops ticking, answers what waits (indeterminate), makes the journal durable and closes it. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const pending of [...this.#pending.values()]) pending.settle({ kind: 'lost', reason: 'the server is shutting down' });
    for (const waiter of this.#poolWaiters.splice(0)) waiter(null);
    try {
      await this.#journal.close();
      await this.#ledger.close();
    } finally {
      this.#state = 'closed';
      await this.#lock.release();
      this.#wake();
      for (const listener of [...this.#viewListeners]) listener();
    }
  }

  // ------------------------------------------------------------------ internals

  #serving(): boolean {
    return this.#state === 'open' && this.#failure === null && this.#transport !== null;
  }

  #checkWrite(envelope: Envelope): Uint8Array {
    this.checkUsable();
    if (this.#pending.size + this.#poolWaiters.length >= clusterNodeLimits.writesInFlightMax) {
      throw new Overloaded(`${this.#pending.size + this.#poolWaiters.length} writes are in flight`);
    }
    const problem = validateCommand(envelope);
    if (problem !== undefined) throw new InvalidArgument(problem);
    const body = encodeEnvelope(envelope);
    if (body.length > limits.recordBodyBytesMax) {
      throw new InvalidArgument(`the request is ${body.length} bytes, an entry holds at most ${limits.recordBodyBytesMax}`);
    }
    return body;
  }

  #notPrimary(): { kind: 'not_primary'; primary: number | null } | null {
    const r = this.#replica;
    if (r.status === 'normal' && r.isPrimary && !r.abdicated) return null;
    return { kind: 'not_primary', primary: this.primary };
  }

  async #request(message: RequestMessage, deadline: number, signal?: AbortSignal): Promise<WriteOutcome> {
    const outcome = await this.#send(message, deadline, signal);
    switch (outcome.kind) {
      case 'reply': {
        const reply = decodeReply(outcome.body);
        assert(reply.ok, `a committed reply decodes: ${reply.ok ? '' : reply.reason}`);
        return { kind: 'ok', result: { position: position(outcome.op), actor: '', reply: reply.value, events: [] } };
      }
      case 'eviction': return { kind: 'evicted' };
      case 'lost': return { kind: 'indeterminate', reason: outcome.reason };
      default: return assertNever(outcome);
    }
  }

  /** Hands a request to the replica and waits for its reply (re-handing it while unanswered). */
  #send(message: RequestMessage, deadline: number, signal?: AbortSignal): Promise<ReplyMessage | EvictionMessage | { kind: 'lost'; reason: string }> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const onAbort = (): void => pending.settle({ kind: 'lost', reason: 'cancelled while in flight' });
      const pending: Pending = {
        message, sentMs: Date.now(),
        settle: (outcome) => {
          if (this.#pending.get(message.client) !== pending) return;
          this.#pending.delete(message.client);
          if (timer !== null) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      this.#pending.set(message.client, pending);
      timer = setTimeout(() => pending.settle({ kind: 'lost', reason: `no reply within the request's time budget` }), Math.max(0, deadline - Date.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#perform(() => this.#replica.onMessage(message));
    });
  }

  async #acquire(deadline: number, signal?: AbortSignal): Promise<PooledSession | WriteOutcome | null> {
    const idle = this.#pool.pop();
    if (idle !== undefined) return idle;
    if (this.#poolSize < clusterNodeLimits.internalSessionsMax) {
      this.#poolSize += 1;
      const client = (BigInt(`0x${randomBytes(16).toString('hex')}`) & U128_MAX) | 1n;
      const registered = await this.register(client, Math.max(1, deadline - Date.now()), signal).catch((error: unknown) => {
        this.#poolSize -= 1;
        throw error;
      });
      if (registered.kind !== 'ok') {
        this.#poolSize -= 1;
        return registered.kind === 'not_primary' ? registered : { kind: 'indeterminate', reason: registered.reason };
      }
      return { client, session: registered.session, request: 0 };
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const at = this.#poolWaiters.indexOf(waiter);
        if (at >= 0) this.#poolWaiters.splice(at, 1);
        resolve(null);
      }, Math.max(0, deadline - Date.now()));
      const waiter = (session: PooledSession | null): void => { clearTimeout(timer); resolve(session); };
      this.#poolWaiters.push(waiter);
    });
  }

  /** Returns a pooled session (null: it is dropped, e.g. evicted). */
  #release(session: PooledSession | null): void {
    if (session === null) {
      this.#poolSize -= 1;
      const waiter = this.#poolWaiters.shift();
      // A waiter gets the chance to register a fresh session.
      if (waiter !== undefined) void this.#acquire(Date.now() + 5_000).then((s) => waiter(s !== null && !('kind' in s) ? s : null), () => waiter(null));
      return;
    }
    const waiter = this.#poolWaiters.shift();
    if (waiter !== undefined) waiter(session);
    else this.#pool.push(session);
  }

  #tick(): void {
    if (!this.#serving()) return;
    const now = Date.now();
    this.#perform(() => this.#replica.onTick(this.#nowMicros()));
    for (const pending of [...this.#pending.values()]) {
      if (now - pending.sentMs < clusterNodeLimits.resendMs) continue;
      pending.sentMs = now;
      this.#perform(() => this.#replica.onMessage(pending.message));
    }
  }

  /** Runs one replica entry point and performs the effects it returns. */
  #perform(step: () => Effect[]): void {
    if (!this.#serving() && this.#state !== 'closing') return;
    let effects: Effect[];
    try {
      effects = step();
    } catch (error) {
      this.#fail(error);
      return;
    }
    let encodedFor: Message | null = null;
    let encoded: Uint8Array = new Uint8Array(0);
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send': {
          // A broadcast is one message object sent to every peer: encode (and checksum) it once.
          if (effect.message !== encodedFor) {
            encodedFor = effect.message;
            encoded = encodeMessage(this.#cluster, effect.message);
          }
          this.#transport?.send(effect.to, encoded);
          break;
        }
        case 'reply': {
          // Only the answer to the request waiting here: a new primary also replies for older
          // requests of the same client that it commits from the previous view.
          const pending = this.#pending.get(effect.client);
          const answers = effect.message.kind === 'reply'
            ? pending?.message.request === effect.message.request
            : pending?.message.session === effect.message.session;
          if (pending !== undefined && answers) pending.settle(effect.message);
          break;
        }
        case 'write_log':
        case 'truncate_log':
        case 'write_superblock': {
          const writeId = effect.writeId;
          this.#journal.submit(effect, () => this.#perform(() => this.#replica.onWriteDone(writeId)), (error) => this.#fail(error));
          break;
        }
        case 'committed': {
          const header = effect.header;
          if (header.operation === 'register') this.#sessions.set(header.client, header.op);
          const applied = this.#applied.shift();
          assert(applied !== undefined && applied.op === header.op, `op ${header.op} is reported committed in the order it was applied`);
          this.#ledger.add({
            view: view(header.view), position: position(header.op), commit: position(header.op - 1), timestamp: header.timestampUs,
            client: clientId(header.client), request: header.request, tenant: applied.tenant, operation: applied.operation, body: applied.body,
          });
          // A request waiting here that committed — through this replica as primary, or through
          // another primary after a view change (this replica forwards its re-sends there) —
          // is answered from the commit itself, exactly as the primary would answer it.
          const pending = this.#pending.get(header.client);
          if (pending !== undefined && effect.executed && pending.message.request === header.request && pending.message.operation === header.operation) {
            pending.settle({
              kind: 'reply', from: this.replicaIndex, view: header.view, client: header.client, request: header.request,
              session: header.operation === 'register' ? header.op : header.session, op: header.op, body: effect.result,
            });
          }
          break;
        }
        default:
          assertNever(effect);
      }
    }
    this.#afterStep();
  }

  #afterStep(): void {
    const r = this.#replica;
    const status = `${r.view}:${r.status}`;
    if (status === this.#lastStatus) return;
    // Requests waiting here outlive a view change: their re-sends reach the new primary through
    // this replica, and their commit answers them (see 'committed'), or their time budget ends.
    this.#lastStatus = status;
    for (const listener of [...this.#viewListeners]) listener();
  }

  #afterApply(op: number, tenant: TenantId, operation: number, body: Uint8Array): void {
    this.#applied.push({ op, tenant, body, operation });
    for (const listener of this.#appliedListeners) listener(tenant, position(op));
    this.#wake();
  }

  #wake(): void {
    this.#readWaiters.wake(this.isOpen);
  }

  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error instanceof Error ? error : new VerityError('ReplicaFailed', String(error));
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const pending of [...this.#pending.values()]) pending.settle({ kind: 'lost', reason: `the replica failed: ${this.#failure.message}` });
    this.#wake();
    this.#fatal?.(this.#failure);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
