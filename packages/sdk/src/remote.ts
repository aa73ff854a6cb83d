import { Client, connectionLimits, parseAddress, type ExecuteResult, type ReadOptions } from '@veritydb/client';
import type { VerifyReason, VerifyResult } from '@veritydb/storage';
import type { VerifyReport } from '@veritydb/client';
import type { TenantId } from '@veritydb/types';
import { isReadOnly, type Backend } from './backend.js';
import { checkedBackup, type BackupPart } from './backup.js';
import { ClosedError, InvalidArgument, NotSupported, RemoteError, TenantNotFound } from './errors.js';
import { guarded, type CallOptions } from './options.js';
import { SessionWrites, sessionLimits, type WriteAttempt } from './remote-sessions.js';
import { sdkError, toWireParams, unwrap, wireRow, wireRows, type ErrorContext } from './remote-values.js';
import type {
  BatchResult, BatchStatement, DatabaseStatus, EventFilter, QueryOptions, ReadResult, ResultColumn, TenantInfo,
  VerifyOptions, VerifyScope, VerityEvent, WriteResult,
} from './verity.js';

/** Options of `Verity.connect`. */
export interface ConnectOptions extends CallOptions {
  /** Every replica's "host:port" (any order: the primary is discovered). At least one. */
  readonly addresses: readonly string[];
  /** The access token (default: the environment variable `VDB_TOKEN`). */
  readonly token?: string;
  /** Shown in the server's logs (default `'veritydb-sdk'`). */
  readonly clientName?: string;
  /** A causal token to start from, e.g. another handle's `position`: reads wait until the
   * server has applied it. Default 0. */
  readonly position?: number;
  /** Timeout of a call that has no `timeoutMs` of its own (default 30 000 ms). */
  readonly requestTimeoutMs?: number;
  /** Exactly-once writes through registered sessions, retried with the same numbers when a reply
   * is lost (default true; used only if the server implements sessions). */
  readonly exactlyOnce?: boolean;
  /** Sessions (= writes in flight at once) for exactly-once writes (default 8). */
  readonly sessionsMax?: number;
}

const CLIENT_NAME_DEFAULT = 'veritydb-sdk';

/**
 * The remote backend: a `Client` (the primary's connection, found from the addresses and
 * followed through redirects) plus the causal token, the highest position this handle has
 * seen, sent with every request. Not exported from the package: `Verity.connect` returns it
 * wrapped in a `Verity`.
 */
export class RemoteBackend implements Backend {
  readonly #client: Client;
  /** null: exactly-once writes were turned off. */
  readonly #sessions: SessionWrites | null;
  readonly #requestTimeoutMs: number;
  /** Aborted by close: ends every `events()` iteration. */
  readonly #closing = new AbortController();
  /** Calls in flight; close waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #seen: number;
  #closed = false;

  private constructor(client: Client, sessions: SessionWrites | null, requestTimeoutMs: number, position: number) {
    this.#client = client;
    this.#sessions = sessions;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#seen = position;
  }

  /** Checks the options, connects and completes the handshake. */
  static async connect(options: ConnectOptions, env: Readonly<Record<string, string | undefined>>): Promise<RemoteBackend> {
    const addresses = checkAddresses(options?.addresses);
    const token = options.token ?? env['VDB_TOKEN'];
    if (typeof token !== 'string' || token === '') throw new InvalidArgument('connect needs a token: pass { token } or set VDB_TOKEN');
    const position = options.position ?? 0;
    if (!(Number.isSafeInteger(position) && position >= 0)) throw new InvalidArgument('position must be a non-negative integer');
    const requestTimeoutMs = options.requestTimeoutMs ?? connectionLimits.requestTimeoutMsDefault;
    if (!(Number.isFinite(requestTimeoutMs) && requestTimeoutMs > 0)) throw new InvalidArgument('requestTimeoutMs must be a positive number');
    if (options.clientName !== undefined && typeof options.clientName !== 'string') throw new InvalidArgument('clientName must be a string');
    const sessionsMax = options.sessionsMax ?? sessionLimits.sessionsMaxDefault;
    if (!(Number.isSafeInteger(sessionsMax) && sessionsMax >= 1 && sessionsMax <= sessionLimits.sessionsMax)) {
      throw new InvalidArgument(`sessionsMax must be an integer in [1, ${sessionLimits.sessionsMax}]`);
    }
    const connecting = Client.connect({
      addresses, token, clientName: options.clientName ?? CLIENT_NAME_DEFAULT, requestTimeoutMs,
      ...(options.timeoutMs === undefined ? {} : { connectTimeoutMs: Math.max(1, options.timeoutMs) }),
    });
    try {
      const client = await guarded(options, () => connecting);
      const sessions = options.exactlyOnce === false ? null : new SessionWrites(client, sessionsMax);
      return new RemoteBackend(client, sessions, requestTimeoutMs, position);
    } catch (error) {
      // A caller that gave up must not leave a connection behind it.
      connecting.then((client) => client.close(), () => undefined).catch(() => undefined);
      throw sdkError(error, { timeoutMs: options.timeoutMs ?? connectionLimits.connectTimeoutMsDefault });
    }
  }

