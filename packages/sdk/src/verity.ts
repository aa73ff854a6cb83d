import type { ApplyResult, Envelope, KernelError, ReadOutcome } from '@veritydb/kernel';
import { EVENTS_TABLE } from '@veritydb/query';
import { assert, checksumHex, limits, position as toPosition, tenantId as toTenantId, VerityError, type SqlType, type TenantId } from '@veritydb/types';
import { EMBEDDED_CLUSTER, SingleNodeEngine } from '@veritydb/runtime';
import type { VerifyResult } from '@veritydb/storage';
import { isReadOnly, type Backend } from './backend.js';
import type { BackupPart } from './backup.js';
import {
  ConstraintViolation, InvalidArgument, isConstraintState, NotSupported, PositionUnavailable, SqlError, TenantExists,
  TenantNotFound,
} from './errors.js';
import { RemoteBackend, type ConnectOptions } from './remote.js';
import { guarded, type CallOptions, type CallProgress } from './options.js';
import { toParams, toRow, toRows, type Row, type Timestamp } from './values.js';

export interface OpenOptions extends CallOptions {
  /** Entries between automatic checkpoints (default `limits.checkpointIntervalOps`). */
  readonly checkpointIntervalEntries?: number;
  /** Recorded as the actor of every write made through this handle (default `'embedded'`). */
  readonly actor?: string;
  /** Log segment size (default `limits.segmentBytesDefault`). */
  readonly segmentBytes?: number;
}

/** `position`: the log position of the write (a read-your-writes token). */
export interface WriteResult {
  readonly position: number;
  readonly rowsAffected: number;
  /** Rows from RETURNING (or from a read-only statement). */
  readonly rows: Row[];
  /** The result's columns in order (an extension of DESIGN §11: rows are keyed by these names). */
  readonly columns: ResultColumn[];
}

/** `position`: the state the read saw. */
export interface ReadResult {
  readonly rows: Row[];
  readonly position: number;
  /** The result's columns in order. */
  readonly columns: ResultColumn[];
}

export interface ResultColumn {
  readonly name: string;
  readonly type: SqlType;
}

export type Consistency = 'causal' | 'linearizable' | 'eventual';

export interface QueryOptions extends CallOptions {
  /** Read exactly the state after this position (waits, bounded by `timeoutMs`, until applied). */
  readonly position?: number;
  /** Embedded mode reads the latest applied state, which satisfies all three. Default causal. */
  readonly consistency?: Consistency;
}

export interface BatchStatement {
  readonly sql: string;
  readonly params?: readonly unknown[];
}

export interface BatchResult {
  readonly position: number;
  /** Sum over the statements. */
  readonly rowsAffected: number;
  /** One per statement, in order. */
  readonly results: { readonly rowsAffected: number; readonly rows: Row[]; readonly columns: ResultColumn[] }[];
}

export interface EventFilter {
  /** Only this stream (table name); '' is the tenant's own stream. Default: every stream. */
  readonly stream?: string;
  /** First position to deliver (default 1). */
  readonly from?: number;
}

/** A row of `__events` (DESIGN §8). */
export interface VerityEvent {
  readonly position: number;
  readonly index: number;
  readonly stream: string;
  readonly event_type: 'insert' | 'update' | 'delete' | 'ddl' | 'rejected';
  readonly key: unknown;
  readonly data: unknown;
  readonly actor: string;
  readonly timestamp: Timestamp;
  readonly hash: string;
}

export interface TenantInfo {
  readonly id: number;
  readonly name: string;
}

/** One replica as `status()` reports it. */
export interface ReplicaInfo {
  readonly index: number;
  /** Its client address ('' when it has none: embedded). */
  readonly address: string;
  readonly role: 'primary' | 'backup' | 'unknown';
  readonly state: 'normal' | 'viewChange' | 'recovering' | 'unreachable';
  readonly view: number;
  /** Highest committed (durable) position. */
  readonly commit: number;
  readonly applied: number;
}

