import { Connection } from '@veritydb/client';
import { ClusterNode, type BackupCut, type LogReader, type WriteOutcome } from '@veritydb/runtime';
import type { Envelope } from '@veritydb/kernel';
import { assert, clientId as toClientId, position as toPosition, tenantId, type ClusterId, type Position, type ReplicaIndex, type Row } from '@veritydb/types';
import type { ClusterStatus, PrimaryHint, ReplicaStatus, TenantInfo, WireError } from '@veritydb/wire';
import type {
  Engine, EngineOutcome, EngineStatement, EngineStatus, ExecuteOutcome, QueryOutcome, ReadRequest, SessionNumbers, StatementRows,
} from './engine.js';
import { kernelError, readWaitMs, readWhenApplied, refused, submitError } from './local-engine.js';

/**
 * The server's `Engine` for one replica of a 3- or 5-replica cluster, over the runtime's
 * `ClusterNode` (the VSR replica on real disks). Writes are taken by the primary only: a backup
 * answers `NotPrimary` naming it; during a view change a write waits (bounded) for the new view.
 * Reads follow DESIGN §9: `linearizable` on the primary after a no-op barrier commits,
 * `causal` / `atPosition` wherever the position is applied, `eventual` at once.
 *
 * @example
 *   const engine = await ClusterEngine.open({ dataDir, clusterId, replicaIndex: 1, addresses });
 *   engine.start(transport);
 */
export interface ClusterEngineOptions {
  readonly dataDir: string;
  readonly clusterId: bigint;
  readonly replicaIndex: number;
  /** Every replica's client address ("host:port"), in index order. */
  readonly addresses: readonly string[];
  /** Milliseconds per replica tick (tests may shorten it). */
  readonly tickMs?: number;
  /** What an empty data dir means (see `ClusterNodeOptions.whenEmpty`). */
  readonly whenEmpty?: 'format' | 'rejoin';
}

export const clusterEngineLimits = Object.freeze({
  /** A write's time budget (the wire execute carries none). */
  writeTimeoutMs: 10_000,
  /** How long a write waits for a view change to settle before answering. */
  viewChangeWaitMs: 5_000,
  /** A peer counts as reachable when a frame arrived from it within this long. */
  peerSeenMs: 2_000,
  /** How long a status request waits for each other replica's own status. */
  peerStatusTimeoutMs: 1_000,
  /** A primary counts as alive when a frame arrived from it within this long (it heartbeats every ~80 ms). */
  primarySeenMs: 500,
});

export class ClusterEngine implements Engine {
  readonly clusterId: bigint;
  readonly node: ClusterNode;
  readonly #addresses: readonly string[];
  readonly #peerSeen = new Map<number, number>();

  private constructor(node: ClusterNode, addresses: readonly string[]) {
    this.clusterId = node.clusterId;
    this.node = node;
    this.#addresses = addresses;
  }

