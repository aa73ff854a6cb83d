import {
  assert, assertNever, checksumEqual, CHECKSUM_ZERO, limits, type Checksum, type ClusterId, type Prng,
} from '@veritydb/types';
import { quorums, vsrConstants } from './constants.js';
import type { Effect } from './effects.js';
import {
  bodyMatches, decodeEntry, hash, linksTo, makeHeader, rootHeader, type Entry, type Header,
} from './header.js';
import { ByteWriter } from './bytes.js';
import {
  FROM_CLIENT, type CommitMessage, type DoViewChangeMessage, type HeadersMessage, type Message,
  type PrepareMessage, type PrepareOkMessage, type RequestHeadersMessage, type RequestMessage,
  type RequestPrepareMessage, type RequestStateMessage, type StartViewMessage, type StateMessage,
} from './message.js';
import { SessionTable } from './sessions.js';
import type { ApplyInput, StateMachine } from './state-machine.js';
import type { DurableState, Superblock } from './storage.js';

/**
 * Deliberate protocol bugs, for tests that prove the simulator's checkers can fail. All off in
 * production; each names the rule it breaks.
 */
export interface ReplicaBugs {
  /** Backups send prepare_ok as soon as the write is issued, before it is durable. */
  readonly ackBeforeDurable: boolean;
  /** The primary commits an op as soon as it is prepared locally, without a replication quorum. */
  readonly commitWithoutQuorum: boolean;
  /** The new primary picks the do_view_change log with the highest op, ignoring log_view. */
  readonly viewChangeByOpOnly: boolean;
  /** The primary records a request in the session table at prepare instead of at commit. */
  readonly sessionAtPrepare: boolean;
}

export interface ReplicaOptions {
  readonly cluster: ClusterId;
  readonly replica: number;
  readonly replicaCount: number;
  readonly machine: StateMachine;
  readonly prng: Prng;
  /** Session table capacity (default limits.clientSessionsMax). */
  readonly sessionsMax?: number;
  /** Prepares in flight at the primary (default limits.pipelinePreparesMax). */
  readonly pipelineMax?: number;
  /** A backup this far behind asks the primary for its state (default vsrConstants.stateTransferLagOps; needs `machine.snapshot/restore`). */
  readonly stateTransferLagOps?: number;
  /** Ops between checkpoint state-hash comparisons (default vsrConstants.checkpointIntervalOps; needs `machine.stateHash`). */
  readonly checkpointIntervalOps?: number;
  readonly bugs?: Partial<ReplicaBugs>;
}

export type ReplicaStatus = 'normal' | 'view_change';

/**
 * Why a replica (in `view_change` status) may not take part in consensus yet:
 * - `recovering_head`: it restarted and cannot trust its log's head (a torn or faulty slot at the
 *   head, a misdirected write above it, or view headers newer than its durable log). It might have
 *   acknowledged entries it no longer has, so it neither votes nor sends do_view_change (where its
 *   gaps would count as nacks) until a start_view from the current view's primary tells it the head.
 * - `amnesia`: it lost its whole disk (`Replica.rejoin`) and may have acknowledged anything before.
 *   Like `recovering_head` it waits for a start_view; then it stays a silent backup (no votes, no
 *   prepare_ok, no do_view_change) until every entry of that view's log up to its head is durable
 *   here again, so it is never counted in a quorum, nor as a nack, on the strength of lost state.
 */
export type ReplicaRecovery = 'none' | 'recovering_head' | 'amnesia';

type PendingWrite =
  | { readonly writeId: number; readonly kind: 'log'; entries: Entry[] }
  | { readonly writeId: number; readonly kind: 'truncate'; readonly afterOp: number }
  | { readonly writeId: number; readonly kind: 'superblock'; readonly superblock: Superblock };

interface PipelineEntry {
  readonly header: Header;
  readonly oks: Set<number>;
  sentTick: number;
}

const NO_BUGS: ReplicaBugs = Object.freeze({
  ackBeforeDurable: false, commitWithoutQuorum: false, viewChangeByOpOnly: false, sessionAtPrepare: false,
});

/** Superblock commit_max is persisted at least every this many ops (it only shortens restart catch-up). */
const SUPERBLOCK_COMMIT_INTERVAL_OPS = 32;

/**
 * One Viewstamped Replication replica as a pure, synchronous state machine. Drivers call
 * `onMessage`, `onTick` and `onWriteDone`; each returns the effects to perform, in order.
 *
 * @example
 * const replica = Replica.format({ cluster, replica: 0, replicaCount: 3, machine, prng });
 * for (const effect of replica.onTick(nowUs)) driver.perform(effect);
 */
export class Replica {
  readonly cluster: ClusterId;
  readonly replica: number;
  readonly replicaCount: number;
  readonly #machine: StateMachine;
  readonly #prng: Prng;
  readonly #bugs: ReplicaBugs;
  readonly #quorum: { replication: number; viewChange: number };
  readonly #pipelineMax: number;
  readonly #sessions: SessionTable;
  readonly #checkpointIntervalOps: number;
  readonly #stateTransferLagOps: number;
  #stateRequestTick = -Infinity;
  #stateTransfers = 0;
  /** This replica's checkpoint state hashes by op (the newest checkpointHashesMax). */
  readonly #checkpointHashes = new Map<number, Checksum>();
  /** The latest checkpoint (op and state hash) this replica computed, or the one its superblock held at open. */
  #checkpointOp = 0;
  #checkpointHash: Checksum | undefined;
  /** Peers' checkpoint hashes for ops this replica has not applied yet: op → (replica → hash). */
  readonly #peerCheckpointHashes = new Map<number, Map<number, Checksum>>();

  #status: ReplicaStatus = 'normal';
  #recovery: ReplicaRecovery = 'none';
  /** Amnesia: the head of the first view's log installed since the loss; every op up to it must become durable. */
  #amnesiaTarget: number | undefined;
  /** Amnesia: every op up to this one is durable here again. */
  #amnesiaDurableTo = 0;
  #view = 0;
  #logView = 0;
  #sbView = 0;
  #sbLogView = 0;
  #sbCommitMaxIssued = 0;
  /**
   * commit_max of the latest durable superblock. When it was persisted, every durable entry at or
   * below it was the committed one, and committed entries never change: an intact durable entry at
   * or below it is committed, with or without a chain from the view's head through holes.
   */
  #sbCommitMax = 0;
  /** Headers of the log installed for the current log view, persisted with every superblock. */
  #viewHeaders: readonly Header[] = [];

  /** The journal: headers and bodies by op; holes are entries still to repair. */
  readonly #headers = new Map<number, Header>();
  readonly #bodies = new Map<number, Uint8Array>();
  /** Checksum of the entry durable at each op. */
  readonly #durable = new Map<number, Checksum>();
  /** Ops whose slot was found torn or corrupt on open and not rewritten since: never nacked. */
  readonly #faulty = new Set<number>();
  #head = 0;
  #commitMin = 0;
  #commitMax = 0;

  #tick = 0;
  #clockUs = 0;
  #effects: Effect[] = [];
  #nextWriteId = 1;
  readonly #pending: PendingWrite[] = [];

  // Primary.
  #pipeline: PipelineEntry[] = [];
  #queue: RequestMessage[] = [];
  readonly #heardTick = new Map<number, number>();
  #abdicated = false;
  #heartbeatTick = 0;

  // Backup.
  #primaryTick = 0;
  readonly #acked = new Set<number>();