/** What `vdb-admin status` shows: the cluster, its view, its primary and every replica's positions. */
export interface DatabaseStatus {
  readonly mode: 'embedded' | 'remote';
  /** Hex cluster id (remote), null embedded. */
  readonly clusterId: string | null;
  readonly view: number;
  /** The primary's address as the server names it (null embedded or while unknown). */
  readonly primary: string | null;
  /** The address this handle is connected to (null embedded). */
  readonly connectedTo: string | null;
  readonly replicas: ReplicaInfo[];
}

export interface VerifyScope {
  readonly tenant?: number;
  readonly from?: number;
  readonly to?: number;
}

export interface VerifyOptions extends CallOptions {
  /** Called as records are checked. */
  readonly onProgress?: (checked: number, total: number) => void;
}

const CONSISTENCIES: readonly Consistency[] = ['causal', 'linearizable', 'eventual'];
const DEFAULT_ACTOR = 'embedded';

/**
 * A VerityDB database (DESIGN §11): embedded (`Verity.open`, the whole engine in this process on
 * a data directory) or remote (`Verity.connect`, a server or cluster over the wire protocol).
 * Both modes have the same API, results, value conversions and error classes.
 *
 * @example
 *   const db = await Verity.open('./data');   // or: await Verity.connect({ addresses: ['127.0.0.1:7420'], token })
 *   await db.createTenant({ id: 1, name: 'clinic' });
 *   const t = db.tenant(1);
 *   await t.execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT)');
 *   const w = await t.execute('INSERT INTO p (id, name) VALUES ($1, $2)', [1, 'Ann']);
 *   const r = await t.queryAt('SELECT * FROM p', w.position);
 *   await db.close();
 */
export class Verity {
  readonly #backend: Backend;

  private constructor(backend: Backend) {
    this.#backend = backend;
  }