  static async open(options: ClusterEngineOptions): Promise<ClusterEngine> {
    const node = await ClusterNode.open({
      dataDir: options.dataDir, clusterId: options.clusterId, replica: options.replicaIndex, replicaCount: options.addresses.length,
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }), ...(options.whenEmpty === undefined ? {} : { whenEmpty: options.whenEmpty }),
    });
    return new ClusterEngine(node, options.addresses);
  }

  /** A replica frame from peer `from` (already authenticated as that replica). */
  replicaFrame(from: number, payload: Uint8Array): { ok: true } | { ok: false; reason: string } {
    this.#peerSeen.set(from, Date.now());
    return this.node.onPeerMessage(payload);
  }

  /** The primary hint the handshake gives clients (null during a view change). */
  primaryHint(): PrimaryHint | null {
    const primary = this.node.primary;
    if (primary === null || (primary !== this.node.replicaIndex && !this.#heardFrom(primary))) return null;
    return { index: primary as ReplicaIndex, address: this.#addresses[primary] as string };
  }

  /** In a normal view and caught up (`/ready`). */
  get ready(): boolean {
    return this.node.ready;
  }

  onFatal(listener: (error: Error) => void): void {
    this.node.onFatal(listener);
  }

  createTenant(id: number, name: string, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    return this.#write({ tenant: tenantId(id), actor, command: { kind: 'tenant_create', id: tenantId(id), name } }, null, (result) => {
      return result.reply.kind === 'rejected' ? null : { position: result.position };
    }, () => this.node.tenantExists(id) ? { code: 'TenantExists', message: `tenant ${id} already exists` } : null);
  }

  dropTenant(id: number, actor: string): Promise<EngineOutcome<{ position: Position }>> {
    return this.#write({ tenant: tenantId(id), actor, command: { kind: 'tenant_drop', id: tenantId(id) } }, null, (result) => {
      return result.reply.kind === 'rejected' ? null : { position: result.position };
    }, () => this.node.tenantExists(id) ? null : { code: 'TenantNotFound', message: `tenant ${id} does not exist` });
  }

  listTenants(): readonly TenantInfo[] {
    return this.node.listTenants().map(({ id, name }) => ({ id: tenantId(id), name }));
  }

  execute(tenant: number, statements: readonly EngineStatement[], actor: string, session: SessionNumbers | null = null): Promise<EngineOutcome<ExecuteOutcome>> {
    return this.#write({ tenant: tenantId(tenant), actor, command: { kind: 'sql', statements } }, session, (result) => {
      const reply = result.reply;
      if (reply.kind === 'rejected') return null;
      assert(reply.kind === 'sql', `an sql entry replies sql, got ${reply.kind}`);
      const results: StatementRows[] = reply.statements.map((s) => ({ columns: s.columns, rows: s.rows, rowsAffected: s.rowsAffected }));
      return { position: result.position, statements: results };
    }, () => this.node.tenantExists(tenant) ? null : { code: 'TenantNotFound', message: `tenant ${tenant} does not exist` });
  }

  async register(client: bigint, signal?: AbortSignal): Promise<EngineOutcome<{ position: Position }>> {
    const deadline = Date.now() + clusterEngineLimits.writeTimeoutMs;
    for (;;) {
      let outcome;
      try {
        outcome = await this.node.register(client, Math.max(1, deadline - Date.now()), signal);
      } catch (error) {
        return refused(submitError(error));
      }
      switch (outcome.kind) {
        case 'ok': return { ok: true, value: { position: toPosition(outcome.session) } };
        case 'indeterminate': return refused({ code: 'Indeterminate', message: outcome.reason });
        case 'not_primary': {
          const redirect = await this.#redirect(outcome.primary, deadline, signal);
          if (redirect !== null) return refused(redirect);
        }
      }
    }
  }

  async query(tenant: number, statement: EngineStatement, options: ReadRequest): Promise<EngineOutcome<QueryOutcome>> {
    const failure = this.node.failure;
    if (failure !== null) return refused({ code: 'Unavailable', message: `the replica failed and is stopping: ${failure.message}` });
    const timeoutMs = readWaitMs(options.timeoutMs);
    let needed: Position = toPosition(0);
    if (options.consistency === 'linearizable') {
      // Only a primary that commits after the read began can vouch for the latest state.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const barrier = await this.node.linearizableBarrier(Math.max(1, deadline - Date.now()), options.signal);
        if (barrier.kind === 'ok') {
          needed = barrier.result.position;
          break;
        }
        if (barrier.kind === 'not_primary' || !this.node.status().isPrimary) {
          // Deposed (or never the primary): the read goes where the writes go.
          const redirect = await this.#redirect(barrier.kind === 'not_primary' ? barrier.primary : this.node.primary, deadline, options.signal);
          if (redirect !== null) return refused(redirect);
          continue;
        }
        if (Date.now() < deadline && barrier.kind !== 'evicted') continue;
        return refused({ code: 'Timeout', message: `the primary could not confirm its view within ${timeoutMs} ms` });
      }
    } else if (options.consistency === 'causal' || options.consistency === 'atPosition') {
      needed = options.position;
    }
    return readWhenApplied(this.node, tenant, statement, options, needed);
  }

  events(tenant: number, from: Position, stream: string | null): EngineOutcome<readonly Row[]> {
    const kernel = this.node.kernel;
    if (!kernel.hasTenant(tenantId(tenant))) return refused({ code: 'TenantNotFound', message: `tenant ${tenant} does not exist` });
    return { ok: true, value: [...kernel.events(tenantId(tenant), from, stream ?? undefined)] };
  }

  onApplied(listener: (tenant: number, position: Position) => void): () => void {
    return this.node.onApplied(listener);
  }

  status(): EngineStatus {
    const s = this.node.status();
    return {
      logHead: toPosition(s.op), durable: toPosition(Math.min(s.commit, s.op)), applied: s.applied, tenants: s.tenants,
      writesInFlight: s.writesInFlight, failure: s.failure,
    };
  }

  /** The replica's ledger (its committed ops in the storage log format), caught up first. */
  async auditLog(): Promise<EngineOutcome<LogReader>> {
    const failure = this.node.failure;
    if (failure !== null) return refused({ code: 'Unavailable', message: `the replica failed and is stopping: ${failure.message}` });
    const view = this.node.ledger;
    await view.caughtUp();
    return { ok: true, value: view.log };
  }

  /**
   * Not yet: a replica's data dir is its VSR state (journal, superblock, ledger), which a copy
   * taken while it runs would have to capture as one consistent cut, and no checkpoint of it is
   * written yet.
   */
  async backupCut(): Promise<EngineOutcome<BackupCut>> {
    return refused({
      code: 'NotSupported',
      message: `a remote backup of a cluster replica is not supported yet: stop one replica (the others keep serving), run vdb-admin backup --data-dir <its data dir> --out DIR on it, then start it again`,
    });
  }

  /** This replica's view of the cluster: its own positions, and for the others their role and whether they are heard from. */
  clusterStatus(): ClusterStatus {
    const s = this.node.status();
    const now = Date.now();
    const replicas: ReplicaStatus[] = this.#addresses.map((address, index) => {
      const role = s.primary === null ? 'unknown' : s.primary === index ? 'primary' : 'backup';
      if (index === s.replica) {
        return {
          index: index as ReplicaIndex, address, role, state: s.status === 'normal' ? 'normal' : 'viewChange', view: s.view,
          commit: toPosition(s.commit), applied: s.applied,
        };
      }
      const seen = this.#peerSeen.get(index);
      const reachable = seen !== undefined && now - seen <= clusterEngineLimits.peerSeenMs;
      return { index: index as ReplicaIndex, address, role, state: reachable ? 'normal' : 'unreachable', view: s.view, commit: toPosition(0), applied: toPosition(0) };
    });
    return { clusterId: this.clusterId as ClusterId, view: s.view, replicas };
  }

  /**
   * The cluster as every reachable replica reports itself: this replica's status plus, from
   * each other replica, its own entry (asked over the wire with `token`, bounded by
   * `peerStatusTimeoutMs`; a replica that does not answer is `unreachable`). Peers answer such a
   * request from a replica token with their local view only, so the question never fans out.
   */
  async gatheredStatus(token: string): Promise<ClusterStatus> {
    const local = this.clusterStatus();
    const replicas = await Promise.all(local.replicas.map(async (entry) => {
      if (entry.index === this.node.replicaIndex) return entry;
      let connection: Connection | null = null;
      try {
        connection = await Connection.open({
          address: entry.address, token, clientName: `replica-${this.node.replicaIndex}-status`, connectTimeoutMs: clusterEngineLimits.peerStatusTimeoutMs,
        });
        const theirs = await connection.status({ timeoutMs: clusterEngineLimits.peerStatusTimeoutMs });
        return theirs.replicas.find((r) => r.index === entry.index) ?? { ...entry, state: 'unreachable' as const };
      } catch {
        return { ...entry, state: 'unreachable' as const, role: entry.role };
      } finally {
        await connection?.close().catch(() => undefined);
      }
    }));
    return { ...local, replicas };
  }

  async close(): Promise<void> {
    await this.node.close();
  }

  /**
   * One write: refused up front if `precheck` says so (on the primary only: a backup's view of
   * the tenants may lag), then logged; a kernel rejection comes back as an error value.
   */
  async #write<T>(envelope: Envelope, session: SessionNumbers | null, accept: (result: import('@veritydb/kernel').ApplyResult) => T | null,
    precheck: () => WireError | null): Promise<EngineOutcome<T>> {
    const deadline = Date.now() + clusterEngineLimits.writeTimeoutMs;
    for (;;) {
      let outcome: WriteOutcome;
      try {
        const status = this.node.status();
        const problem = status.isPrimary && this.node.ready ? precheck() : null;
        if (problem !== null) return refused(problem);
        const budget = Math.max(1, deadline - Date.now());
        outcome = session === null
          ? await this.node.submit(envelope, budget)
          : await this.node.submitInSession(toClientId(session.client), session.request, envelope, budget);
      } catch (error) {
        return refused(submitError(error));
      }
      switch (outcome.kind) {
        case 'ok': {
          const value = accept(outcome.result);
          if (value !== null) return { ok: true, value };
          assert(outcome.result.reply.kind === 'rejected', 'only a rejection is refused');
          return refused(kernelError(outcome.result.reply.error, outcome.result.position));
        }
        case 'indeterminate': return refused({ code: 'Indeterminate', message: outcome.reason });
        case 'evicted': return refused({ code: 'Evicted', message: 'the client session is unknown or was evicted; register again' });
        case 'not_primary': {
          const redirect = await this.#redirect(outcome.primary, deadline);
          if (redirect !== null) return refused(redirect);
        }
      }
    }
  }

  /**
   * A write or barrier found no primary here. If another replica leads: `NotPrimary` naming it.
   * During a view change: wait (bounded) and return null to try again if this replica won.
   */
  async #redirect(primary: number | null, deadline: number, signal?: AbortSignal): Promise<WireError | null> {
    if (primary !== null && primary !== this.node.replicaIndex && this.#heardFrom(primary)) return this.#notPrimary(primary);
    // No primary, or one this replica has stopped hearing from (it is probably gone and a view
    // change is coming): wait, bounded, for a primary that is alive.
    const budget = Math.min(deadline - Date.now(), clusterEngineLimits.viewChangeWaitMs);
    if (budget <= 0 || signal?.aborted === true) return { code: 'Unavailable', message: 'a view change is in progress; no primary is known yet' };
    const until = Date.now() + budget;
    const aborted = (): boolean => signal?.aborted === true;
    while (Date.now() < until && !aborted() && this.node.isOpen) {
      // Wait first: the caller found no writable primary here just now, and returning without a
      // pause would spin in microtasks, starving the ticks and messages that end a view change
      // (an abdicated primary is the primary of a normal view, yet refuses writes).
      await this.node.nextViewChange(20);
      const now = this.node.primary;
      if (this.node.acceptsWrites) return null;
      if (now !== null && now !== this.node.replicaIndex && this.#heardFrom(now)) return this.#notPrimary(now);
    }
    return { code: 'Unavailable', message: 'a view change is in progress; no live primary is known yet' };
  }

  /** Whether a replica frame from `replica` arrived recently (a live primary heartbeats every few ticks). */
  #heardFrom(replica: number): boolean {
    const seen = this.#peerSeen.get(replica);
    return seen !== undefined && Date.now() - seen <= clusterEngineLimits.primarySeenMs;
  }

  #notPrimary(primary: number): WireError {
    return {
      code: 'NotPrimary', message: `replica ${this.node.replicaIndex} is a backup; the primary is replica ${primary}`,
      primary: { index: primary as ReplicaIndex, address: this.#addresses[primary] as string },
    };
  }
}
