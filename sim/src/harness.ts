import { clusterId, Prng, type ClusterId } from '@veritydb/types';
import {
  decodeMessage, encodeMessage, FROM_CLIENT, Replica, type Effect, type Message, type ReplicaBugs, type StateMachine, type Superblock,
} from '@veritydb/vsr';
import { Checker, SafetyViolation } from './checker.js';
import { describe } from './describe.js';
import { SimDisk } from './disk.js';
import { CounterMachine, counterBody, text } from './machine.js';

interface Packet { readonly from: number; readonly to: number; readonly bytes: Uint8Array }

/**
 * A step-by-step driver for scripted transcript tests (in the style of etcd-raft's testdata):
 * every message, write completion and tick is explicit, and each command prints what happened.
 * Clients are addressed as `c<id>`; the harness keeps their sessions.
 */
export class Harness {
  readonly cluster: ClusterId = clusterId(7n);
  readonly replicas: (Replica | undefined)[] = [];
  readonly disks: SimDisk[] = [];
  readonly #options: {
    replicaCount: number; sessionsMax: number; bugs: Partial<ReplicaBugs>; checkpointIntervalOps: number | undefined;
    stateTransferLagOps: number | undefined;
    machine: (replica: number) => StateMachine;
  };
  #queue: Packet[] = [];
  readonly #blocked = new Set<string>();
  readonly #sessions = new Map<bigint, number>();
  #tick = 0;
  #out: string[] = [];
  #verbose = true;
  readonly #prng = new Prng(1);
  readonly #checker = new Checker();

  constructor(replicaCount: number, options: {
    sessionsMax?: number; bugs?: Partial<ReplicaBugs>; checkpointIntervalOps?: number; stateTransferLagOps?: number;
    machine?: (replica: number) => StateMachine;
  } = {}) {
    this.#options = {
      replicaCount, sessionsMax: options.sessionsMax ?? 16, bugs: options.bugs ?? {}, checkpointIntervalOps: options.checkpointIntervalOps,
      stateTransferLagOps: options.stateTransferLagOps,
      machine: options.machine ?? (() => new CounterMachine()),
    };
    for (let r = 0; r < replicaCount; r++) {
      const superblock: Superblock = {
        cluster: this.cluster, replica: r, replicaCount, view: 0, logView: 0, commitMax: 0, checkpoint: 0, viewHeaders: [],
      };
      this.disks.push(new SimDisk(superblock));
      this.replicas.push(Replica.format(this.#replicaOptions(r)));
    }
  }

  #replicaOptions(r: number) {
    return {
      cluster: this.cluster, replica: r, replicaCount: this.#options.replicaCount, machine: this.#options.machine(r),
      prng: new Prng(100 + r), sessionsMax: this.#options.sessionsMax, bugs: this.#options.bugs,
      ...(this.#options.checkpointIntervalOps === undefined ? {} : { checkpointIntervalOps: this.#options.checkpointIntervalOps }),
      ...(this.#options.stateTransferLagOps === undefined ? {} : { stateTransferLagOps: this.#options.stateTransferLagOps }),
    };
  }

  /** Runs a script (one command per line, `#` comments) and returns the transcript. */
  run(script: string): string {
    const lines: string[] = [];
    for (const raw of script.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      if (line.startsWith('#')) { lines.push(line); continue; }
      this.#out = [];
      try {
        this.#command(line);
      } catch (error) {
        if (!(error instanceof SafetyViolation)) throw error;
        this.#out.push(`VIOLATION ${error.message}`);
        lines.push(`> ${line}`, ...this.#out);
        break;
      }
      lines.push(`> ${line}`, ...this.#out);
    }
    return lines.join('\n') + '\n';
  }

  #command(line: string): void {
    const [verb = '', ...args] = line.split(/\s+/);
    const num = (i: number): number => Number(args[i]);
    switch (verb) {
      case 'register': return this.#client(BigInt(num(0)), 'register', '', args[1]);
      case 'request': return this.#client(BigInt(num(0)), 'normal', args[1] ?? '', args[2]);
      case 'deliver': return this.#settle(true);
      case 'tick': return this.#ticks(num(0));
      case 'isolate': return this.#isolate(num(0), args[1] ?? 'both');
      case 'block': { const [a, b] = (args[0] ?? '').split('>').map(Number); this.#blocked.add(`${a}>${b}`); return; }
      case 'heal': this.#blocked.clear(); return;
      case 'crash': return this.#crash(num(0));
      case 'restart': return this.#restart(num(0));
      case 'wipe': this.disks[num(0)]?.wipe(); this.#out.push(`r${num(0)} disk wiped`); return;
      case 'rejoin': return this.#rejoin(num(0));
      case 'corrupt': this.disks[num(0)]?.corrupt(num(1), this.#prng); this.#out.push(`r${num(0)} slot op${num(1)} corrupted on disk`); return;
      case 'tear': this.disks[num(0)]?.tear(num(1)); this.#out.push(`r${num(0)} slot op${num(1)} torn on disk`); return;
      case 'status': return this.#status();
      default: throw new Error(`unknown command: ${line}`);
    }
  }

  #client(client: bigint, operation: 'register' | 'normal', body: string, to?: string): void {
    const [request = '1', key = 'k'] = body.split(':');
    const target = to === undefined ? this.#primaryGuess() : Number(to);
    const message: Message = {
      kind: 'request', from: FROM_CLIENT, client, session: this.#sessions.get(client) ?? 0,
      request: operation === 'register' ? 0 : Number(request), operation,
      body: operation === 'register' ? new Uint8Array(0) : counterBody(key, 1),
    };
    this.#queue.push({ from: 100 + Number(client), to: target, bytes: encodeMessage(this.cluster, message) });
    this.#settle(true);
  }

  #primaryGuess(): number {
    let best = 0;
    let view = -1;
    this.replicas.forEach((replica, r) => {
      if (replica !== undefined && replica.status === 'normal' && replica.isPrimary && replica.view > view) { view = replica.view; best = r; }
    });
    return best;
  }

  #isolate(r: number, how: string): void {
    for (let x = 0; x < this.replicas.length; x++) {
      if (x === r) continue;
      if (how === 'both' || how === 'receive') this.#blocked.add(`${x}>${r}`);
      if (how === 'both' || how === 'send') this.#blocked.add(`${r}>${x}`);
    }
    this.#out.push(`blocked ${[...this.#blocked].sort().join(' ')}`);
  }

  /** Delivers every queued message and completes every write until nothing is left. */
  #settle(print: boolean): void {
    const previous = this.#verbose;
    this.#verbose = print;
    for (let round = 0; round < 10_000; round++) {
      const packet = this.#queue.shift();
      if (packet !== undefined) { this.#deliver(packet); continue; }
      let wrote = false;
      for (let r = 0; r < this.replicas.length; r++) {
        const replica = this.replicas[r];
        const id = replica === undefined ? undefined : this.disks[r]?.completeOne();
        if (replica !== undefined && id !== undefined) { this.#perform(r, replica.onWriteDone(id)); wrote = true; }
      }
      if (!wrote) break;
    }
    this.#verbose = previous;
  }

  #deliver(packet: Packet): void {
    if (this.#blocked.has(`${packet.from}>${packet.to}`)) return;
    const decoded = decodeMessage(this.cluster, packet.bytes);
    if (!decoded.ok) { this.#out.push(`rejected ${decoded.reason}`); return; }
    const message = decoded.value;
    const from = packet.from >= 100 ? `c${packet.from - 100}` : `r${packet.from}`;
    const to = packet.to >= 100 ? `c${packet.to - 100}` : `r${packet.to}`;
    const viewChange = message.kind === 'do_view_change' || message.kind === 'start_view' || message.kind === 'request_state' || message.kind === 'state';
    if (this.#verbose || viewChange) this.#out.push(`${this.#verbose ? '' : `tick ${this.#tick}: `}${from}->${to} ${describe(message)}`);
    if (packet.to >= 100) {
      if (message.kind === 'reply') {
        if (message.request === 0) this.#sessions.set(message.client, message.op);
        if (!this.#verbose) this.#out.push(`${to} got reply #${message.request} op${message.op} ${text(message.body)}`);
        else this.#out.push(`  ${to} result: ${text(message.body) || '(registered)'}`);
      }
      if (message.kind === 'eviction' && !this.#verbose) this.#out.push(`${to} got eviction`);
      return;
    }
    const replica = this.replicas[packet.to];
    if (replica === undefined) return;
    const transfers = replica.stateTransfers;
    const effects = replica.onMessage(message);
    if (message.kind === 'state' && replica.stateTransfers > transfers) {
      this.#checker.onStateTransfer(packet.to, message.op);
      this.#out.push(`${this.#verbose ? '  ' : `tick ${this.#tick}: `}${to} installs the state at op${message.op}`);
    }
    this.#perform(packet.to, effects);
  }

  #perform(r: number, effects: Effect[]): void {
    const disk = this.disks[r] as SimDisk;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send': this.#queue.push({ from: r, to: effect.to, bytes: encodeMessage(this.cluster, effect.message) }); break;
        case 'reply': this.#queue.push({ from: r, to: 100 + Number(effect.client), bytes: encodeMessage(this.cluster, effect.message) }); break;
        case 'write_log': case 'truncate_log': case 'write_superblock': disk.submit(effect, 0, 0); break;
        case 'committed':
          this.#checker.onCommitted(r, effect.header, effect.result, effect.executed);
          if (this.#verbose) this.#out.push(`  r${r} commits op${effect.header.op} ${effect.header.operation}${effect.executed ? '' : ' (not executed)'}`);
          break;
        default: effect satisfies never;
      }
    }
  }

  #ticks(count: number): void {
    const before = this.#snapshot();
    for (let i = 0; i < count; i++) {
      this.#tick += 1;
      for (let r = 0; r < this.replicas.length; r++) {
        const replica = this.replicas[r];
        if (replica !== undefined) this.#perform(r, replica.onTick(this.#tick * 1000));
      }
      this.#settle(false);
      const now = this.#snapshot();
      now.forEach((line, r) => { if (line !== before[r]) { this.#out.push(`tick ${this.#tick}: r${r} ${line}`); before[r] = line; } });
    }
  }

  #snapshot(): string[] {
    return this.replicas.map((replica) => {
      if (replica === undefined) return 'down';
      const role = replica.status === 'normal' ? (replica.isPrimary ? (replica.abdicated ? 'primary (abdicated)' : 'primary') : 'backup') : 'view_change';
      return `${role}${replica.recovery === 'none' ? '' : ` (${replica.recovery})`} view ${replica.view}`;
    });
  }

  #crash(r: number): void {
    this.replicas[r] = undefined;
    this.#queue = this.#queue.filter((p) => p.to !== r);
    this.disks[r]?.crash(new Prng(0), 0);
    this.#out.push(`r${r} crashed`);
  }

  #restart(r: number): void {
    const replica = Replica.open(this.#replicaOptions(r), (this.disks[r] as SimDisk).durableState());
    this.replicas[r] = replica;
    this.#checker.onReopen(r, replica.view);
    this.#out.push(`r${r} restarted: ${replica.status} view ${replica.view} op ${replica.op} commit ${replica.commitMax}` +
      `${replica.recovery === 'none' ? '' : ` (${replica.recovery})`}`);
  }

  /** Starts replica `r` on its (wiped) disk in amnesia: it knows only the cluster and its index. */
  #rejoin(r: number): void {
    const replica = Replica.rejoin(this.#replicaOptions(r));
    this.replicas[r] = replica;
    this.#checker.onReopen(r, replica.view);
    this.#out.push(`r${r} rejoined: ${replica.status} view ${replica.view} op ${replica.op} (${replica.recovery})`);
  }

  #status(): void {
    this.replicas.forEach((replica, r) => {
      if (replica === undefined) { this.#out.push(`r${r} down`); return; }
      const role = (replica.status === 'normal' ? (replica.isPrimary ? 'primary' : 'backup') : 'view_change') +
        (replica.recovery === 'none' ? '' : ` (${replica.recovery})`);
      this.#out.push(`r${r} ${role} view ${replica.view} log_view ${replica.logView} op ${replica.op} commit ${replica.commitMin}/${replica.commitMax}`);
    });
  }
}
