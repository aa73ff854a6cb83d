import { blake3 } from '@noble/hashes/blake3.js';
import { assert, checksumEqual, clusterId, checksumHex, Prng, type ClusterId, type TenantId } from '@veritydb/types';
import type { Kernel } from '@veritydb/kernel';
import {
  Client, decodeEntry, decodeMessage, encodeMessage, quorums, Replica, type ClientEffect, type Effect, type ReplicaBugs,
  type ReplicaOptions, type Superblock,
} from '@veritydb/vsr';
import { Checker, SafetyViolation, STATE_HASH_INTERVAL_OPS } from './checker.js';
import { describe } from './describe.js';
import { SimDisk } from './disk.js';
import { KernelMachine } from './kernel-machine.js';
import { SimNetwork, type Packet } from './network.js';
import { SimClock } from './clock.js';
import {
  checkReply, checkStateAtReply, learn, nextRequest, tenantOfClient, type ClientProgress, type WorkRequest,
} from './workload.js';

export interface FaultOptions {
  /** Packet loss probability while faults are on (up to 0.3). */
  readonly loss: number;
  readonly duplicate: number;
  /** Probability a delivered packet is bit-flipped. */
  readonly corrupt: number;
  readonly delayMaxTicks: number;
  readonly partitions: boolean;
  readonly crashes: boolean;
  /** Corruption of committed log slots at rest (under the atlas: never every intact copy). */
  readonly diskCorruption: boolean;
  /** Probability that the write cut by a crash is torn. */
  readonly torn: number;
  /** Most replicas down at once. */
  readonly downMax: number;
  /** Per-tick probabilities of a crash and of a partition change. */
  readonly crashProbability: number;
  readonly partitionProbability: number;
  /** Slowest write; slow disks widen the window in which a crash loses acknowledged-too-early writes. */
  readonly writeDelayTicksMax: number;
  /** Each replica's clock runs off by up to this many parts per million (0: perfect clocks). */
  readonly clockDriftPpmMax: number;
  /** Clocks step by up to a minute, forwards or backwards. */
  readonly clockJumps: boolean;
  /** A replica process stops (no ticks, no messages, no write completions) for a while, then resumes with a burst. */
  readonly pauses: boolean;
  /** A link delivers nothing for a while, then everything it held. */
  readonly clogging: boolean;
  /** A log write lands in another (committed, intact elsewhere) slot instead of its own. */
  readonly misdirectedWrites: boolean;
  /** A restarting replica cannot read one of its committed slots (intact elsewhere). */
  readonly latentReadErrors: boolean;
  /** A crashed replica's disk is lost; it rejoins with an empty one (amnesia). */
  readonly wipes: boolean;
}

export interface SimulatorOptions {
  readonly seed: number;
  readonly replicaCount: number;
  readonly clientCount: number;
  readonly sessionsMax: number;
  readonly safetyTicks: number;
  /** The stated liveness bound: with faults off and every replica up, the cluster converges within it. */
  readonly livenessTicksMax: number;
  readonly faults: FaultOptions;
  readonly bugs?: Partial<ReplicaBugs>;
  /** Replicas compare kernel state hashes at every multiple of this op (and where one crashed). */
  readonly stateHashIntervalOps?: number;
  readonly trace?: (line: string) => void;
}

export interface SimulationResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly failure?: string;
  readonly phase: 'safety' | 'liveness' | 'done';
  readonly tick: number;
  readonly traceHash: string;
  readonly stats: {
    readonly committedOps: number;
    readonly acceptedReplies: number;
    readonly crashes: number;
    readonly viewMax: number;
    readonly packetsSent: number;
    readonly packetsRejected: number;
    readonly corruptions: number;
    readonly misdirectedWrites: number;
    readonly clockJumps: number;
    readonly pauses: number;
    readonly clogs: number;
    readonly latentReadErrors: number;
    /** Restarts that found their head untrusted and recovered it from the primary. */
    readonly recoveringHeads: number;
    /** Disks wiped; their replicas rejoined in amnesia. */
    readonly wipes: number;
    readonly stateTransfers: number;
    readonly livenessTicks: number;
    readonly requestsSubmitted: number;
    readonly stateHashChecks: number;
    readonly restartStateHashChecks: number;
    readonly stateReads: number;
  };
}

/**
 * A harsher profile for proving the checkers can fail: frequent crashes of any number of
 * replicas, slow disks, frequent partitions.
 */