  /** Opens (creating if needed) an embedded database in `dir`: loads the latest checkpoint and
   * replays the log after it. One process at a time may open a directory. */
  static async open(dir: string, options: OpenOptions = {}): Promise<Verity> {
    if (typeof dir !== 'string' || dir === '') throw new InvalidArgument('open needs a directory path');
    const interval = options.checkpointIntervalEntries ?? limits.checkpointIntervalOps;
    if (!Number.isSafeInteger(interval) || interval < 1) throw new InvalidArgument('checkpointIntervalEntries must be a positive integer');
    const segment = options.segmentBytes;
    if (segment !== undefined && !(Number.isSafeInteger(segment) && segment >= limits.segmentBytesMin && segment <= limits.segmentBytesMax)) {
      throw new InvalidArgument(`segmentBytes must be an integer in [${limits.segmentBytesMin}, ${limits.segmentBytesMax}]`);
    }
    if (options.actor !== undefined && typeof options.actor !== 'string') throw new InvalidArgument('actor must be a string');
    const opening = SingleNodeEngine.open({
      dataDir: dir, clusterId: null, freshClusterId: EMBEDDED_CLUSTER, checkpointIntervalEntries: interval,
      ...(segment === undefined ? {} : { segmentBytes: segment }),
    });
    try {
      return await guarded(options, async () => new Verity(new Session(await opening, options.actor ?? DEFAULT_ACTOR)));
    } catch (error) {
      // A caller that gave up must not leave the directory open (and locked) behind it.
      opening.then((engine) => engine.close(), () => undefined).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Connects to a VerityDB server or cluster (remote mode). `token` defaults to the environment
   * variable `VDB_TOKEN`; the primary is found from `addresses`. Writes made through this handle
   * are recorded with the token's subject as their actor.
   *
   * @example const db = await Verity.connect({ addresses: ['127.0.0.1:7420'], token: process.env.VDB_TOKEN });
   */
  static async connect(options: ConnectOptions): Promise<Verity> {
    return new Verity(await RemoteBackend.connect(options, process.env));
  }

  /** Embedded: the last applied position. Remote: the highest position this handle has seen
   * (its causal token). */
  get position(): number {
    return this.#backend.position;
  }

  /** Creates a tenant. Throws `TenantExists` if the id was ever used. */
  async createTenant(tenant: { readonly id: number; readonly name: string }, options?: CallOptions): Promise<{ position: number }> {
    const id = checkTenantId(tenant?.id);
    if (typeof tenant.name !== 'string') throw new InvalidArgument('tenant name must be a string');
    return this.#backend.createTenant(id, tenant.name, options);
  }

  /** Drops a tenant: its tables and history are forgotten (its log entries remain). */
  async dropTenant(id: number, options?: CallOptions): Promise<{ position: number }> {
    return this.#backend.dropTenant(checkTenantId(id), options);
  }

  /** The live tenants, by id. Remote mode only (embedded: `NotSupported`). */
  async listTenants(options?: CallOptions): Promise<TenantInfo[]> {
    return this.#backend.listTenants(options);
  }

  /** The cluster as seen from here: view, primary and every replica's positions. */
  async status(options?: CallOptions): Promise<DatabaseStatus> {
    return this.#backend.status(options);
  }

  /**
   * Asks the server to sign a token with the cluster's admin key (needs an `admin` token). The
   * new token carries the caller's subject, `scopes` ("admin", "tenant:<id>:read",
   * "tenant:<id>:write") and expires at `expiresAtSeconds` (Unix seconds). Remote mode only
   * (embedded: `NotSupported`; `vdb-admin token create --data-dir` signs with the data dir's key).
   *
   * @example const token = await db.createToken(['tenant:1:read'], Math.floor(Date.now() / 1000) + 3600);
   */
  async createToken(scopes: readonly string[], expiresAtSeconds: number, options?: CallOptions): Promise<string> {
    if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => typeof s !== 'string')) throw new InvalidArgument('scopes must be a non-empty array of strings');
    if (!Number.isSafeInteger(expiresAtSeconds) || expiresAtSeconds < 1) throw new InvalidArgument('expiresAtSeconds must be a positive integer (Unix seconds)');
    return this.#backend.createToken(scopes, expiresAtSeconds, options);
  }