  get position(): number {
    return this.#seen;
  }

  async createTenant(id: TenantId, name: string, options: CallOptions | undefined): Promise<{ position: number }> {
    return this.#call(options, id, async (call) => {
      const position = await this.#client.createTenant(id, name, call);
      this.#observe(position);
      return { position };
    });
  }

  async dropTenant(id: TenantId, options: CallOptions | undefined): Promise<{ position: number }> {
    return this.#call(options, id, async (call) => {
      const position = await this.#client.dropTenant(id, call);
      this.#observe(position);
      return { position };
    });
  }

  async listTenants(options: CallOptions | undefined): Promise<TenantInfo[]> {
    return this.#call(options, undefined, async (call) => (await this.#client.listTenants(call)).map((t) => ({ id: t.id, name: t.name })));
  }

  async status(options: CallOptions | undefined): Promise<DatabaseStatus> {
    return this.#call(options, undefined, async (call) => {
      const status = await this.#client.status(call);
      const connection = await this.#client.connection();
      for (const replica of status.replicas) this.#observe(replica.applied);
      return {
        mode: 'remote',
        clusterId: `0x${status.clusterId.toString(16)}`,
        view: status.view,
        primary: connection.hello.primary?.address ?? status.replicas.find((r) => r.role === 'primary')?.address ?? null,
        connectedTo: connection.address,
        replicas: status.replicas.map((r) => ({
          index: r.index, address: r.address, role: r.role, state: r.state, view: r.view, commit: r.commit, applied: r.applied,
        })),
      };
    });
  }

  async createToken(scopes: readonly string[], expiresAtSeconds: number, options: CallOptions | undefined): Promise<string> {
    return this.#call(options, undefined, (call) => this.#client.createToken(scopes, BigInt(expiresAtSeconds) * 1_000_000n, call));
  }

  async execute(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: CallOptions | undefined): Promise<WriteResult> {
    if (isReadOnly(sql)) {
      const read = await this.query(tenant, sql, params, options);
      return { position: read.position, rowsAffected: read.rows.length, rows: read.rows, columns: read.columns };
    }
    const wireParams = toWireParams(params);
    return this.#call(options, tenant, async (call) => {
      const result = await this.#execute(tenant, [{ sql, params: wireParams }], call);
      const outcome = result.statements[0];
      if (outcome === undefined) return { position: result.position, rowsAffected: 0, rows: [], columns: [] };
      return { position: result.position, rowsAffected: outcome.rowsAffected, rows: wireRows(outcome.columns, outcome.rows), columns: columnsOf(outcome.columns) };
    });
  }

  async query(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: QueryOptions | undefined): Promise<ReadResult> {
    const statement = { sql, params: toWireParams(params) };
    // The state after position 0 has no tenants (embedded mode answers so); the protocol has no
    // way to ask for it, exact positions start at 1.
    if (options?.position === 0) throw new TenantNotFound(tenant);
    return this.#call(options, tenant, async (call) => {
      const result = await this.#client.query(tenant, statement, { ...call, ...this.#readMode(options) });
      this.#observe(result.position);
      return { rows: wireRows(result.columns, result.rows), position: result.position, columns: columnsOf(result.columns) };
    });
  }

  async batch(tenant: TenantId, statements: readonly BatchStatement[], options: CallOptions | undefined): Promise<BatchResult> {
    const wireStatements = statements.map((s) => ({ sql: s.sql, params: toWireParams(s.params) }));
    return this.#call(options, tenant, async (call) => {
      const result = await this.#execute(tenant, wireStatements, call);
      const results = result.statements.map((s) => ({ rowsAffected: s.rowsAffected, rows: wireRows(s.columns, s.rows), columns: columnsOf(s.columns) }));
      return { position: result.position, rowsAffected: results.reduce((sum, r) => sum + r.rowsAffected, 0), results };
    });
  }

  /**
   * Follows one stream's events through a subscription on the primary's connection. The wire
   * protocol subscribes to one stream at a time, so remote mode needs `filter.stream`.
   */
  async *events(tenant: TenantId, filter: EventFilter, options: CallOptions | undefined): AsyncGenerator<VerityEvent> {
    const from = filter.from ?? 1;
    if (!Number.isSafeInteger(from) || from < 0) throw new InvalidArgument('from must be a non-negative integer');
    if (typeof filter.stream !== 'string') {
      throw new InvalidArgument('remote events need a stream: the wire protocol subscribes to one stream (table) at a time');
    }
    const timeoutMs = checkTimeout(options?.timeoutMs);
    this.#checkOpen();
    // timeoutMs bounds how long the iteration follows the log (as embedded): it then ends.
    const stop = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop.abort(), timeoutMs);
    const signals = [stop.signal, this.#closing.signal, ...(options?.signal === undefined ? [] : [options.signal])];
    const signal = AbortSignal.any(signals);
    const context: ErrorContext = { tenant, timeoutMs: timeoutMs ?? this.#requestTimeoutMs, signal };
    try {
      const connection = await this.#client.connection();
      for await (const frame of connection.subscribe(tenant, filter.stream, Math.max(from, 1), { signal })) {
        this.#observe(frame.position);
        for (const row of frame.rows) yield wireRow(frame.columns, row) as unknown as VerityEvent;
      }
    } catch (error) {
      if (signal.aborted) return;
      throw sdkError(error, context);
    } finally {
      clearTimeout(timer);
    }
  }

  async verify(scope: VerifyScope, options: VerifyOptions | undefined): Promise<VerifyResult> {
    if (scope.from !== undefined || scope.to !== undefined) {
      throw new NotSupported('a remote verify checks the whole log or a whole tenant chain: from/to are offered in embedded mode only');
    }
    const onProgress = options?.onProgress;
    return this.#call(options, scope.tenant, async (call) => verifyResult(await this.#client.verify(scope.tenant ?? null, {
      ...call, ...(onProgress === undefined ? {} : { onProgress: (report: VerifyReport) => onProgress(report.checked, report.total) }),
    })), Number.POSITIVE_INFINITY);
  }

  async *exportTenant(tenant: TenantId, options: CallOptions | undefined): AsyncGenerator<Uint8Array> {
    const timeoutMs = checkTimeout(options?.timeoutMs);
    this.#checkOpen();
    const signal = AbortSignal.any([this.#closing.signal, ...(options?.signal === undefined ? [] : [options.signal])]);
    try {
      yield* this.#client.exportTenant(tenant, { signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    } catch (error) {
      throw sdkError(error, { tenant, timeoutMs: timeoutMs ?? Number.POSITIVE_INFINITY, signal });
    }
  }

  async *backup(options: CallOptions | undefined): AsyncGenerator<BackupPart> {
    const timeoutMs = checkTimeout(options?.timeoutMs);
    this.#checkOpen();
    const signal = AbortSignal.any([this.#closing.signal, ...(options?.signal === undefined ? [] : [options.signal])]);
    try {
      yield* checkedBackup(this.#client.backup({ signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) }));
    } catch (error) {
      throw sdkError(error, { timeoutMs: timeoutMs ?? Number.POSITIVE_INFINITY, signal });
    }
  }

  async checkpoint(): Promise<{ position: number }> {
    throw new NotSupported('checkpoints are taken by the server; the wire protocol has no checkpoint request');
  }

  stateHash(): string {
    throw new NotSupported('the state hash is not part of the wire protocol yet');
  }

  /** Waits (bounded by `options`) for the calls in flight, ends every `events()` iteration and
   * closes the connection. Later calls fail with `ClosedError`. */
  async close(options: CallOptions | undefined): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    try {
      await guarded(options, () => Promise.allSettled([...this.#inFlight]));
    } finally {
      await this.#client.close();
    }
  }

  /** An execute carrying the causal token, exactly-once when the server has sessions; a
   * rejected write's logged position is observed too. */
  async #execute(tenant: TenantId, statements: readonly { sql: string; params: ReturnType<typeof toWireParams> }[], call: CallOptions) {
    const signal = call.signal;
    const attempt: WriteAttempt<ExecuteResult> = (session, timeoutMs) => this.#client.execute(tenant, statements, {
      timeoutMs, atomic: true, consistency: 'causal', position: this.#seen,
      ...(signal === undefined ? {} : { signal }),
      ...(session === null ? {} : { session }),
    });
    const timeoutMs = call.timeoutMs ?? this.#requestTimeoutMs;
    try {
      const result = this.#sessions === null ? await attempt(null, timeoutMs) : await this.#sessions.write(attempt, Date.now() + timeoutMs, signal);
      this.#observe(result.position);
      return result;
    } catch (error) {
      const logged = error instanceof Error ? unwrap(error.message).position : undefined;
      if (logged !== undefined) this.#observe(logged);
      throw error;
    }
  }

  /** The wire read mode: an exact position, or causal with this handle's token, or as asked. */
  #readMode(options: QueryOptions | undefined): Pick<ReadOptions, 'consistency' | 'position'> {
    if (options?.position !== undefined) return { consistency: 'atPosition', position: options.position };
    const consistency = options?.consistency ?? 'causal';
    return consistency === 'causal' ? { consistency, position: this.#seen } : { consistency };
  }

  /** Runs one client call with the caller's timeout and signal, tracked for close, its errors
   * mapped to the SDK's classes. */
  async #call<T>(options: CallOptions | undefined, tenant: number | undefined, work: (call: CallOptions) => Promise<T>,
    timeoutDefaultMs = this.#requestTimeoutMs): Promise<T> {
    const timeoutMs = checkTimeout(options?.timeoutMs);
    this.#checkOpen();
    const call: CallOptions = {
      timeoutMs: timeoutMs ?? timeoutDefaultMs,
      ...(options?.signal === undefined ? {} : { signal: options.signal }),
    };
    const running = work(call);
    this.#inFlight.add(running);
    try {
      return await running;
    } catch (error) {
      throw sdkError(error, {
        timeoutMs: call.timeoutMs ?? this.#requestTimeoutMs,
        ...(tenant === undefined ? {} : { tenant }),
        ...(options?.signal === undefined ? {} : { signal: options.signal }),
      });
    } finally {
      this.#inFlight.delete(running);
    }
  }

  #observe(position: number): void {
    if (position > this.#seen) this.#seen = position;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError();
  }
}

/** The SDK's (and embedded mode's) verify result for a server's final report. */
function verifyResult(report: VerifyReport): VerifyResult {
  const outcome = report.outcome;
  switch (outcome.kind) {
    case 'ok': return { ok: true, checked: report.checked };
    case 'broken': return {
      ok: false, checked: report.checked, position: outcome.position, reason: outcome.reason as VerifyReason, detail: outcome.detail, file: outcome.file,
    };
    case 'progress': throw new RemoteError('BadRequest', 'the server ended a verify with a progress report');
  }
}

function checkAddresses(addresses: unknown): string[] {
  if (!Array.isArray(addresses) || addresses.length === 0) throw new InvalidArgument('connect needs addresses: ["host:port", …]');
  return addresses.map((address: unknown) => {
    if (typeof address !== 'string') throw new InvalidArgument('addresses must be "host:port" strings');
    const parsed = parseAddress(address);
    if (!parsed.ok) throw new InvalidArgument(`address ${address}: ${parsed.reason}`);
    if (parsed.address.port === 0) throw new InvalidArgument(`address ${address}: port 0 cannot be connected to`);
    return address;
  });
}

function checkTimeout(timeoutMs: number | undefined): number | undefined {
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new InvalidArgument(`timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
  return timeoutMs;
}

function columnsOf(columns: readonly { readonly name: string; readonly type: ResultColumn['type'] }[]): ResultColumn[] {
  return columns.map((c) => ({ name: c.name, type: c.type }));
}