export function harshOptionsForSeed(seed: number, overrides: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const base = optionsForSeed(seed, overrides);
  return {
    ...base,
    safetyTicks: 1500,
    faults: {
      ...base.faults, crashes: true, partitions: true, crashProbability: 0.02, partitionProbability: 0.01,
      downMax: base.replicaCount, writeDelayTicksMax: 12, torn: 0, diskCorruption: false,
      clockDriftPpmMax: 0, clockJumps: false, pauses: false, clogging: false, misdirectedWrites: false, latentReadErrors: false, wipes: false,
    },
    ...overrides,
  };
}

/** A fault profile drawn from the seed, so the seed alone names the run. */
export function optionsForSeed(seed: number, overrides: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const prng = new Prng(seed ^ 0x5eed);
  const replicaCount = overrides.replicaCount ?? (prng.chance(0.5) ? 3 : 5);
  const faults: FaultOptions = {
    loss: prng.pick([0, 0.05, 0.1, 0.3]),
    duplicate: prng.pick([0, 0.05, 0.2]),
    corrupt: prng.pick([0, 0.01]),
    delayMaxTicks: prng.pick([2, 5, 12]),
    partitions: prng.chance(0.7),
    crashes: prng.chance(0.7),
    diskCorruption: prng.chance(0.5),
    torn: prng.pick([0, 0.5]),
    downMax: prng.chance(0.2) ? replicaCount : Math.floor((replicaCount - 1) / 2),
    crashProbability: 0.003, partitionProbability: 0.004, writeDelayTicksMax: 3,
    clockDriftPpmMax: prng.pick([0, 100, 50_000]),
    clockJumps: prng.chance(0.5),
    pauses: prng.chance(0.5),
    clogging: prng.chance(0.5),
    misdirectedWrites: prng.chance(0.4),
    latentReadErrors: prng.chance(0.4),
    wipes: prng.chance(0.3),
  };
  const clientCount = prng.pick([2, 4, 8]);
  return {
    seed, replicaCount, clientCount,
    sessionsMax: prng.chance(0.3) ? Math.max(1, clientCount - 2) : 64,
    safetyTicks: 2500, livenessTicksMax: 4000, faults, ...overrides,
  };
}

const CLIENT_BASE = 100;
/** Client ids of one simulated client across incarnations differ by multiples of this. */
const CLIENT_GENERATION = 1000n;

interface Node {
  replica: Replica | undefined;
  /** The replica incarnation's kernel (a restart starts a fresh one and replays the log into it). */
  machine: KernelMachine | undefined;
  readonly disk: SimDisk;
  restartTick: number;
  readonly clock: SimClock;
  /** A paused process sees nothing before this tick; messages for it wait in `inbox`. */
  pausedUntil: number;
  inbox: Packet[];
  /** Down with a disk whose head the replica will not trust when it opens (or a wiped one). */
  untrustedHead: boolean;
}

/** A replica this far behind asks for state transfer (low, so that runs exercise it). */
const STATE_TRANSFER_LAG_OPS = 32;

/** Messages a paused replica's receive buffers hold; more are dropped, as a full socket buffer would. */
const PAUSE_INBOX_MAX = 4096;

interface SimClient {
  /** Replaced by a new incarnation (a new client id) after an eviction, as a real client restarts. */
  client: Client;
  /** Real-time floor of the request in flight (highest op accepted before it started). */
  floor: number;
  /** Floor of the first attempt to register, kept across indeterminate retries of the same register. */
  registerFloor: number | undefined;
  probeDone: boolean;
  readonly tenant: TenantId;
  /** The request in flight, to check its reply against. */
  pending: WorkRequest | undefined;
  readonly progress: ClientProgress;
}

/**
 * Runs one seeded simulation of a VSR cluster with the real replica code and the real kernel and
 * store as its state machine: a safety phase with faults, then a liveness phase (faults off,
 * everyone up) that must converge within the bound.
 */