  /** A handle on one tenant (no I/O; operations fail with `TenantNotFound` if it is missing). */
  tenant(id: number): Tenant {
    return new Tenant(this.#backend, checkTenantId(id));
  }

  /**
   * Checks the log's hash chains (every record, or one tenant's chain): what `vdb-admin verify`
   * reports. `onProgress(checked, total)` is called as it goes. Embedded: this data dir's log, any
   * `from`/`to` range. Remote: the log of the server this handle is connected to (a replica's
   * ledger of committed ops), as a whole or one tenant's whole chain (`from`/`to`:
   * `NotSupported`); the whole log needs an `admin` token, a tenant's chain `admin` or
   * `tenant:<id>:read`, and a tenant without records is `TenantNotFound`. Remote calls have no
   * timeout unless `timeoutMs` is given. A broken chain is a result (`ok: false` with the first
   * broken position), not an error.
   *
   * @example
   *   const result = await db.verify({ tenant: 7 }, { onProgress: (checked, total) => console.log(checked, total) });
   *   if (!result.ok) console.log(`broken at ${result.position}: ${result.reason}`);
   */
  async verify(scope: VerifyScope = {}, options?: VerifyOptions): Promise<VerifyResult> {
    const tenant = scope.tenant === undefined ? undefined : checkTenantId(scope.tenant);
    return this.#backend.verify({
      ...(tenant === undefined ? {} : { tenant }),
      ...(scope.from === undefined ? {} : { from: scope.from }),
      ...(scope.to === undefined ? {} : { to: scope.to }),
    }, options);
  }

  /**
   * Tenant `id`'s export file (docs/EXPORT.md: its hash chain and a head statement signed with
   * the cluster's admin key), as the server streams it: the file's bytes in order, in chunks of
   * at most 1 MiB. The iteration ends normally only after the last byte, so a consumer that saw
   * the end holds a complete file (write it to a temp file and rename it then). Needs `admin` or
   * `tenant:<id>:read`; a tenant without records is `TenantNotFound`. No timeout unless
   * `timeoutMs` is given; `signal` (or leaving the loop) cancels the export. Remote mode only:
   * embedded mode has no signing key and fails with `NotSupported` (`vdb-admin export --data-dir`
   * signs with the data dir's admin key).
   *
   * @example
   *   const out = await open('t7.vdbx.tmp', 'w');
   *   for await (const chunk of db.exportTenant(7)) await out.write(chunk);
   *   await out.sync(); await out.close(); await rename('t7.vdbx.tmp', 't7.vdbx');
   */
  exportTenant(id: number, options?: CallOptions): AsyncIterable<Uint8Array> {
    return this.#backend.exportTenant(checkTenantId(id), options);
  }

  /**
   * A consistent copy of the server's data dir, taken while it keeps serving: the server writes a
   * checkpoint and streams it, the log up to its position and its other files (keys, cluster id;
   * not lock or temp files). Yields each file's bytes in order (`data` parts, in chunks of at
   * most 1 MiB; a file's last chunk names its BLAKE3-256, already checked against the bytes
   * received), then one `done` part with the position and state hash the copy opens at. The
   * iteration ends normally only after `done`; a stream that breaks off or does not add up fails
   * with `DamagedBackup`. Laid out as DIR/data/<path> plus a manifest this is the backup
   * `vdb-admin backup --addresses …` writes and `vdb-admin restore` restores. Needs the `admin`
   * scope; a single-node server only (a cluster replica answers `NotSupported`). It streams on a
   * connection of its own: a slow consumer holds up only the backup. No timeout unless
   * `timeoutMs` is given; `signal` (or leaving the loop) cancels it. Remote mode only (embedded:
   * `NotSupported`; `vdb-admin backup --data-dir` copies a data dir in-process).
   *
   * @example
   *   for await (const part of db.backup()) {
   *     if (part.kind === 'data') await write(join('copy', part.path), part.offset, part.data);
   *     else console.log(`copy at position ${part.position}, state ${part.stateHash}`);
   *   }
   */
  backup(options?: CallOptions): AsyncIterable<BackupPart> {
    return this.#backend.backup(options);
  }

  /** Writes a checkpoint now (they are also written periodically and on close). Embedded only. */
  async checkpoint(options?: CallOptions): Promise<{ position: number }> {
    return this.#backend.checkpoint(options);
  }

  /** Hex BLAKE3-256 of the whole state (equal for equal histories). Embedded only. */
  stateHash(): string {
    return this.#backend.stateHash();
  }

  /** Waits for in-flight writes and closes (embedded: checkpoints first). Later calls fail with
   * `ClosedError`. */
  async close(options?: CallOptions): Promise<void> {
    return this.#backend.close(options);
  }
}

/**
 * The embedded backend: the engine, the actor recorded for writes and the causal token. Not
 * exported: the public surface is `Verity` and `Tenant`.
 */
class Session implements Backend {
  readonly #engine: SingleNodeEngine;
  readonly #actor: string;
  /** The highest position this handle has seen: the causal token. */
  #seen = 0;

  constructor(engine: SingleNodeEngine, actor: string) {
    this.#engine = engine;
    this.#actor = actor;
  }

  get position(): number {
    return this.#engine.head;
  }