  // View change.
  /** Each replica's latest vote: the view it wants to move to, and when we heard it. */
  readonly #votes = new Map<number, { view: number; tick: number }>();
  #voteTick = -Infinity;
  #viewChangeTick = 0;
  /** Drawn per view change, so replicas do not time out in lockstep and duel forever. */
  #viewChangeTimeoutTicks: number = vsrConstants.viewChangeTimeoutTicks;
  /** Set once a quorum of votes moved this replica into the view: only then may it send do_view_change. */
  #dvcAllowed = false;
  #dvcSentTick = -Infinity;
  #dvcView = -1;
  #dvcs = new Map<number, DoViewChangeMessage>();
  /** New primary: the view's log is chosen and installed; repairing it. */
  #canonical = false;
  #repairTick = 0;
  #requestStartViewTick = -Infinity;

  private constructor(options: ReplicaOptions) {
    this.cluster = options.cluster;
    this.replica = options.replica;
    this.replicaCount = options.replicaCount;
    assert(Number.isInteger(this.replica) && this.replica >= 0 && this.replica < this.replicaCount, 'replica index in cluster');
    this.#machine = options.machine;
    this.#prng = options.prng;
    this.#bugs = { ...NO_BUGS, ...options.bugs };
    this.#quorum = quorums(this.replicaCount);
    this.#pipelineMax = options.pipelineMax ?? limits.pipelinePreparesMax;
    assert(this.#pipelineMax >= 1 && this.#pipelineMax <= limits.pipelinePreparesMax, 'pipeline within limits');
    this.#sessions = new SessionTable(options.sessionsMax ?? vsrConstants.clientSessionsMax);
    this.#checkpointIntervalOps = options.checkpointIntervalOps ?? vsrConstants.checkpointIntervalOps;
    this.#stateTransferLagOps = options.stateTransferLagOps ?? vsrConstants.stateTransferLagOps;
    assert(Number.isInteger(this.#stateTransferLagOps) && this.#stateTransferLagOps >= 1, 'state transfer lag is positive');
    assert(Number.isInteger(this.#checkpointIntervalOps) && this.#checkpointIntervalOps >= 1, 'checkpoint interval is positive');
    const root = rootHeader(this.cluster);
    this.#headers.set(0, root);
    this.#bodies.set(0, new Uint8Array(0));
    this.#durable.set(0, root.checksum);
  }

  /** A replica of a brand-new cluster: empty log, view 0, normal status. */
  static format(options: ReplicaOptions): Replica {
    const replica = new Replica(options);
    for (let r = 0; r < replica.replicaCount; r++) replica.#heardTick.set(r, 0);
    return replica;
  }

  /**
   * A member of an existing cluster whose disk was lost (an empty data directory, but the cluster
   * and its index are known from configuration). It rejoins in `amnesia` recovery: it takes no part
   * in consensus until it has learned the current view from its primary and holds that view's log.
   * The driver starts it on an empty disk (no superblock, no slots); its first superblock write
   * happens when it installs the view.
   *
   * @example const replica = Replica.rejoin({ cluster, replica: 2, replicaCount: 3, machine, prng });
   */
  static rejoin(options: ReplicaOptions): Replica {
    const replica = new Replica(options);
    assert(replica.replicaCount > 1, 'a single replica that lost its disk has nobody to learn from');
    replica.#status = 'view_change';
    replica.#recovery = 'amnesia';
    // Durable first: a crash from here on restarts it in amnesia, never as a voter with an empty log.
    replica.#writeSuperblock();
    return replica;
  }

  /**
   * A replica restarting from what its disk holds. It rejoins in view-change status: it takes part
   * in a view change only after a quorum votes for one, and otherwise asks the primary of its
   * view for a start_view before acting as a backup again.
   */
  static open(options: ReplicaOptions, durable: DurableState): Replica {
    const replica = new Replica(options);
    const sb = durable.superblock;
    assert(sb.cluster === replica.cluster && sb.replica === replica.replica && sb.replicaCount === replica.replicaCount,
      'superblock belongs to this replica');
    replica.#view = sb.view;
    replica.#logView = sb.logView;
    replica.#sbView = sb.view;
    replica.#sbLogView = sb.logView;
    replica.#commitMax = sb.commitMax;
    replica.#sbCommitMaxIssued = sb.commitMax;
    replica.#sbCommitMax = sb.commitMax;
    if (sb.checkpointHash !== undefined && sb.checkpoint > 0) {
      replica.#checkpointOp = sb.checkpoint;
      replica.#checkpointHash = sb.checkpointHash;
    }
    const ops = [...durable.slots.keys()].sort((a, b) => a - b);
    /** Entries found in another op's slot: their own slot may lack them (a misdirected write). */
    const misdirected: Header[] = [];
    for (const op of ops) {
      const entry = decodeEntry(durable.slots.get(op) as Uint8Array);
      // A torn or corrupt slot stays a hole: repaired later, never treated as "never had it".
      if (entry === undefined || entry.header.op !== op || entry.header.cluster !== replica.cluster || op === 0) {
        if (op > 0) replica.#faulty.add(op);
        if (entry !== undefined && entry.header.cluster === replica.cluster && entry.header.op > 0 && entry.header.op !== op) {
          misdirected.push(entry.header);
        }
        continue;
      }
      replica.#headers.set(op, entry.header);
      replica.#bodies.set(op, entry.body);
      replica.#durable.set(op, entry.header.checksum);
      replica.#head = Math.max(replica.#head, op);
    }
    // The write of a misdirected entry was reported durable: this replica may have acknowledged it.
    for (const header of misdirected) {
      if (!replica.#isDurable(header.op) || !checksumEqual(replica.#headers.get(header.op)?.checksum ?? CHECKSUM_ZERO, header.checksum)) {
        replica.#faulty.add(header.op);
      }
    }
    const durableTop = replica.#head;
    replica.#viewHeaders = sb.viewHeaders;
    for (const header of sb.viewHeaders) {
      const onDisk = replica.#headers.get(header.op);
      if (onDisk !== undefined && checksumEqual(onDisk.checksum, header.checksum)) continue;
      replica.#headers.set(header.op, header);
      replica.#bodies.delete(header.op);
      replica.#durable.delete(header.op);
      replica.#head = Math.max(replica.#head, header.op);
    }
    replica.#status = 'view_change';
    if (sb.amnesia === true) {
      // It lost its disk and had not caught up with a view's log when it stopped: still amnesiac.
      replica.#recovery = 'amnesia';
      replica.#dvcAllowed = false;
      return replica;
    }
    const faultyTop = Math.max(0, ...replica.#faulty);
    // A single replica has nobody to learn a head from; its own acks went only to itself.
    if ((faultyTop > durableTop || replica.#head > durableTop) && replica.replicaCount > 1) {
      replica.#recovery = 'recovering_head';
      replica.#dvcAllowed = false;
      return replica;
    }
    // Crashed in the middle of a view change that a quorum backed (its view is ahead of its log
    // view): resume it. Otherwise it was normal in its view: ask that view's primary.
    replica.#dvcAllowed = sb.view > sb.logView;
    return replica;
  }

  get status(): ReplicaStatus { return this.#status; }
  /** `none`, or why this replica does not take part in consensus yet (its status is then `view_change`). */
  get recovery(): ReplicaRecovery { return this.#recovery; }
  get view(): number { return this.#view; }
  get logView(): number { return this.#logView; }
  get op(): number { return this.#head; }
  get commitMin(): number { return this.#commitMin; }
  get commitMax(): number { return this.#commitMax; }
  get isPrimary(): boolean { return this.#primaryOf(this.#view) === this.replica; }
  get abdicated(): boolean { return this.#abdicated; }
  /** States installed from the primary by state transfer (this incarnation). */
  get stateTransfers(): number { return this.#stateTransfers; }
  /** The journal header at `op`, if known. */
  header(op: number): Header | undefined { return this.#headers.get(op); }

  // ---------------------------------------------------------------- entry points

  onTick(nowUs: number): Effect[] {
    this.#tick += 1;
    this.#clockUs = Math.max(this.#clockUs, nowUs);
    if (this.#status === 'normal' && this.isPrimary) this.#tickPrimary();
    else if (this.#status === 'normal') this.#tickBackup();
    else this.#tickViewChange();
    if (this.#tick - this.#repairTick >= vsrConstants.repairIntervalTicks) {
      this.#repairTick = this.#tick;
      this.#repair();
    }
    this.#commitJournal();
    return this.#flush();
  }

  onMessage(message: Message): Effect[] {
    this.#dispatch(message);
    this.#commitJournal();
    return this.#flush();
  }

  /** The storage effect `writeId` (the oldest outstanding one) completed durably. */
  onWriteDone(writeId: number): Effect[] {
    const write = this.#pending.shift();
    assert(write !== undefined && write.writeId === writeId, `writes complete in order: got ${writeId}, expected ${write?.writeId}`);
    switch (write.kind) {
      case 'log':
        for (const entry of write.entries) {
          const current = this.#headers.get(entry.header.op);
          if (current !== undefined && checksumEqual(current.checksum, entry.header.checksum)) {
            this.#durable.set(entry.header.op, entry.header.checksum);
            this.#faulty.delete(entry.header.op);
          }
        }
        break;
      case 'truncate':
        break;
      case 'superblock':
        this.#sbView = write.superblock.view;
        this.#sbLogView = write.superblock.logView;
        this.#sbCommitMax = Math.max(this.#sbCommitMax, write.superblock.commitMax);
        break;
      default:
        assertNever(write);
    }
    this.#afterDurable();
    this.#commitJournal();
    return this.#flush();
  }

  // ---------------------------------------------------------------- dispatch

  #dispatch(message: Message): void {
    switch (message.kind) {
      case 'request': return this.#onRequest(message);
      case 'prepare': return this.#onPrepare(message);
      case 'prepare_ok': return this.#onPrepareOk(message);
      case 'commit': return this.#onCommit(message);
      case 'pong':
        if (message.view === this.#view) this.#heardTick.set(message.from, this.#tick);
        return;
      case 'start_view_change':
        if (message.joined && message.view > this.#view) return this.#startViewChange(message.view);
        if (message.view <= this.#view) return this.#onStaleVote(message.from);
        return this.#onVote(message.view, message.from);
      case 'do_view_change': return this.#onDoViewChange(message);
      case 'start_view': return this.#onStartView(message);
      case 'request_start_view':
        // Even an abdicated primary answers: its view's log is still the view's log.
        if (message.view === this.#view && this.#status === 'normal' && this.isPrimary) {
          this.#send(message.from, this.#startViewMessage());
        }
        return;
      case 'request_headers': return this.#onRequestHeaders(message);
      case 'headers': return this.#onHeaders(message);
      case 'request_prepare': return this.#onRequestPrepare(message);
      case 'checkpoint': return this.#onCheckpoint(message.from, message.op, message.stateHash);
      case 'request_state': return this.#onRequestState(message);
      case 'state': return this.#onState(message);
      case 'reply':
      case 'eviction':
        return; // Client-bound; a replica ignores them.
      default:
        assertNever(message);
    }
  }

  #primaryOf(view: number): number { return view % this.replicaCount; }

  #send(to: number, message: Message): void {
    assert(to !== this.replica, 'a replica does not message itself');
    this.#effects.push({ kind: 'send', to, message });
  }

  #broadcast(message: Message): void {
    for (let r = 0; r < this.replicaCount; r++) if (r !== this.replica) this.#send(r, message);
  }

  #flush(): Effect[] {
    this.#checkInvariants();
    const out = this.#effects;
    this.#effects = [];
    return out;
  }

  #checkInvariants(): void {
    assert(this.#commitMin <= this.#commitMax, 'commit_min <= commit_max');
    assert(this.#commitMin <= this.#head, 'applied ops are in the log');
    assert(this.#sbView <= this.#view && this.#sbLogView <= this.#logView && this.#logView <= this.#view, 'view ordering');
    assert(this.#headers.has(this.#head), 'the head header is known');
    assert(this.#recovery === 'none' || (!this.#dvcAllowed && !this.#canonical), 'a recovering replica takes no part in a view change');
    assert(this.#recovery !== 'recovering_head' || this.#status === 'view_change', 'recovering_head waits in view_change');
    assert(this.#recovery !== 'amnesia' || (this.#status === 'normal') === (this.#amnesiaTarget !== undefined), 'amnesia: normal once a view is installed');
    if (this.#status === 'normal' && this.isPrimary) {
      assert(this.#pipeline.length <= Math.max(this.#pipelineMax, vsrConstants.viewHeadersMax), 'pipeline bounded');
      assert(this.#queue.length <= limits.requestQueueMax, 'request queue bounded');
    }
  }

  // ---------------------------------------------------------------- storage

  #writeLog(entries: Entry[]): void {
    if (entries.length === 0) return;
    const writeId = this.#nextWriteId++;
    this.#pending.push({ writeId, kind: 'log', entries });
    this.#effects.push({ kind: 'write_log', writeId, entries });
  }

  #truncateLog(afterOp: number): void {
    const writeId = this.#nextWriteId++;
    for (const op of [...this.#durable.keys()]) if (op > afterOp) this.#durable.delete(op);
    // Writes still in flight above the cut will be undone by the truncate: they must not count as durable.
    for (const write of this.#pending) {
      if (write.kind === 'log') write.entries = write.entries.filter((e) => e.header.op <= afterOp);
    }
    this.#pending.push({ writeId, kind: 'truncate', afterOp });
    this.#effects.push({ kind: 'truncate_log', writeId, afterOp });
  }

  #writeSuperblock(): void {
    const writeId = this.#nextWriteId++;
    const superblock: Superblock = {
      cluster: this.cluster, replica: this.replica, replicaCount: this.replicaCount, view: this.#view,
      logView: this.#logView, commitMax: this.#commitMax, checkpoint: this.#checkpointOp,
      ...(this.#checkpointHash === undefined ? {} : { checkpointHash: this.#checkpointHash }),
      ...(this.#recovery === 'amnesia' ? { amnesia: true } : {}), viewHeaders: this.#viewHeaders,
    };
    this.#sbCommitMaxIssued = this.#commitMax;
    this.#pending.push({ writeId, kind: 'superblock', superblock });
    this.#effects.push({ kind: 'write_superblock', writeId, superblock });
  }

  #isDurable(op: number): boolean {
    const header = this.#headers.get(op);
    const durable = this.#durable.get(op);
    return header !== undefined && durable !== undefined && checksumEqual(header.checksum, durable);
  }

  /** Everything that waits on durability: acks, the primary's own vote, view-change messages. */
  #afterDurable(): void {
    if (this.#status === 'normal' && this.isPrimary) {
      for (const entry of this.#pipeline) if (this.#isDurable(entry.header.op)) entry.oks.add(this.replica);
      this.#commitPipeline();
    } else if (this.#status === 'normal') {
      this.#sendAcks();
    } else {
      this.#maybeSendDoViewChange();
      this.#maybeFinishViewChange();
    }
  }

  // ---------------------------------------------------------------- normal operation: primary

  #onRequest(message: RequestMessage): void {
    if (this.#status !== 'normal') return;
    if (!this.isPrimary) {
      // Forward once (a forwarded request keeps the replica's index in `from`, so it is not forwarded again).
      if (message.from === FROM_CLIENT) this.#send(this.#primaryOf(this.#view), { ...message, from: this.replica });
      return;
    }
    if (this.#abdicated) return;
    const verdict = this.#sessions.check(message.client, message.session, message.request);
    // The table speaks for the cluster only once everything known committed is applied and no
    // registration in flight can still evict: until then a lagging answer could be stale.
    const settled = this.#commitMin === this.#commitMax && !this.#pipeline.some((p) => p.header.operation === 'register');
    switch (verdict.kind) {
      case 'duplicate':
        if (settled) this.#reply(message.client, message.request, verdict.op, verdict.reply);
        return;
      case 'stale':
        return;
      case 'evicted':
        if (settled && message.session <= this.#commitMin) this.#evict(message.client, message.session);
        return;
      case 'new':
        break;
      default:
        assertNever(verdict);
    }
    const inFlight = this.#pipeline.some((p) => p.header.client === message.client)
      || this.#queue.some((q) => q.client === message.client);
    if (inFlight) return;
    if (this.#pipeline.length < this.#pipelineMax) this.#prepare(message);
    else if (this.#queue.length < limits.requestQueueMax) this.#queue.push(message);
    // A full queue drops the request: the client retries.
  }

  #prepare(request: RequestMessage): void {
    const parent = this.#headers.get(this.#head);
    assert(parent !== undefined, 'the primary holds its head');
    const op = this.#head + 1;
    const timestampUs = Math.max(this.#clockUs, parent.timestampUs + 1);
    const header = makeHeader({
      parent: parent.checksum, cluster: this.cluster, client: request.client,
      session: request.operation === 'register' ? 0 : request.session, op, timestampUs,
      request: request.request, view: this.#view, operation: request.operation,
    }, request.body);
    this.#headers.set(op, header);
    this.#bodies.set(op, request.body);
    this.#head = op;
    this.#writeLog([{ header, body: request.body }]);
    this.#pipeline.push({ header, oks: new Set(), sentTick: this.#tick });
    this.#broadcast({ kind: 'prepare', from: this.replica, view: this.#view, commit: this.#commitMax, header, body: request.body });
    if (this.#bugs.sessionAtPrepare && request.operation === 'normal') {
      const session = this.#sessions.get(request.client);
      if (session !== undefined) this.#sessions.commit(request.client, request.request, session.reply, op);
    }
    if (this.#bugs.commitWithoutQuorum) this.#commitPipeline();
  }

  #onPrepareOk(message: PrepareOkMessage): void {
    if (message.view !== this.#view || this.#status !== 'normal' || !this.isPrimary) return;
    this.#heardTick.set(message.from, this.#tick);
    const entry = this.#pipeline.find((p) => p.header.op === message.op);
    if (entry === undefined || !checksumEqual(entry.header.checksum, message.checksum)) return;
    entry.oks.add(message.from);
    this.#commitPipeline();
  }

  #commitPipeline(): void {
    const needed = this.#bugs.commitWithoutQuorum ? 1 : this.#quorum.replication;
    for (;;) {
      const first = this.#pipeline[0];
      if (first === undefined) break;
      const oks = this.#bugs.commitWithoutQuorum ? Math.max(first.oks.size, 1) : first.oks.size;
      if (oks < needed) break;
      this.#pipeline.shift();
      this.#commitMax = Math.max(this.#commitMax, first.header.op);
    }
    this.#commitJournal();
    while (this.#queue.length > 0 && this.#pipeline.length < this.#pipelineMax && this.#status === 'normal' && this.isPrimary) {
      const next = this.#queue.shift() as RequestMessage;
      if (this.#sessions.check(next.client, next.session, next.request).kind === 'new') this.#prepare(next);
    }
  }

  #tickPrimary(): void {
    let heard = 1;
    for (const [r, tick] of this.#heardTick) {
      if (r !== this.replica && this.#tick - tick <= vsrConstants.abdicateTimeoutTicks) heard += 1;
    }
    // A primary that cannot hear a quorum stops heartbeating, so backups that still hear it move on.
    this.#abdicated = heard < this.#quorum.replication;
    if (this.#abdicated) {
      // Silent, so backups that still hear it time out; and it votes like them, so a quorum forms.
      this.#voteNext();
      return;
    }
    if (this.#tick - this.#heartbeatTick >= vsrConstants.commitIntervalTicks) {
      this.#heartbeatTick = this.#tick;
      const commitHeader = this.#headers.get(this.#commitMax);
      assert(commitHeader !== undefined, 'the primary holds its commit header');
      this.#broadcast({ kind: 'commit', from: this.replica, view: this.#view, commit: this.#commitMax, checksum: commitHeader.checksum });
    }
    for (const entry of this.#pipeline) {
      if (this.#tick - entry.sentTick < vsrConstants.prepareTimeoutTicks) continue;
      entry.sentTick = this.#tick;
      const body = this.#bodies.get(entry.header.op);
      assert(body !== undefined, 'the primary holds its pipeline bodies');
      for (let r = 0; r < this.replicaCount; r++) {
        if (r === this.replica || entry.oks.has(r)) continue;
        this.#send(r, { kind: 'prepare', from: this.replica, view: this.#view, commit: this.#commitMax, header: entry.header, body });
      }
    }
  }

  // ---------------------------------------------------------------- normal operation: backup

  #onPrepare(message: PrepareMessage): void {
    const { header, body } = message;
    if (header.cluster !== this.cluster || !bodyMatches(header, body) || header.op === 0) return;
    if (this.#acceptRepair(header, body)) return;
    if (message.view > this.#view || (message.view === this.#view && this.#status === 'view_change' && !this.#canonical)) {
      this.#requestStartView(message.view);
      return;
    }
    if (message.view < this.#view || this.#status !== 'normal' || this.isPrimary) return;
    if (message.from !== this.#primaryOf(this.#view) || header.view > this.#view) return;
    this.#primaryTick = this.#tick;
    const existing = this.#headers.get(header.op);
    if (header.op <= this.#head && existing !== undefined) {
      assert(checksumEqual(existing.checksum, header.checksum) || header.op <= this.#commitMin,
        `a view's log never changes: op ${header.op}`);
      // A re-sent prepare: our prepare_ok was lost.
      if (header.op > this.#commitMax && header.op <= this.#durablePrefixEnd() && this.#sbLogView === this.#view) {
        this.#sendAck(header.op);
      }
    } else if (header.op > this.#commitMin && existing === undefined) {
      // The primary's prepares are the view's log: take it even above a gap, which repair fills.
      this.#headers.set(header.op, header);
      this.#bodies.set(header.op, body);
      this.#head = Math.max(this.#head, header.op);
      this.#writeLog([{ header, body }]);
      if (this.#bugs.ackBeforeDurable) this.#sendAck(header.op);
    }
    this.#learnCommit(message.commit);
  }

  /** Accepts a prepare that fills a known hole: its checksum is vouched for by our chain. */
  #acceptRepair(header: Header, body: Uint8Array): boolean {
    if (!this.#repairing() || header.op <= this.#commitMin || header.op > this.#head || this.#bodies.has(header.op)) return false;
    const known = this.#headers.get(header.op);
    const expected = known?.checksum ?? this.#headers.get(header.op + 1)?.parent;
    if (expected === undefined || !checksumEqual(expected, header.checksum)) return false;
    this.#headers.set(header.op, header);
    this.#bodies.set(header.op, body);
    this.#writeLog([{ header, body }]);
    return true;
  }

  #repairing(): boolean {
    return this.#status === 'normal' || this.#canonical;
  }

  #sendAck(op: number): void {
    const header = this.#headers.get(op);
    assert(header !== undefined, 'ack a known op');
    this.#acked.add(op);
    this.#send(this.#primaryOf(this.#view), { kind: 'prepare_ok', from: this.replica, view: this.#view, op, checksum: header.checksum });
  }

  #sendAcks(): void {
    if (this.#status !== 'normal' || this.isPrimary) return;
    if (this.#recovery !== 'none' && !this.#amnesiaCaughtUp()) return;
    // Durable log view first: a prepare_ok in view v vouches for v's log.
    if (this.#sbLogView !== this.#view) return;
    const end = this.#durablePrefixEnd();
    for (let op = this.#commitMax + 1; op <= end; op++) if (!this.#acked.has(op)) this.#sendAck(op);
  }

  /**
   * The highest op such that every op above commit_max up to it is durable here. Acks never skip
   * a hole: a replica that acked op k holds k and everything between the commit and k, so a
   * replica without k can truthfully say it never acked k (a nack) in a view change.
   */
  #durablePrefixEnd(): number {
    let op = this.#commitMax;
    while (op < this.#head && this.#isDurable(op + 1)) op += 1;
    return op;
  }

  #onCommit(message: CommitMessage): void {
    if (message.view > this.#view || (message.view === this.#view && this.#status === 'view_change' && !this.#canonical)) {
      return this.#requestStartView(message.view);
    }
    if (message.view < this.#view || this.#status !== 'normal' || this.isPrimary) return;
    if (message.from !== this.#primaryOf(this.#view)) return;
    this.#primaryTick = this.#tick;
    const known = this.#headers.get(message.commit);
    assert(known === undefined || checksumEqual(known.checksum, message.checksum), `committed op ${message.commit} matches`);
    this.#learnCommit(message.commit);
    this.#send(message.from, { kind: 'pong', from: this.replica, view: this.#view });
  }

  #learnCommit(commit: number): void {
    if (commit <= this.#commitMax) return;
    this.#commitMax = commit;
    if (commit > this.#head) this.#requestGap();
  }

  /** Asks the primary for the op right above our head (the primary answers with its own). */
  #requestGap(): void {
    const primary = this.#primaryOf(this.#view);
    if (primary === this.replica) return;
    this.#send(primary, { kind: 'request_prepare', from: this.replica, view: this.#view, op: this.#head + 1, checksum: CHECKSUM_ZERO });
  }

  #tickBackup(): void {
    if (this.#tick - this.#primaryTick > vsrConstants.primaryTimeoutTicks) this.#voteNext();
  }

  // ---------------------------------------------------------------- commit and apply

  #commitJournal(): void {
    while (this.#commitMin < this.#commitMax) {
      const op = this.#commitMin + 1;
      const header = this.#headers.get(op);
      const body = this.#bodies.get(op);
      const previous = this.#headers.get(op - 1);
      if (header === undefined || body === undefined || previous === undefined) break;
      if (!linksTo(header, previous)) break; // Not yet repaired; never apply an unlinked entry.
      this.#apply(header, body);
      this.#commitMin = op;
    }
    if (this.#commitMax - this.#sbCommitMaxIssued >= SUPERBLOCK_COMMIT_INTERVAL_OPS && this.#status === 'normal') {
      this.#writeSuperblock();
    }
  }

  #apply(header: Header, body: Uint8Array): void {
    this.#applyEntry(header, body);
    if (header.op % this.#checkpointIntervalOps === 0) this.#checkpoint(header);
  }

  /** Checkpoint op applied: compare this replica's state hash with the peers' and tell them. */
  #checkpoint(header: Header): void {
    const machineHash = this.#machine.stateHash?.();
    if (machineHash === undefined) return;
    const writer = new ByteWriter().bytes(machineHash).bytes(this.#sessions.digest()).bytes(header.checksum);
    const stateHash = hash(writer.finish());
    if (header.op === this.#checkpointOp && this.#checkpointHash !== undefined) {
      // Replaying after a restart: the state must be the one this replica had when it wrote that checkpoint.
      assert(checksumEqual(stateHash, this.#checkpointHash), `replayed state at checkpoint op ${header.op} differs from the hash persisted before the restart`);
    }
    if (header.op >= this.#checkpointOp) {
      this.#checkpointOp = header.op;
      this.#checkpointHash = stateHash;
    }
    this.#checkpointHashes.set(header.op, stateHash);
    for (const op of [...this.#checkpointHashes.keys()]) {
      if (this.#checkpointHashes.size > vsrConstants.checkpointHashesMax) this.#checkpointHashes.delete(op);
    }
    for (const [from, theirs] of this.#peerCheckpointHashes.get(header.op) ?? []) this.#compareCheckpoint(from, header.op, theirs);
    this.#peerCheckpointHashes.delete(header.op);
    for (const op of [...this.#peerCheckpointHashes.keys()]) if (op < header.op) this.#peerCheckpointHashes.delete(op);
    this.#broadcast({ kind: 'checkpoint', from: this.replica, op: header.op, stateHash });
  }

  #onCheckpoint(from: number, op: number, stateHash: Checksum): void {
    if (from >= this.replicaCount || from === this.replica || op === 0 || op % this.#checkpointIntervalOps !== 0) return;
    const mine = this.#checkpointHashes.get(op);
    if (mine !== undefined) return this.#compareCheckpoint(from, op, stateHash);
    // A peer ahead: keep its claim (bounded) until this replica applies that op.
    if (op <= this.#commitMin || op > this.#commitMin + this.#checkpointIntervalOps * vsrConstants.checkpointHashesMax) return;
    const claims = this.#peerCheckpointHashes.get(op) ?? new Map<number, Checksum>();
    claims.set(from, stateHash);
    this.#peerCheckpointHashes.set(op, claims);
  }

  #compareCheckpoint(from: number, op: number, theirs: Checksum): void {
    const mine = this.#checkpointHashes.get(op);
    assert(mine !== undefined && checksumEqual(mine, theirs),
      `state diverged at checkpoint op ${op}: replica ${from} reports another state hash than replica ${this.replica}`);
  }

  #applyEntry(header: Header, body: Uint8Array): void {
    const replying = this.#status === 'normal' && this.isPrimary;
    switch (header.operation) {
      case 'root':
        assert(false, 'the root entry is never applied');
        break;
      case 'register': {
        this.#sessions.register(header.client, header.op);
        this.#machine.skip?.(applyInput(header, body));
        const result = new Uint8Array(0);
        this.#effects.push({ kind: 'committed', header, result, executed: true });
        if (replying) this.#reply(header.client, 0, header.op, result);
        return;
      }
      case 'normal': {
        const verdict = this.#sessions.check(header.client, header.session, header.request);
        if (verdict.kind === 'new') {
          const result = this.#machine.apply(applyInput(header, body));
          this.#sessions.commit(header.client, header.request, result, header.op);
          this.#effects.push({ kind: 'committed', header, result, executed: true });
          if (replying) this.#reply(header.client, header.request, header.op, result);
          return;
        }
        // The session table decides deterministically, on every replica alike: no second execution.
        this.#machine.skip?.(applyInput(header, body));
        this.#effects.push({ kind: 'committed', header, result: new Uint8Array(0), executed: false });
        if (replying && verdict.kind === 'evicted') this.#evict(header.client, header.session);
        return;
      }
      default:
        assertNever(header.operation);
    }
  }

  #evict(client: bigint, session: number): void {
    this.#effects.push({ kind: 'reply', client, message: { kind: 'eviction', from: this.replica, view: this.#view, client, session } });
  }

  #reply(client: bigint, request: number, op: number, body: Uint8Array): void {
    const session = this.#sessions.get(client)?.session ?? op;
    this.#effects.push({
      kind: 'reply', client,
      message: { kind: 'reply', from: this.replica, view: this.#view, client, request, session, op, body },
    });
  }

  // ---------------------------------------------------------------- view change

  #voteNext(): void {
    if (this.#recovery !== 'none') return;
    if (this.#tick - this.#voteTick < vsrConstants.repairIntervalTicks) return;
    this.#voteTick = this.#tick;
    // Join the highest view others are voting for: votes for different views never meet otherwise.
    let target = this.#view + 1;
    for (const vote of this.#votes.values()) {
      if (this.#tick - vote.tick <= vsrConstants.voteLifetimeTicks) target = Math.max(target, vote.view);
    }
    this.#broadcast({ kind: 'start_view_change', from: this.replica, view: target, joined: false });
    this.#onVote(target, this.replica);
  }

  /** A vote for a view we are already past: the sender lags (it restarted or was cut off); the primary tells it the view. */
  #onStaleVote(from: number): void {
    if (this.#status === 'normal' && this.isPrimary && from < this.replicaCount) this.#send(from, this.#startViewMessage());
  }

  #onVote(view: number, from: number): void {
    if (view <= this.#view) return;
    const previous = this.#votes.get(from);
    if (previous === undefined || view >= previous.view) this.#votes.set(from, { view, tick: this.#tick });
    // A vote for view w is a vote to leave every view below w: move to the highest view a quorum backs.
    const fresh = [...this.#votes.values()].filter((v) => this.#tick - v.tick <= vsrConstants.voteLifetimeTicks && v.view > this.#view);
    const candidates = [...new Set(fresh.map((v) => v.view))].sort((a, b) => b - a);
    for (const candidate of candidates) {
      if (fresh.filter((v) => v.view >= candidate).length >= this.#quorum.viewChange) {
        this.#startViewChange(candidate);
        return;
      }
    }
  }

  #startViewChange(view: number): void {
    assert(view > this.#view, 'views only grow');
    if (this.#recovery !== 'none') {
      // Not a voter: it only learns where the cluster went and asks that view's primary.
      this.#requestStartView(view);
      return;
    }
    this.#status = 'view_change';
    this.#view = view;
    this.#dvcAllowed = true;
    this.#dvcSentTick = -Infinity;
    this.#canonical = false;
    this.#viewChangeTick = this.#tick;
    this.#viewChangeTimeoutTicks = vsrConstants.viewChangeTimeoutTicks + this.#prng.int(vsrConstants.viewChangeTimeoutTicks);
    this.#pipeline = [];
    this.#queue = [];
    this.#abdicated = false;
    this.#acked.clear();
    if (this.#dvcView < view) { this.#dvcView = view; this.#dvcs = new Map(); }
    this.#writeSuperblock();
    // Tell the others: this replica's vote for the view, so they join even if their timers have not fired.
    this.#broadcast({ kind: 'start_view_change', from: this.replica, view, joined: true });
    this.#voteTick = this.#tick;
  }

  #tickViewChange(): void {
    if (this.#recovery !== 'none') {
      if (this.#tick - this.#requestStartViewTick >= vsrConstants.repairIntervalTicks) this.#requestStartView(this.#view);
      return;
    }
    if (this.#tick - this.#viewChangeTick >= this.#viewChangeTimeoutTicks) this.#voteNext();
    if (!this.#dvcAllowed && !this.isPrimary && this.#tick - this.#requestStartViewTick >= vsrConstants.repairIntervalTicks) {
      this.#requestStartView(this.#view);
    }
    if (this.#dvcAllowed && this.#tick - this.#dvcSentTick >= vsrConstants.repairIntervalTicks) {
      this.#dvcSentTick = -Infinity;
      this.#broadcast({ kind: 'start_view_change', from: this.replica, view: this.#view, joined: true });
    }
    this.#maybeSendDoViewChange();
    if (this.#canonical && this.isPrimary) this.#truncateNacked();
    this.#maybeFinishViewChange();
  }

  /**
   * New primary: an uncommitted op whose body nobody offers can be dropped only when enough
   * replicas say they never had it that it cannot have reached a replication quorum. A faulty
   * slot is never such a "no". Everything above the dropped op goes with it (commits are in order).
   */
  #truncateNacked(): void {
    let missing: number | undefined;
    for (let op = this.#commitMax + 1; op <= this.#head; op++) {
      if (!this.#bodies.has(op)) { missing = op; break; }
    }
    if (missing === undefined) return;
    const header = this.#headers.get(missing);
    const expected = header?.checksum ?? this.#headers.get(missing + 1)?.parent;
    const nackQuorum = this.replicaCount - this.#quorum.replication + 1;
    let nacks = 0;
    for (const dvc of this.#dvcs.values()) if (this.#nacks(dvc, missing, expected)) nacks += 1;
    if (nacks < nackQuorum) return;
    assert(missing > this.#commitMax, 'never truncate a committed op');
    for (const op of [...this.#headers.keys()]) if (op >= missing) { this.#headers.delete(op); this.#bodies.delete(op); }
    this.#head = missing - 1;
    assert(this.#headers.has(this.#head), 'the new head is known');
    this.#truncateLog(this.#head);
    this.#viewHeaders = this.#viewHeadersOf();
    this.#writeSuperblock();
  }

  /**
   * Did the sender of `dvc` never hold the entry `expected` at `op`? Unknown counts as no nack.
   * An op at or below the sender's own commit is never a nack: the sender knows it committed, so a
   * hole there (a corrupt or unread slot, which its `faulty` list omits at or below its commit) is
   * an entry to repair, not one it never had. This holds for a do_view_change that arrives after
   * the log was chosen, whose commit the chosen commit does not include yet.
   */
  #nacks(dvc: DoViewChangeMessage, op: number, expected: Checksum | undefined): boolean {
    if (op <= dvc.commit) return false;
    if (dvc.faulty.includes(op)) return false;
    if (op > dvc.op) return true;
    const lowest = dvc.headers[0]?.op ?? dvc.op;
    if (op < lowest) return false;
    const index = dvc.headers.findIndex((h) => h.op === op);
    if (index < 0) return true;
    const header = dvc.headers[index] as Header;
    if (dvc.present[index] !== true) return true;
    return expected !== undefined && !checksumEqual(header.checksum, expected);
  }

  #requestStartView(view: number): void {
    let primary = this.#primaryOf(view);
    if (primary === this.replica) {
      // A recovering replica cannot be its own view's primary: the others move on; ask the next one's.
      if (this.#recovery === 'none') return;
      primary = this.#primaryOf(view + 1);
      view += 1;
    }
    this.#requestStartViewTick = this.#tick;
    this.#send(primary, { kind: 'request_start_view', from: this.replica, view });
  }

  /** Sends this replica's durable log state to the new primary, once the view itself is durable. */
  #maybeSendDoViewChange(): void {
    if (this.#status !== 'view_change' || !this.#dvcAllowed || this.#dvcSentTick !== -Infinity) return;
    assert(this.#recovery === 'none', 'a recovering replica never sends do_view_change');
    if (this.#pending.length > 0 || this.#sbView !== this.#view) return;
    this.#dvcSentTick = this.#tick;
    const headers = this.#viewHeadersOf();
    const faulty = [...this.#faulty].filter((op) => op > this.#commitMax).sort((a, b) => b - a)
      .slice(0, vsrConstants.viewHeadersMax);
    const message: DoViewChangeMessage = {
      kind: 'do_view_change', from: this.replica, view: this.#view, logView: this.#sbLogView, op: this.#head,
      commit: this.#commitMax, headers, present: headers.map((h) => this.#isDurable(h.op)), faulty,
    };
    if (this.isPrimary) this.#onDoViewChange(message);
    else this.#send(this.#primaryOf(this.#view), message);
  }

  /** The newest known headers, oldest first, at most viewHeadersMax, always ending at the head. */
  #viewHeadersOf(): Header[] {
    const out: Header[] = [];
    for (let op = this.#head; op >= 0 && out.length < vsrConstants.viewHeadersMax && op > this.#head - vsrConstants.viewHeadersMax * 2; op--) {
      const header = this.#headers.get(op);
      if (header !== undefined) out.push(header);
    }
    return out.reverse();
  }

  #onDoViewChange(message: DoViewChangeMessage): void {
    if (message.view < this.#view) return;
    if (message.view > this.#view) this.#onVote(message.view, message.from);
    if (message.view > this.#dvcView) { this.#dvcView = message.view; this.#dvcs = new Map(); }
    if (message.view !== this.#dvcView) return;
    this.#dvcs.set(message.from, message);
    if (this.#status !== 'view_change' || message.view !== this.#view || !this.isPrimary || this.#canonical) return;
    if (this.#dvcs.size < this.#quorum.viewChange || !this.#dvcs.has(this.replica)) return;
    this.#chooseLog();
  }

  /** New primary: adopt the log of the highest log_view, then the highest op; validate by hash chain. */
  #chooseLog(): void {
    let best: DoViewChangeMessage | undefined;
    let commit = this.#commitMax;
    for (const dvc of this.#dvcs.values()) {
      commit = Math.max(commit, dvc.commit);
      if (best === undefined) { best = dvc; continue; }
      const better = this.#bugs.viewChangeByOpOnly
        ? dvc.op > best.op
        : dvc.logView > best.logView || (dvc.logView === best.logView && dvc.op > best.op);
      if (better) best = dvc;
    }
    assert(best !== undefined, 'a quorum of do_view_change');
    const window = new Map<number, Header>();
    for (const dvc of this.#dvcs.values()) {
      if (dvc.logView !== best.logView || dvc.op > best.op) continue;
      for (const header of dvc.headers) if (!window.has(header.op)) window.set(header.op, header);
    }
    for (const header of best.headers) window.set(header.op, header);
    assert(best.op >= commit || this.#bugs.viewChangeByOpOnly, `the chosen log (op ${best.op}) holds every committed op (${commit})`);
    this.#canonical = true;
    this.#installLog(best.op, window, Math.min(commit, best.op));
    this.#maybeFinishViewChange();
  }

  /**
   * Makes `window` (headers of the view's log, ending at `op`) this replica's log. Our own entries
   * are kept only where the chain proves them part of it. On disk, only a suffix starting at the
   * lowest entry that is not in the view's log is truncated (and proven entries above it are
   * rewritten): an entry this replica acknowledged is never removed, and the disk never mixes
   * logs of different views.
   */
  #installLog(op: number, window: Map<number, Header>, commit: number): void {
    assert(window.has(op), 'the window includes its head');
    const canonical = new Map(window);
    for (let k = op - 1; k > this.#commitMin; k--) {
      if (canonical.has(k)) continue;
      const above = canonical.get(k + 1);
      const mine = this.#headers.get(k);
      if (mine === undefined) continue;
      // Proven by the chain from above, or known committed here (bridges a hole the chain cannot).
      if ((above !== undefined && checksumEqual(above.parent, mine.checksum)) || this.#committedHere(k)) canonical.set(k, mine);
    }
    const inLog = (k: number, sum: Checksum): boolean => {
      const wanted = canonical.get(k);
      return k <= this.#commitMin || (wanted !== undefined && k <= op && checksumEqual(wanted.checksum, sum));
    };
    let cut = Infinity;
    for (const [k, sum] of this.#durable) if (!inLog(k, sum)) cut = Math.min(cut, k);
    for (const write of this.#pending) {
      if (write.kind !== 'log') continue;
      for (const entry of write.entries) if (!inLog(entry.header.op, entry.header.checksum)) cut = Math.min(cut, entry.header.op);
    }
    for (const [k, mine] of [...this.#headers]) {
      if (k > this.#commitMin && !inLog(k, mine.checksum)) { this.#headers.delete(k); this.#bodies.delete(k); }
    }
    for (const [k, header] of canonical) if (k > this.#commitMin && k <= op && !this.#headers.has(k)) this.#headers.set(k, header);
    this.#head = op;
    if (cut !== Infinity) {
      assert(cut > this.#commitMin, 'never truncate an applied op');
      this.#truncateLog(cut - 1);
      const rewrite: Entry[] = [];
      for (let k = cut; k <= op; k++) {
        const header = this.#headers.get(k);
        const body = this.#bodies.get(k);
        if (header !== undefined && body !== undefined) rewrite.push({ header, body });
      }
      this.#writeLog(rewrite);
    }
    this.#commitMax = Math.max(this.#commitMax, commit);
    this.#logView = this.#view;
    this.#viewHeaders = this.#viewHeadersOf();
    this.#writeSuperblock();
  }

  /**
   * Amnesia ends once every op of the first installed view's log, up to its head, is durable here
   * (and that view is durable): from then on this replica's acks and do_view_change speak only of
   * what it holds, like any other replica's.
   */
  #amnesiaCaughtUp(): boolean {
    if (this.#recovery !== 'amnesia' || this.#amnesiaTarget === undefined || this.#status !== 'normal') return false;
    if (this.#sbLogView !== this.#view || this.#pending.length > 0) return false;
    // A later view may have cut an uncommitted tail of that log: what remains of it is the target.
    const target = Math.min(this.#amnesiaTarget, this.#head);
    this.#amnesiaDurableTo = Math.min(this.#amnesiaDurableTo, this.#commitMax);
    while (this.#amnesiaDurableTo < target && this.#isDurable(this.#amnesiaDurableTo + 1)) this.#amnesiaDurableTo += 1;
    if (this.#amnesiaDurableTo < target) return false;
    this.#recovery = 'none';
    this.#amnesiaTarget = undefined;
    this.#writeSuperblock();
    return true;
  }

  /** Is the entry at `op` durable here at or below the durable commit_max (so the committed one)? */
  #committedHere(op: number): boolean {
    return op <= this.#sbCommitMax && this.#isDurable(op);
  }

  /** New primary: once the chosen log is complete and durable, and the view is durable, start the view. */
  #maybeFinishViewChange(): void {
    if (this.#status !== 'view_change' || !this.#canonical || !this.isPrimary) return;
    if (this.#pending.length > 0 || this.#sbView !== this.#view || this.#sbLogView !== this.#view) return;
    for (let op = this.#commitMin + 1; op <= this.#head; op++) if (!this.#isDurable(op)) return;
    this.#status = 'normal';
    this.#canonical = false;
    this.#dvcAllowed = false;
    this.#abdicated = false;
    this.#heartbeatTick = -Infinity;
    for (let r = 0; r < this.replicaCount; r++) this.#heardTick.set(r, this.#tick);
    this.#pipeline = [];
    for (let op = this.#commitMax + 1; op <= this.#head; op++) {
      this.#pipeline.push({ header: this.#headers.get(op) as Header, oks: new Set([this.replica]), sentTick: this.#tick });
    }
    this.#broadcast(this.#startViewMessage());
    this.#commitPipeline();
  }

  #startViewMessage(): StartViewMessage {
    return { kind: 'start_view', from: this.replica, view: this.#view, op: this.#head, commit: this.#commitMax, headers: this.#viewHeadersOf() };
  }

  #onStartView(message: StartViewMessage): void {
    if (message.view < this.#view) return;
    if (message.view === this.#view && this.#status === 'normal') return;
    if (message.from !== this.#primaryOf(message.view) || message.from === this.replica) return;
    const window = new Map<number, Header>();
    for (const header of message.headers) window.set(header.op, header);
    if (!window.has(message.op)) return;
    if (message.commit < this.#commitMin) return; // Impossible from a correct primary; refuse rather than regress.
    // A view's log holds every committed op: a shorter one would cut ops this replica knows committed.
    if (message.op < this.#commitMax) return;
    this.#view = message.view;
    this.#status = 'normal';
    this.#dvcAllowed = false;
    this.#canonical = false;
    this.#pipeline = [];
    this.#queue = [];
    this.#acked.clear();
    this.#primaryTick = this.#tick;
    this.#installLog(message.op, window, message.commit);
    if (this.#recovery === 'recovering_head') {
      // The head is known again. Faulty ops above it were never committed (the view's log holds
      // every committed op), so the entries this replica may have acked there do not matter.
      this.#recovery = 'none';
      for (const op of [...this.#faulty]) if (op > message.op) this.#faulty.delete(op);
    } else if (this.#recovery === 'amnesia') {
      this.#amnesiaTarget ??= message.op;
    }
    this.#sendAcks();
  }

  // ---------------------------------------------------------------- repair

  /** Asks peers for missing headers and bodies below the head; accepted only if they link into our chain. */
  #repair(): void {
    if (!this.#repairing()) return;
    let budget = vsrConstants.repairPreparesMax;
    for (let op = this.#head; op > this.#commitMin && budget > 0; op--) {
      const header = this.#headers.get(op);
      if (header !== undefined) {
        if (!this.#bodies.has(op)) {
          this.#send(this.#repairPeer(), { kind: 'request_prepare', from: this.replica, view: this.#view, op, checksum: header.checksum });
          budget -= 1;
        }
        continue;
      }
      const above = this.#headers.get(op + 1);
      if (above !== undefined) {
        this.#send(this.#repairPeer(), { kind: 'request_prepare', from: this.replica, view: this.#view, op, checksum: above.parent });
      } else {
        const opMin = Math.max(this.#commitMin + 1, op - vsrConstants.repairHeadersMax + 1);
        this.#send(this.#repairPeer(), { kind: 'request_headers', from: this.replica, view: this.#view, opMin, opMax: op });
        op = opMin;
      }
      budget -= 1;
    }
    if (this.#status === 'normal' && !this.isPrimary && this.#commitMax > this.#head) this.#requestGap();
    this.#maybeRequestState();
  }

  // ---------------------------------------------------------------- state transfer

  /**
   * A backup far behind its commit whose next entry is missing asks the primary for its applied
   * state rather than fetch and apply every entry. Not while recovering: an amnesiac replica must
   * hold every entry of its view's log before it votes again.
   */
  #maybeRequestState(): void {
    if (this.#status !== 'normal' || this.isPrimary || this.#recovery !== 'none') return;
    if (this.#machine.snapshot === undefined || this.#machine.restore === undefined) return;
    if (this.#commitMax - this.#commitMin <= this.#stateTransferLagOps || this.#bodies.has(this.#commitMin + 1)) return;
    if (this.#tick - this.#stateRequestTick < vsrConstants.primaryTimeoutTicks) return;
    this.#stateRequestTick = this.#tick;
    this.#send(this.#primaryOf(this.#view), { kind: 'request_state', from: this.replica, view: this.#view, op: this.#commitMin });
  }

  #onRequestState(message: RequestStateMessage): void {
    if (message.from >= this.replicaCount || message.from === this.replica || this.#machine.snapshot === undefined) return;
    if (this.#status !== 'normal' || !this.isPrimary || message.view !== this.#view || this.#commitMin <= message.op) return;
    const header = this.#headers.get(this.#commitMin);
    assert(header !== undefined, 'the primary holds its applied head');
    const state: StateMessage = {
      kind: 'state', from: this.replica, view: this.#view, op: this.#commitMin, header,
      sessions: this.#sessions.encode(), machine: this.#machine.snapshot(),
    };
    // A state too large for one message is not sent: the backup catches up entry by entry.
    if (state.sessions.length + state.machine.length + vsrConstants.stateMessageOverheadBytes > vsrConstants.messageBytesMax) return;
    this.#send(message.from, state);
  }

  /**
   * Installs the primary's applied state at `op`, if it is ahead and its header fits the chain
   * this replica knows. Entries below it that this replica lacks stay holes in its log: a restart
   * (which replays from op 1) repairs them from peers.
   */
  #onState(message: StateMessage): void {
    const { op, header } = message;
    if (this.#status !== 'normal' || this.isPrimary || this.#recovery !== 'none' || message.view !== this.#view) return;
    if (message.from !== this.#primaryOf(this.#view) || this.#machine.restore === undefined || op <= this.#commitMin) return;
    if (header.op !== op || header.cluster !== this.cluster || op === 0) return;
    const known = this.#headers.get(op);
    const above = this.#headers.get(op + 1);
    if (known !== undefined && !checksumEqual(known.checksum, header.checksum)) return;
    if (above !== undefined && !checksumEqual(above.parent, header.checksum)) return;
    if (!this.#sessions.restore(message.sessions)) return;
    this.#machine.restore(message.machine, op);
    this.#headers.set(op, header);
    if (known === undefined) this.#bodies.delete(op);
    this.#head = Math.max(this.#head, op);
    this.#commitMin = op;
    this.#commitMax = Math.max(this.#commitMax, op);
    this.#stateTransfers += 1;
  }

  #repairPeer(): number {
    const peer = this.#prng.int(this.replicaCount - 1);
    return peer >= this.replica ? peer + 1 : peer;
  }

  #onRequestPrepare(message: RequestPrepareMessage): void {
    if (message.from === FROM_CLIENT || message.from >= this.replicaCount) return;
    const header = this.#headers.get(message.op);
    const body = this.#bodies.get(message.op);
    if (header === undefined || body === undefined || message.op === 0) return;
    const anyOk = checksumEqual(message.checksum, CHECKSUM_ZERO) && this.#status === 'normal' && this.isPrimary && message.view === this.#view;
    if (!anyOk && !checksumEqual(message.checksum, header.checksum)) return;
    this.#send(message.from, { kind: 'prepare', from: this.replica, view: this.#view, commit: this.#commitMax, header, body });
  }

  #onRequestHeaders(message: RequestHeadersMessage): void {
    if (message.from === FROM_CLIENT || message.from >= this.replicaCount || message.opMax < message.opMin) return;
    const headers: Header[] = [];
    for (let op = Math.max(1, message.opMin); op <= message.opMax && headers.length < vsrConstants.repairHeadersMax; op++) {
      const header = this.#headers.get(op);
      if (header !== undefined) headers.push(header);
    }
    if (headers.length > 0) this.#send(message.from, { kind: 'headers', from: this.replica, view: this.#view, headers });
  }

  #onHeaders(message: HeadersMessage): void {
    if (!this.#repairing()) return;
    const sorted = [...message.headers].sort((a, b) => b.op - a.op);
    for (const header of sorted) {
      if (header.op <= this.#commitMin || header.op >= this.#head || this.#headers.has(header.op)) continue;
      const above = this.#headers.get(header.op + 1);
      if (above !== undefined && checksumEqual(above.parent, header.checksum)) this.#headers.set(header.op, header);
    }
  }
}

function applyInput(header: Header, body: Uint8Array): ApplyInput {
  return { op: header.op, timestampUs: header.timestampUs, client: header.client, body, checksum: header.checksum };
}