export class Simulator {
  readonly options: SimulatorOptions;
  readonly cluster: ClusterId = clusterId(0xc1_05_7e2n);
  readonly #prng: Prng;
  readonly #faultPrng: Prng;
  /** Draws of the faults added later (clocks, pauses, clogging, disk misdirection): a seed's older faults stay as they were. */
  readonly #swarmPrng: Prng;
  readonly #network: SimNetwork;
  readonly #nodes: Node[] = [];
  readonly #clients: SimClient[] = [];
  readonly checker: Checker;
  readonly #traceHash = blake3.create();
  #tick = 0;
  #phase: 'safety' | 'liveness' = 'safety';
  #crashes = 0;
  #rejected = 0;
  #corruptions = 0;
  #misdirectedWrites = 0;
  #clockJumps = 0;
  #pauses = 0;
  #clogs = 0;
  #latentReadErrors = 0;
  #recoveringHeads = 0;
  #wipes = 0;
  #viewMax = 0;
  #requestsSubmitted = 0;
  #stateReads = 0;
  readonly #eventsCheckedTo = new Map<TenantId, number>();

  constructor(options: SimulatorOptions) {
    assert(options.faults.loss <= 0.3, 'loss at most 30%');
    this.options = options;
    const root = new Prng(options.seed);
    this.#prng = root.split();
    this.#faultPrng = root.split();
    this.#network = new SimNetwork(root.split(), {
      delayMinTicks: 1, delayMaxTicks: options.faults.delayMaxTicks, loss: options.faults.loss,
      duplicate: options.faults.duplicate, corrupt: options.faults.corrupt,
    });
    this.#swarmPrng = root.split();
    this.checker = new Checker(options.stateHashIntervalOps);
    for (let r = 0; r < options.replicaCount; r++) {
      const superblock: Superblock = {
        cluster: this.cluster, replica: r, replicaCount: options.replicaCount, view: 0, logView: 0, commitMax: 0, checkpoint: 0, viewHeaders: [],
      };
      const drift = options.faults.clockDriftPpmMax;
      const clock = drift === 0 ? new SimClock(r, 0) : new SimClock(this.#swarmPrng.int(3_600_000_000), this.#swarmPrng.range(-drift, drift));
      const node: Node = {
        replica: undefined, machine: undefined, disk: new SimDisk(superblock), restartTick: 0, clock, pausedUntil: 0, inbox: [], untrustedHead: false,
      };
      node.disk.misdirect = (op) => this.#misdirectTarget(r, op);
      this.#nodes.push(node);
      node.replica = Replica.format(this.#replicaOptions(r));
    }
    for (let i = 0; i < options.clientCount; i++) {
      this.#clients.push({
        client: this.#newClient(BigInt(i + 1)),
        floor: 0, registerFloor: undefined, probeDone: false, tenant: tenantOfClient(i, options.clientCount), pending: undefined,
        progress: { tenantExists: false, tableExists: false },
      });
    }
  }

  #newClient(id: bigint): Client {
    return new Client({ client: id, replicaCount: this.options.replicaCount, retryTicks: 25, timeoutTicks: 3000 });
  }

  #clientAddress(id: bigint): number {
    return CLIENT_BASE + Number((id - 1n) % CLIENT_GENERATION);
  }

  /** The kernel of replica `r`'s current incarnation (undefined while it is down). */
  kernel(r: number): Kernel | undefined {
    return this.#nodes[r]?.machine?.kernel;
  }

  /** Options for a new incarnation of replica `r`, with a fresh kernel. */
  #replicaOptions(r: number): ReplicaOptions {
    const node = this.#nodes[r] as Node;
    const machine = new KernelMachine((op, _kernel, restored) => (restored === true ? this.#restored(r, op) : this.#applied(r, op)));
    node.machine = machine;
    return {
      cluster: this.cluster, replica: r, replicaCount: this.options.replicaCount, machine,
      prng: this.#prng.split(), sessionsMax: this.options.sessionsMax,
      // Replicas compare checkpoint state hashes where the checker takes them: the kernel hashes once per op.
      checkpointIntervalOps: this.options.stateHashIntervalOps ?? STATE_HASH_INTERVAL_OPS,
      stateTransferLagOps: STATE_TRANSFER_LAG_OPS, ...(this.options.bugs ? { bugs: this.options.bugs } : {}),
    };
  }

  #restored(r: number, op: number): void {
    this.#trace(`r${r} state transfer to op${op}`);
    this.checker.onStateTransfer(r, op);
    const machine = (this.#nodes[r] as Node).machine;
    if (machine !== undefined) this.checker.onStateHash(r, op, checksumHex(machine.stateHash()));
  }

  #applied(r: number, op: number): void {
    const machine = (this.#nodes[r] as Node).machine;
    if (machine !== undefined && this.checker.wantsStateHash(op)) this.checker.onStateHash(r, op, checksumHex(machine.stateHash()));
  }

  #trace(line: string): void {
    const full = `${this.#tick} ${line}`;
    this.#traceHash.update(new TextEncoder().encode(full + '\n'));
    this.options.trace?.(full);
  }

  run(): SimulationResult {
    let failure: string | undefined;
    let livenessTicks = 0;
    try {
      while (this.#tick < this.options.safetyTicks) this.#step();
      this.#startLiveness();
      const start = this.#tick;
      while (!this.#converged()) {
        if (this.#tick - start > this.options.livenessTicksMax) {
          throw new LivenessFailure(`no convergence within ${this.options.livenessTicksMax} ticks: ${this.#summary()}`);
        }
        this.#step();
      }
      livenessTicks = this.#tick - start;
      this.#checkFinalStates();
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      failure = `${error.name}: ${error.message}`;
      this.#trace(`FAIL ${failure}`);
    }
    const result: SimulationResult = {
      ok: failure === undefined, seed: this.options.seed, phase: failure === undefined ? 'done' : this.#phase,
      tick: this.#tick, traceHash: checksumHex(this.#traceHash.digest()),
      stats: {
        committedOps: this.checker.committedOpMax, acceptedReplies: this.checker.acceptedReplies, crashes: this.#crashes,
        viewMax: this.#viewMax, packetsSent: this.#network.sent, packetsRejected: this.#rejected,
        corruptions: this.#corruptions, misdirectedWrites: this.#misdirectedWrites, clockJumps: this.#clockJumps, pauses: this.#pauses,
        clogs: this.#clogs, latentReadErrors: this.#latentReadErrors,
        recoveringHeads: this.#recoveringHeads, wipes: this.#wipes, stateTransfers: this.checker.stateTransfers, livenessTicks, requestsSubmitted: this.#requestsSubmitted,
        stateHashChecks: this.checker.stateHashChecks, restartStateHashChecks: this.checker.restartStateHashChecks,
        stateReads: this.#stateReads,
      },
    };
    return failure === undefined ? result : { ...result, failure };
  }

  #summary(): string {
    return this.#nodes.map((node, r) => {
      const replica = node.replica;
      if (replica === undefined) return `r${r}:down`;
      return `r${r}:${replica.status}/v${replica.view}/lv${replica.logView}/op${replica.op}/c${replica.commitMin}-${replica.commitMax}`;
    }).join(' ') + ` clients busy ${this.#clients.filter((c) => c.client.busy).length}`;
  }

  #step(): void {
    this.#tick += 1;
    if (this.#phase === 'safety') this.#injectFaults();
    this.#restartDue();
    for (const node of this.#nodes) node.clock.advance();
    this.#resumeDue();
    for (const packet of this.#network.deliver(this.#tick)) {
      const node = this.#nodes[packet.to];
      if (node !== undefined && this.#paused(node)) {
        if (node.inbox.length < PAUSE_INBOX_MAX) node.inbox.push(packet);
        continue;
      }
      this.#deliver(packet.from, packet.to, packet.bytes);
    }
    for (let r = 0; r < this.#nodes.length; r++) {
      const node = this.#nodes[r] as Node;
      if (node.replica === undefined || this.#paused(node)) continue;
      for (const writeId of node.disk.complete(this.#tick)) this.#perform(r, node.replica.onWriteDone(writeId));
    }
    for (let r = 0; r < this.#nodes.length; r++) {
      const node = this.#nodes[r] as Node;
      if (node.replica !== undefined && !this.#paused(node)) this.#perform(r, node.replica.onTick(node.clock.nowUs));
    }
    for (const sim of this.#clients) {
      this.#clientEffects(sim, sim.client.onTick());
      this.#workload(sim);
    }
    for (let r = 0; r < this.#nodes.length; r++) {
      const replica = this.#nodes[r]?.replica;
      if (replica === undefined) continue;
      this.checker.onState(r, replica.view, replica.commitMin);
      this.#viewMax = Math.max(this.#viewMax, replica.view);
    }
  }

  #deliver(from: number, to: number, bytes: Uint8Array): void {
    const decoded = decodeMessage(this.cluster, bytes);
    if (!decoded.ok) {
      this.#rejected += 1;
      this.#trace(`${from}->${to} rejected: ${decoded.reason}`);
      return;
    }
    this.#trace(`${from}->${to} ${describe(decoded.value)}`);
    if (to >= CLIENT_BASE) {
      const sim = this.#clients[to - CLIENT_BASE];
      const message = decoded.value;
      const current = message.kind === 'reply' || message.kind === 'eviction' ? message.client === sim?.client.id : true;
      if (sim !== undefined && current) this.#clientEffects(sim, sim.client.onMessage(message));
      return;
    }
    const replica = this.#nodes[to]?.replica;
    if (replica !== undefined) this.#perform(to, replica.onMessage(decoded.value));
  }

  #perform(r: number, effects: Effect[]): void {
    const node = this.#nodes[r] as Node;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#network.send(r, effect.to, encodeMessage(this.cluster, effect.message), this.#tick);
          break;
        case 'reply':
          this.#network.send(r, this.#clientAddress(effect.client), encodeMessage(this.cluster, effect.message), this.#tick);
          break;
        case 'write_log':
        case 'truncate_log':
        case 'write_superblock':
          node.disk.submit(effect, this.#tick, 1 + this.#prng.int(this.options.faults.writeDelayTicksMax));
          break;
        case 'committed':
          this.#trace(`r${r} committed op${effect.header.op} ${effect.header.operation} c${effect.header.client}#${effect.header.request}${effect.executed ? '' : ' (not executed)'}`);
          this.checker.onCommitted(r, effect.header, effect.result, effect.executed);
          break;
        default:
          effect satisfies never;
      }
    }
  }

  #clientEffects(sim: SimClient, effects: ClientEffect[]): void {
    const id = sim.client.id;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#network.send(this.#clientAddress(id), effect.to, encodeMessage(this.cluster, effect.message), this.#tick);
          break;
        case 'registered':
          sim.registerFloor = undefined;
          this.#trace(`c${id} registered session ${effect.session}`);
          this.checker.onReply(id, 0, effect.session, new Uint8Array(0), sim.floor);
          break;
        case 'result':
          this.#trace(`c${id} #${effect.request} result at op${effect.op}`);
          this.checker.onReply(id, effect.request, effect.op, effect.body, sim.floor);
          this.#checkResult(sim, effect.op, effect.body);
          break;
        case 'indeterminate':
          this.#trace(`c${id} #${effect.request} indeterminate`);
          sim.pending = undefined;
          break;
        case 'evicted':
          this.#trace(`c${id} #${effect.request} evicted`);
          sim.client = this.#newClient(id + CLIENT_GENERATION);
          sim.registerFloor = undefined;
          sim.pending = undefined;
          break;
        default:
          effect satisfies never;
      }
    }
  }

  #workload(sim: SimClient): void {
    if (sim.client.busy) return;
    if (this.#phase === 'liveness') {
      if (sim.probeDone) return;
      sim.probeDone = true;
    } else if (!this.#prng.chance(0.2)) {
      return;
    }
    sim.floor = this.checker.requestFloor();
    if (!sim.client.registered) {
      // A register retried after an indeterminate outcome may be answered by the first one's commit.
      sim.registerFloor ??= sim.floor;
      sim.floor = sim.registerFloor;
      this.#clientEffects(sim, sim.client.register());
    } else {
      const request = nextRequest(sim.tenant, `c${sim.client.id}`, sim.progress, this.#prng);
      sim.pending = request;
      this.#requestsSubmitted += 1;
      this.#clientEffects(sim, sim.client.submit(request.body));
    }
  }

  /**
   * An accepted kernel reply makes sense for its request, and the state it reports is what a
   * replica's kernel holds at the reply's op: read through the first live replica that has
   * applied that far (tenant isolation, inserted/deleted keys).
   */
  #checkResult(sim: SimClient, op: number, body: Uint8Array): void {
    const request = sim.pending;
    sim.pending = undefined;
    if (request === undefined) return;
    const reply = checkReply(request, body, op);
    learn(sim.progress, request, reply);
    const kernel = this.#nodes.find((node) => node.machine !== undefined && node.replica !== undefined && node.machine.kernel.head >= op)?.machine?.kernel;
    if (kernel === undefined) return;
    this.#stateReads += 1;
    checkStateAtReply(kernel, request, reply, op, this.#tenants(), this.#eventsCheckedTo);
  }

  #tenants(): TenantId[] {
    return [...new Set(this.#clients.map((c) => c.tenant))];
  }

  /** Once converged, every replica holds the same state at the same op. */
  #checkFinalStates(): void {
    for (let r = 0; r < this.#nodes.length; r++) {
      const kernel = this.#nodes[r]?.machine?.kernel;
      assert(kernel !== undefined, 'every replica is up once converged');
      this.checker.onStateHash(r, kernel.head, checksumHex(kernel.stateHash()), true);
    }
  }

  // ---------------------------------------------------------------- faults

  #injectFaults(): void {
    const faults = this.options.faults;
    const prng = this.#faultPrng;
    const n = this.options.replicaCount;
    if (faults.partitions && prng.chance(faults.partitionProbability)) this.#partition();
    if (faults.crashes && prng.chance(faults.crashProbability)) {
      const up = this.#nodes.map((node, r) => (node.replica === undefined ? -1 : r)).filter((r) => r >= 0);
      if (n - up.length < faults.downMax && up.length > 0) this.#crash(prng.pick(up));
    }
    if (faults.diskCorruption && prng.chance(0.003)) this.#corruptAtRest();
    this.#injectSwarmFaults();
  }

  /** Clock jumps, process pauses and clogged links, drawn from their own PRNG. */
  #injectSwarmFaults(): void {
    const faults = this.options.faults;
    const prng = this.#swarmPrng;
    const n = this.options.replicaCount;
    if (faults.clockJumps && prng.chance(0.002)) {
      const r = prng.int(n);
      const deltaUs = (prng.chance(0.5) ? 1 : -1) * prng.range(1_000, 60_000_000);
      (this.#nodes[r] as Node).clock.jump(deltaUs);
      this.#clockJumps += 1;
      this.#trace(`clock r${r} jumps ${deltaUs}us`);
    }
    if (faults.pauses && prng.chance(0.002)) {
      const r = prng.int(n);
      const node = this.#nodes[r] as Node;
      if (node.replica !== undefined && !this.#paused(node)) {
        node.pausedUntil = this.#tick + prng.range(10, 150);
        this.#pauses += 1;
        this.#trace(`pause r${r} until tick ${node.pausedUntil}`);
      }
    }
    if (faults.clogging && n > 1 && prng.chance(0.004)) {
      const from = prng.int(n);
      const to = (from + 1 + prng.int(n - 1)) % n;
      const until = this.#tick + prng.range(5, 80);
      this.#network.clog(from, to, until);
      this.#clogs += 1;
      this.#trace(`clog ${from}>${to} until tick ${until}`);
    }
  }

  #paused(node: Node): boolean {
    return this.#tick < node.pausedUntil;
  }

  /** A paused replica whose pause is over gets everything that arrived meanwhile, in order. */
  #resumeDue(): void {
    for (let r = 0; r < this.#nodes.length; r++) {
      const node = this.#nodes[r] as Node;
      if (node.pausedUntil === 0 || this.#paused(node)) continue;
      node.pausedUntil = 0;
      const burst = node.inbox;
      node.inbox = [];
      this.#trace(`resume r${r} (${burst.length} messages waiting)`);
      for (const packet of burst) {
        if (node.replica === undefined) break;
        this.#deliver(packet.from, packet.to, packet.bytes);
      }
    }
  }

  #partition(): void {
    const prng = this.#faultPrng;
    const n = this.options.replicaCount;
    this.#network.heal();
    const kind = prng.pick(['heal', 'isolate', 'send_only', 'receive_only', 'split'] as const);
    const r = prng.int(n);
    for (let x = 0; x < n; x++) {
      if (x === r) continue;
      if (kind === 'isolate' || kind === 'send_only') this.#network.block(x, r);
      if (kind === 'isolate' || kind === 'receive_only') this.#network.block(r, x);
    }
    if (kind === 'split') {
      const side = this.#nodes.map(() => prng.chance(0.5));
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (side[a] !== side[b]) this.#network.block(a, b);
    }
    this.#trace(`partition ${kind} r${r} blocked [${this.#network.blockedLinks.join(' ')}]`);
  }

  #crash(r: number): void {
    const node = this.#nodes[r] as Node;
    const undo = node.disk.snapshot();
    const outcome = node.disk.crash(this.#faultPrng, this.options.faults.torn);
    const wipe = this.options.faults.wipes && this.options.replicaCount > 1 && this.#swarmPrng.chance(0.3) && this.#wipeAllowed(r);
    const untrusted = wipe || node.disk.headUntrusted(this.cluster);
    if (untrusted && this.#untrustedHeads() >= this.options.replicaCount - quorums(this.options.replicaCount).viewChange) {
      // Atlas: replicas that cannot trust their heads never vote, so a view-change quorum of the
      // others must remain. This crash would break that: it does not happen.
      undo();
      this.#trace(`crash r${r} refused by the atlas (too many untrusted heads)`);
      return;
    }
    node.untrustedHead = untrusted;
    if (wipe) {
      node.disk.wipe();
      this.#wipes += 1;
    }
    const kernel = node.machine?.kernel;
    // Its restart replays the durable log into a fresh kernel, which must pass through this state.
    if (kernel !== undefined && kernel.head > 0) this.checker.onStateHash(r, kernel.head, checksumHex(kernel.stateHash()), true);
    node.replica = undefined;
    node.machine = undefined;
    node.pausedUntil = 0;
    node.inbox = [];
    node.restartTick = this.#tick + this.#faultPrng.range(20, 300);
    this.#network.dropTo(r);
    this.#crashes += 1;
    this.#trace(`crash r${r} (in-flight writes kept ${outcome.survived}${outcome.torn ? ', torn' : ''}${wipe ? ', disk wiped' : ''})`);
  }

  #restartDue(): void {
    for (let r = 0; r < this.#nodes.length; r++) {
      const node = this.#nodes[r] as Node;
      if (node.replica !== undefined || (this.#phase === 'safety' && this.#tick < node.restartTick)) continue;
      // A disk with nothing on it since its wipe: the replica rejoins, as a driver with an empty data directory would.
      const blank = node.disk.blank;
      const unreadable = blank ? [] : this.#latentReadError(r);
      node.replica = blank ? Replica.rejoin(this.#replicaOptions(r)) : Replica.open(this.#replicaOptions(r), node.disk.durableState(unreadable));
      node.untrustedHead = false;
      if (node.replica.recovery !== 'none') this.#recoveringHeads += 1;
      this.checker.onReopen(r, node.replica.view);
      this.#trace(`restart r${r} view ${node.replica.view} op ${node.replica.op} commit ${node.replica.commitMax}` +
        `${unreadable.length > 0 ? ` unreadable op${unreadable.join(',')}` : ''}${node.replica.recovery === 'none' ? '' : ` ${node.replica.recovery}`}`);
    }
  }

  /** Atlas for a wipe: every committed entry this disk holds has an intact copy on another disk. */
  #wipeAllowed(r: number): boolean {
    const disk = (this.#nodes[r] as Node).disk;
    for (const op of disk.slots.keys()) {
      if (op > 0 && op <= this.checker.committedOpMax && !this.#intactElsewhere(r, op) && this.#holdsCommitted(disk, op)) {
        this.#trace(`wipe r${r} refused by the atlas (op${op} has no intact copy elsewhere)`);
        return false;
      }
    }
    return true;
  }

  /** Does `disk` hold the committed entry at `op` intact (not a stale or damaged one)? */
  #holdsCommitted(disk: SimDisk, op: number): boolean {
    const entry = decodeEntry(disk.slots.get(op) ?? new Uint8Array(0));
    const committed = this.checker.committedAt(op);
    return entry !== undefined && committed !== undefined && entry.header.op === op && checksumEqual(entry.header.checksum, committed.checksum);
  }

  /** Replicas that would not or do not vote because they cannot trust their heads. */
  #untrustedHeads(): number {
    return this.#nodes.filter((node) => (node.replica === undefined ? node.untrustedHead : node.replica.recovery !== 'none')).length;
  }

  /** Is another disk's slot at `op` byte-identical to replica `r`'s (an intact copy elsewhere)? */
  #intactElsewhere(r: number, op: number): boolean {
    const mine = (this.#nodes[r] as Node).disk.slots.get(op);
    if (mine === undefined) return false;
    return this.#nodes.some((node, x) => {
      const other = node.disk.slots.get(op);
      return x !== r && other !== undefined && other.length === mine.length && other.every((b, i) => b === mine[i]);
    });
  }

  /**
   * Atlas for misdirected writes: the write lands on a slot of this disk at or below its durable
   * commit_max (never rewritten with other contents, so the evidence stays) whose entry another
   * disk holds intact.
   */
  #misdirectTarget(r: number, op: number): number | undefined {
    if (this.#phase !== 'safety' || !this.options.faults.misdirectedWrites || !this.#swarmPrng.chance(0.01)) return undefined;
    const disk = (this.#nodes[r] as Node).disk;
    const candidates = [...disk.slots.keys()].filter((j) => j > 0 && j !== op && j <= disk.superblock.commitMax);
    if (candidates.length === 0) return undefined;
    const target = this.#swarmPrng.pick(candidates.sort((a, b) => a - b));
    if (!this.#intactElsewhere(r, target)) return undefined;
    this.#misdirectedWrites += 1;
    this.#trace(`misdirect r${r} op${op} written to slot op${target}`);
    return target;
  }

  /** Atlas for latent read errors: one committed slot below the top, intact on another disk. */
  #latentReadError(r: number): number[] {
    if (this.#phase !== 'safety' || !this.options.faults.latentReadErrors || !this.#swarmPrng.chance(0.3)) return [];
    const disk = (this.#nodes[r] as Node).disk;
    const ops = [...disk.slots.keys()].sort((a, b) => a - b);
    const top = ops[ops.length - 1] ?? 0;
    const candidates = ops.filter((op) => op > 0 && op < top && op <= disk.superblock.commitMax);
    if (candidates.length === 0) return [];
    const op = this.#swarmPrng.pick(candidates);
    if (!this.#intactElsewhere(r, op)) return [];
    this.#latentReadErrors += 1;
    return [op];
  }

  /**
   * The corruption atlas: only committed slots below a replica's highest slot, and only while at
   * least one other disk holds an intact copy of the same entry.
   */
  #corruptAtRest(): void {
    const prng = this.#faultPrng;
    const r = prng.int(this.options.replicaCount);
    const disk = (this.#nodes[r] as Node).disk;
    const ops = [...disk.slots.keys()].sort((a, b) => a - b);
    const top = ops[ops.length - 1] ?? 0;
    const candidates = ops.filter((op) => op < top && op <= disk.superblock.commitMax);
    if (candidates.length === 0) return;
    const op = prng.pick(candidates);
    if (!this.#intactElsewhere(r, op)) return;
    disk.corrupt(op, prng);
    this.#corruptions += 1;
    this.#trace(`corrupt r${r} slot op${op}`);
  }

  // ---------------------------------------------------------------- liveness

  #startLiveness(): void {
    this.#phase = 'liveness';
    this.#network.heal();
    this.#network.unclog();
    for (const node of this.#nodes) if (node.pausedUntil > this.#tick) node.pausedUntil = this.#tick;
    this.#network.options = { ...this.#network.options, loss: 0, duplicate: 0, corrupt: 0 };
    this.#trace('liveness phase: faults off, all replicas up');
  }

  #converged(): boolean {
    if (this.#clients.some((c) => c.client.busy || !c.probeDone)) return false;
    let view: number | undefined;
    let commit: number | undefined;
    for (const node of this.#nodes) {
      const replica = node.replica;
      if (replica === undefined || replica.status !== 'normal') return false;
      if (view !== undefined && replica.view !== view) return false;
      view = replica.view;
      if (replica.commitMin !== replica.commitMax || replica.commitMin !== replica.op) return false;
      if (commit !== undefined && replica.commitMin !== commit) return false;
      commit = replica.commitMin;
    }
    return commit === this.checker.committedOpMax;
  }
}

export class LivenessFailure extends Error {
  override readonly name = 'LivenessFailure';
}

export { SafetyViolation };

/** Runs `options` and returns the result (a convenience for tests and the CLI). */
export function simulate(options: SimulatorOptions): SimulationResult {
  return new Simulator(options).run();
}

/** The command that replays `seed` with a full trace. */
export function replayCommand(seed: number, replicaCount: number): string {
  return `npm run sim -- --seed ${seed} --replicas ${replicaCount} --trace`;
}

/** One line for a test assertion: the seed, its failure if any, and how to replay it. */
export function describeResult(result: SimulationResult, replicaCount: number): string {
  return result.ok ? `seed ${result.seed}: ok (${result.stats.committedOps} ops, liveness in ${result.stats.livenessTicks} ticks)`
    : `seed ${result.seed}: ${result.failure}\n  replay: ${replayCommand(result.seed, replicaCount)}`;
}