  async createTenant(id: TenantId, name: string, options: CallOptions | undefined): Promise<{ position: number }> {
    return guarded(options, async (progress) => {
      if (this.#engine.isOpen && this.#engine.kernel.hasTenant(id)) throw new TenantExists(id);
      const result = await this.#submit({ tenant: id, actor: this.#actor, command: { kind: 'tenant_create', id, name } }, progress);
      this.observe(result.position);
      if (result.reply.kind === 'rejected') throw replyError(result.reply.error, result.position, id);
      return { position: result.position };
    });
  }

  async dropTenant(tenant: TenantId, options: CallOptions | undefined): Promise<{ position: number }> {
    return guarded(options, async (progress) => {
      const result = await this.#submit({ tenant, actor: this.#actor, command: { kind: 'tenant_drop', id: tenant } }, progress);
      this.observe(result.position);
      if (result.reply.kind === 'rejected') throw replyError(result.reply.error, result.position, tenant);
      return { position: result.position };
    });
  }

  async listTenants(): Promise<TenantInfo[]> {
    throw new NotSupported('listing tenants is offered in remote mode only');
  }

  async createToken(): Promise<string> {
    throw new NotSupported('tokens are signed by a server\'s admin key: use vdb-admin token create --data-dir DIR to sign with a data dir\'s key');
  }

  async status(options: CallOptions | undefined): Promise<DatabaseStatus> {
    return guarded(options, async () => {
      this.checkOpen();
      return {
        mode: 'embedded', clusterId: null, view: 0, primary: null, connectedTo: null,
        replicas: [{ index: 0, address: '', role: 'primary', state: 'normal', view: 0, commit: this.#engine.head, applied: this.#engine.head }],
      };
    });
  }

  async verify(scope: VerifyScope, options: VerifyOptions | undefined): Promise<VerifyResult> {
    return guarded(options, () => this.#engine.verify({
      ...(scope.tenant === undefined ? {} : { tenant: toTenantId(scope.tenant) }),
      ...(scope.from === undefined ? {} : { from: scope.from }),
      ...(scope.to === undefined ? {} : { to: scope.to }),
    }, options?.onProgress));
  }

  async *exportTenant(): AsyncGenerator<Uint8Array> {
    throw new NotSupported('an export is signed with the cluster admin key, which embedded mode does not hold: use vdb-admin export --data-dir DIR, or a server');
  }

  async *backup(): AsyncGenerator<BackupPart> {
    throw new NotSupported('Verity.backup streams a server\'s data dir: for a data dir in this process use vdb-admin backup --data-dir DIR --out OUT');
  }

  async checkpoint(options: CallOptions | undefined): Promise<{ position: number }> {
    return guarded(options, async () => ({ position: await this.#engine.checkpoint() }));
  }

  stateHash(): string {
    this.#engine.checkUsable();
    return checksumHex(this.#engine.kernel.stateHash());
  }

  async close(options: CallOptions | undefined): Promise<void> {
    return guarded(options, () => this.#engine.close());
  }

  async execute(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: CallOptions | undefined): Promise<WriteResult> {
    if (isReadOnly(sql)) {
      const read = await this.read(tenant, sql, params, options);
      return { position: read.position, rowsAffected: read.rowsAffected, rows: read.rows, columns: read.columns };
    }
    const result = await this.write(tenant, [{ sql, params: params ?? [] }], options);
    const outcome = result.reply.statements[0];
    if (outcome === undefined) return { position: result.position, rowsAffected: 0, rows: [], columns: [] };
    return { position: result.position, rowsAffected: outcome.rowsAffected, rows: toRows(outcome.columns, outcome.rows), columns: columnsOf(outcome.columns) };
  }

  async query(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: QueryOptions | undefined): Promise<ReadResult> {
    const read = await this.read(tenant, sql, params, options);
    return { rows: read.rows, position: read.position, columns: read.columns };
  }

  async batch(tenant: TenantId, statements: readonly BatchStatement[], options: CallOptions | undefined): Promise<BatchResult> {
    const result = await this.write(tenant, statements, options);
    const results = result.reply.statements.map((s) => ({ rowsAffected: s.rowsAffected, rows: toRows(s.columns, s.rows), columns: columnsOf(s.columns) }));
    return { position: result.position, rowsAffected: results.reduce((sum, r) => sum + r.rowsAffected, 0), results };
  }

  async write(tenant: TenantId, statements: readonly BatchStatement[], options: CallOptions | undefined): Promise<ApplyResult & { reply: { kind: 'sql' } }> {
    const checked = statements.map((s, i) => {
      if (typeof s?.sql !== 'string') throw new InvalidArgument(`statement ${i + 1} needs sql text`);
      return { sql: s.sql, params: toParams(s.params) };
    });
    return guarded(options, async (progress) => {
      const result = await this.#submit({ tenant, actor: this.#actor, command: { kind: 'sql', statements: checked } }, progress);
      this.observe(result.position);
      if (result.reply.kind !== 'sql') {
        throw result.reply.kind === 'rejected' ? replyError(result.reply.error, result.position, tenant) : new VerityError('Internal', `unexpected reply ${result.reply.kind}`);
      }
      return result as ApplyResult & { reply: { kind: 'sql' } };
    });
  }

  async read(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: QueryOptions | undefined): Promise<ReadResult & { rowsAffected: number }> {
    const checked = toParams(params);
    const at = options?.position;
    return guarded(options, async () => {
      this.checkOpen();
      if (at !== undefined) await this.#waitForApplied(at);
      // Causal (and linearizable) reads: in-process, the applied state already includes every
      // position this handle has seen, because nothing is reported before it is applied.
      assert(this.#engine.head >= this.#seen, `applied ${this.#engine.head} behind the causal token ${this.#seen}`);
      const outcome: ReadOutcome = this.#engine.kernel.read(tenant, sql, checked, at === undefined ? undefined : toPosition(at));
      if (!outcome.ok) throw replyError(outcome.error, undefined, tenant);
      this.observe(outcome.position);
      return { rows: toRows(outcome.columns, outcome.rows), position: outcome.position, rowsAffected: outcome.rows.length, columns: columnsOf(outcome.columns) };
    });
  }

  async *events(tenant: TenantId, filter: EventFilter, options: CallOptions | undefined): AsyncGenerator<VerityEvent> {
    const from = filter.from ?? 1;
    if (!Number.isSafeInteger(from) || from < 0) throw new InvalidArgument('from must be a non-negative integer');
    if (filter.stream !== undefined && typeof filter.stream !== 'string') throw new InvalidArgument('stream must be a string');
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new InvalidArgument('timeoutMs must be a non-negative number');
    // For a follower, `timeoutMs` bounds how long it follows: the iteration then ends. (A timer
    // of our own, not AbortSignal.timeout, whose unreferenced timer would let the process exit
    // under a waiting follower.)
    const stop = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop.abort(), timeoutMs);
    const signal = options?.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]);
    try {
      yield* this.#follow(tenant, filter.stream, Math.max(from, 1), signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async *#follow(tenant: TenantId, stream: string | undefined, from: number, signal: AbortSignal): AsyncGenerator<VerityEvent> {
    let next = from;
    while (this.#engine.isOpen && !signal.aborted) {
      const through = this.#engine.head;
      if (!this.#engine.kernel.hasTenant(tenant)) throw new TenantNotFound(tenant);
      if (next <= through) {
        // A snapshot at `through`: later applies never change what this loop sees.
        for (const row of this.#engine.kernel.events(tenant, toPosition(next), stream)) {
          yield toRow(EVENTS_TABLE.columns, row) as unknown as VerityEvent;
        }
        next = through + 1;
        continue;
      }
      await waitAbortable(this.#engine.nextApplied(), signal);
    }
  }

  /** Hands one entry to the engine: from the moment `submit` returns it is in the log's hands,
   * so giving up after it is `Indeterminate`. */
  #submit(envelope: Envelope, progress: CallProgress): Promise<ApplyResult> {
    const applied = this.#engine.submit(envelope);
    progress.submitted = true;
    return applied;
  }

  observe(at: number): void {
    if (at > this.#seen) this.#seen = at;
  }

  async #waitForApplied(at: number): Promise<void> {
    while (this.#engine.head < at) {
      if (at > this.#engine.logHead) throw new PositionUnavailable(at, this.#engine.head);
      this.checkOpen();
      await this.#engine.nextApplied();
    }
  }

  checkOpen(): void {
    this.#engine.checkUsable();
  }
}

/** One tenant of a database: every call is scoped to it. */
export class Tenant {
  readonly #backend: Backend;
  readonly id: number;

  /** Tenants come from `Verity.tenant(id)`. */
  constructor(backend: Backend, id: TenantId) {
    this.#backend = backend;
    this.id = id;
  }

  /** Runs one statement. Writes are logged, applied atomically and return their position;
   * read-only statements are answered from the latest state without being logged. */
  async execute(sql: string, params?: readonly unknown[], options?: CallOptions): Promise<WriteResult> {
    if (typeof sql !== 'string') throw new InvalidArgument('sql must be a string');
    return this.#backend.execute(this.id as TenantId, sql, params, options);
  }

  /** Runs a read-only statement; `options.position` reads the state after that position. */
  async query(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<ReadResult> {
    if (typeof sql !== 'string') throw new InvalidArgument('sql must be a string');
    if (options?.consistency !== undefined && !CONSISTENCIES.includes(options.consistency)) {
      throw new InvalidArgument(`consistency must be one of ${CONSISTENCIES.join(', ')}`);
    }
    const at = options?.position;
    if (at !== undefined && !(Number.isSafeInteger(at) && at >= 0)) throw new InvalidArgument('position must be a non-negative integer');
    return this.#backend.query(this.id as TenantId, sql, params, options);
  }

  /** `query(sql, params, { position })`. */
  async queryAt(sql: string, position: number, params?: readonly unknown[], options?: CallOptions): Promise<ReadResult> {
    return this.query(sql, params, { ...options, position });
  }

  /** Statements applied atomically at one position: all or nothing. */
  async batch(statements: readonly BatchStatement[], options?: CallOptions): Promise<BatchResult> {
    if (!Array.isArray(statements) || statements.length === 0) throw new InvalidArgument('batch needs at least one statement');
    statements.forEach((s, i) => {
      if (typeof s?.sql !== 'string') throw new InvalidArgument(`statement ${i + 1} needs sql text`);
    });
    return this.#backend.batch(this.id as TenantId, statements, options);
  }

  /** The tenant's derived events from `from` on, following the log as it grows; ends when the
   * database closes, `options.signal` aborts or `options.timeoutMs` has passed. */
  events(filter: EventFilter = {}, options?: CallOptions): AsyncIterable<VerityEvent> {
    return this.#backend.events(this.id as TenantId, filter, options);
  }
}

function columnsOf(columns: readonly { readonly name: string; readonly type: SqlType }[]): ResultColumn[] {
  return columns.map((c) => ({ name: c.name, type: c.type }));
}

function checkTenantId(id: unknown): TenantId {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new InvalidArgument(`tenant id must be a positive safe integer, got ${String(id)}`);
  return toTenantId(id);
}

function replyError(error: KernelError, at: number | undefined, tenant: TenantId): VerityError {
  switch (error.code) {
    case 'TenantNotFound': return new TenantNotFound(tenant);
    case 'TenantExists': return new TenantExists(tenant);
    case 'PositionUnavailable': return new VerityError('PositionUnavailable', error.message, at === undefined ? {} : { position: at });
    default: break;
  }
  if (error.sqlState === null) return new VerityError(error.code, error.message, at === undefined ? {} : { position: at });
  const details = {
    sqlState: error.sqlState,
    ...(error.line === undefined ? {} : { line: error.line }),
    ...(error.column === undefined ? {} : { column: error.column }),
    ...(at === undefined ? {} : { position: at }),
    ...(error.statement === null ? {} : { statement: error.statement }),
  };
  return isConstraintState(error.sqlState) ? new ConstraintViolation(error.code, error.message, details) : new SqlError(error.code, error.message, details);
}

async function waitAbortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
