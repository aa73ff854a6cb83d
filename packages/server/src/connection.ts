import type { Socket } from 'node:net';
import { assertNever, limits, position as toPosition, type Position } from '@veritydb/types';
import {
  FrameDecoder, ServerHandshake, type FrameError, decodeClientMessage, encodeFrame, encodeServerMessage, connectionError, wireLimits,
  type AdminOp, type ClientHello, type ClusterStatus, type PrimaryHint, type Request, type RequestBody, type ResponseBody, type ServerMessage,
  type VerifyReport, type WireError,
} from '@veritydb/wire';
import type { Logger } from 'pino';
import { EVENT_COLUMN_TYPES, type Engine, type EngineStatement, type SessionNumbers } from './engine.js';
import { exportFile, verifyLog } from './audit.js';
import { backupChunks, backupDone } from './backup.js';
import type { Metrics } from './metrics.js';
import { boundedError, errorFrame, paramOf, resultFrames, wireColumns, wireRows } from './results.js';
import { allows, createToken, parseScope, verifyToken, type Access, type Scope, type TokenClaims } from './tokens.js';

/** Bounds of one client connection. */
export const connectionLimits = Object.freeze({
  /** Requests (subscriptions aside) worked on at once per connection; beyond it the server stops reading (backpressure). */
  requestsInFlightMax: 256,
  /** Subscriptions open on one connection. */
  subscriptionsMax: 64,
  /** A hello is small: before the handshake the decoder accepts only frames this large. */
  helloFrameBytesMax: wireLimits.frameBytesMin,
  /** Time from accept to a completed handshake. */
  handshakeTimeoutMs: 10_000,
  /** Bytes queued in the socket beyond which a subscription is ended (`Overloaded`). */
  subscriptionBacklogBytesMax: 8 * 1024 * 1024,
  /** Reply bytes queued for a peer before the server stops reading its requests. */
  unreadReplyBytesMax: 16 * 1024 * 1024,
});

/** What a connection needs from the server around it. */
export interface ConnectionContext {
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly identity: ConstructorParameters<typeof ServerHandshake>[0];
  readonly primary: () => PrimaryHint | null;
  /** False while the server drains: new requests are answered `Unavailable`. */
  readonly accepting: () => boolean;
  readonly nowSeconds: () => number;
  /**
   * Cluster replicas only: a frame from an authenticated peer replica (its payload is one VSR
   * message). null on a single node, which refuses the replica role.
   */
  readonly replicaFrame: ((from: number, payload: Uint8Array) => { ok: true } | { ok: false; reason: string }) | null;
  /**
   * Cluster replicas only: the status answer (`local`: this replica's view alone, for a peer
   * asking; else every reachable replica's own report); null on a single node.
   */
  readonly clusterStatus: ((local: boolean) => Promise<ClusterStatus>) | null;
}

interface InFlight {
  readonly controller: AbortController;
  readonly subscription: boolean;
}

/**
 * One client connection: frames in, handshake, token check, per-request scope checks,
 * dispatch to the engine, results streamed back as frames. Bad input never throws out of
 * here: framing and protocol errors close the connection with an error frame; request
 * errors are error responses and the connection keeps serving.
 */
export class ClientConnection {
  readonly id: number;
  readonly #socket: Socket;
  readonly #context: ConnectionContext;
  readonly #handshake: ServerHandshake;
  readonly #inFlight = new Map<bigint, InFlight>();
  readonly #remote: string;
  #decoder = new FrameDecoder({ frameBytesMax: connectionLimits.helloFrameBytesMax });
  #claims: TokenClaims | null = null;
  /** The peer's replica index once a replica authenticated on this connection. */
  #replicaPeer: number | null = null;
  #closed = false;
  #peerEnded = false;
  /** Payloads decoded but not yet handled (at most one chunk's worth: the socket is paused meanwhile). */
  readonly #queue: Uint8Array[] = [];
  #frameError: FrameError | null = null;
  /** Requests in flight other than subscriptions. */
  #requestsActive = 0;
  #handshakeTimer: NodeJS.Timeout | null;
  /** Shared by every write waiting for the socket to drain (see #whenWritable). */
  #writable: Promise<void> | null = null;
  /** True while a #pump is scheduled for when the socket drains. */
  #pumpOnWritable = false;
  readonly #closedListeners: (() => void)[] = [];

  constructor(id: number, socket: Socket, context: ConnectionContext) {
    this.id = id;
    this.#socket = socket;
    this.#context = context;
    this.#handshake = new ServerHandshake(context.identity);
    this.#remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => this.#destroy());
    socket.on('close', () => this.#destroy());
    // The peer half-closed: answer what is in flight, then close (the server allows half-open sockets).
    socket.on('end', () => {
      const error = this.#decoder.finish();
      if (error !== null) {
        this.#refuse('truncated', connectionError({ code: 'BadFrame', message: error.message }));
        return;
      }
      this.#peerEnded = true;
      this.endSubscriptions('the client closed its side of the connection');
      this.#pump();
    });
    this.#handshakeTimer = setTimeout(() => {
      this.#refuse('handshake-timeout', connectionError({ code: 'Unauthorized', message: `no handshake within ${connectionLimits.handshakeTimeoutMs} ms` }));
    }, connectionLimits.handshakeTimeoutMs);
  }

  get requestsInFlight(): number {
    return this.#inFlight.size;
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closedListeners.push(listener);
  }

  /** Ends every subscription (they never finish on their own) so a drain can complete. */
  endSubscriptions(message: string): void {
    for (const [id, flight] of this.#inFlight) {
      if (flight.subscription) {
        this.#inFlight.delete(id);
        flight.controller.abort();
        this.#send(errorFrame(id, { code: 'Unavailable', message }), { code: 'Unavailable' });
      }
    }
  }

  /** Resolves when no request is in flight any more. */
  async drained(): Promise<void> {
    while (this.#inFlight.size > 0 && !this.#closed) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  close(): void {
    if (this.#closed) return;
    this.#socket.end();
    this.#destroy();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed) return;
    const { frames, error } = this.#decoder.push(chunk);
    for (const frame of frames) this.#queue.push(frame.payload);
    if (error !== null) this.#frameError = error;
    this.#pump();
  }

  /**
   * Handles queued frames in order until the queue is empty or the peer must wait: once the
   * handshake is done, at most `requestsInFlightMax` requests (subscriptions aside) are worked
   * on and at most `unreadReplyBytesMax` of answers wait in the socket; beyond either the
   * socket is paused (TCP backpressure) until requests finish or the answers drain.
   */
  #pump(): void {
    while (!this.#closed && this.#queue.length > 0) {
      if (this.#mustWait()) break;
      try {
        this.#onFrame(this.#queue.shift() as Uint8Array);
      } catch (error) {
        // A bug at the edge costs this connection, not the server (nothing was written to the log).
        this.#context.logger.error({ connection: this.id, err: error }, 'connection handler failed');
        this.#refuse('internal', connectionError({ code: 'Internal', message: 'internal error (logged by the server)' }));
      }
    }
    if (this.#closed) return;
    if (this.#queue.length === 0 && this.#frameError !== null) {
      const step = this.#handshake.onFrameError(this.#frameError);
      if (step.kind === 'close') this.#refuseWith('bad-frame', step.reply);
      return;
    }
    if (this.#queue.length > 0 || this.#mustWait()) {
      if (!this.#socket.isPaused()) this.#socket.pause();
      if (!this.#pumpOnWritable) {
        this.#pumpOnWritable = true;
        void this.#whenWritable().then(() => { this.#pumpOnWritable = false; this.#pump(); });
      }
    } else if (this.#socket.isPaused()) {
      this.#socket.resume();
    }
    if (this.#peerEnded && this.#queue.length === 0 && this.#inFlight.size === 0) this.close();
  }

  #mustWait(): boolean {
    return this.#handshake.state === 'ready' &&
      (this.#requestsActive >= connectionLimits.requestsInFlightMax || this.#socket.writableLength > connectionLimits.unreadReplyBytesMax);
  }

  #onFrame(payload: Uint8Array): void {
    this.#context.metrics.frames.inc();
    if (this.#replicaPeer !== null) {
      const handled = this.#context.replicaFrame?.(this.#replicaPeer, payload) ?? { ok: false, reason: 'not a cluster replica' };
      if (!handled.ok) {
        this.#context.logger.warn({ connection: this.id, peer: this.#replicaPeer, reason: handled.reason }, 'bad replica message');
        this.#refuse('bad-replica-message', connectionError({ code: 'BadFrame', message: `bad replica message: ${handled.reason}` }));
      }
      return;
    }
    const decoded = decodeClientMessage(payload);
    if (!decoded.ok) {
      const step = this.#handshake.onMalformed(`malformed message: ${decoded.reason}`);
      if (step.kind === 'close') this.#refuseWith('bad-message', step.reply);
      return;
    }
    const step = this.#handshake.onMessage(decoded.value);
    switch (step.kind) {
      case 'authenticate': this.#authenticate(step.hello, this.#queue.length > 0); break;
      case 'request': this.#onRequest(step.request); break;
      case 'close': this.#refuseWith('protocol', step.reply); break;
      case 'send': this.#write(step.message); break;
      default: assertNever(step);
    }
  }

  #authenticate(hello: ClientHello, moreFrames: boolean): void {
    const check = verifyToken(hello.token, this.#context.publicKey, this.#context.nowSeconds());
    if (!check.ok) {
      const step = this.#handshake.reject(check.reason, 'Unauthorized');
      if (step.kind === 'close') this.#refuseWith('unauthorized', step.reply);
      this.#context.logger.info({ connection: this.id, remote: this.#remote, reason: check.reason }, 'token refused');
      return;
    }
    if (moreFrames || this.#decoder.bufferedBytes !== 0) {
      this.#refuse('protocol', connectionError({ code: 'BadRequest', message: 'no message may follow the hello before the server answers it' }));
      return;
    }
    if (hello.role === 'replica') {
      const why = this.#context.replicaFrame === null ? 'this server is a single node, not a replica of a cluster'
        : hello.replicaIndex === this.#context.identity.replicaIndex ? `replica index ${hello.replicaIndex} is this server's own`
          : !allows(check.claims.scopes, { kind: 'admin' }) ? 'a replica must authenticate with an admin-scoped token of the cluster' : null;
      if (why !== null) {
        const step = this.#handshake.reject(why, 'Forbidden');
        if (step.kind === 'close') this.#refuseWith('replica-refused', step.reply);
        return;
      }
      this.#replicaPeer = hello.replicaIndex;
    }
    this.#claims = check.claims;
    this.#decoder = new FrameDecoder();
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    const step = this.#handshake.accept(this.#context.primary());
    if (step.kind === 'send') this.#write(step.message);
    this.#context.logger.debug({ connection: this.id, remote: this.#remote, subject: check.claims.subject }, 'authenticated');
  }

  #onRequest(request: Request): void {
    const claims = this.#claims;
    if (claims === null) return; // unreachable: the handshake admits requests only after accept
    this.#context.metrics.requests.inc(request.body.kind);
    if (this.#inFlight.has(request.id)) {
      this.#refuse('protocol', connectionError({ code: 'BadRequest', message: `request id ${request.id} is already in flight` }));
      return;
    }
    if (request.body.kind === 'cancel') {
      this.#cancel(request.id, request.body.target);
      return;
    }
    if (!this.#context.accepting()) {
      this.#replyError(request.id, { code: 'Unavailable', message: 'the server is shutting down' });
      return;
    }
    if (claims.expiresAtSeconds <= this.#context.nowSeconds()) {
      this.#refuse('expired', connectionError({ code: 'Unauthorized', message: 'the token expired' }));
      return;
    }
    const access = accessOf(request.body);
    if (access !== null && !allows(claims.scopes, access)) {
      this.#replyError(request.id, { code: 'Forbidden', message: `the token's scopes do not allow ${describeAccess(access)}` });
      return;
    }
    const controller = new AbortController();
    const flight: InFlight = { controller, subscription: request.body.kind === 'subscribe' };
    this.#inFlight.set(request.id, flight);
    if (!flight.subscription) this.#requestsActive++;
    this.#dispatch(request.id, request.body, claims, controller.signal)
      .catch((error: unknown) => {
        this.#context.logger.error({ connection: this.id, request: request.id, err: error }, 'request failed with a bug');
        this.#endWithError(request.id, { code: 'Internal', message: 'internal error (logged by the server)' });
      })
      .finally(() => {
        // The id may already be reused by a new request (after a final frame): leave that one alone.
        if (this.#inFlight.get(request.id) === flight) this.#inFlight.delete(request.id);
        if (!flight.subscription) this.#requestsActive--;
        this.#pump();
      });
  }

  async #dispatch(id: bigint, body: RequestBody, claims: TokenClaims, signal: AbortSignal): Promise<void> {
    const engine = this.#context.engine;
    switch (body.kind) {
      case 'execute': {
        const statements = body.statements.map(statementOf);
        let session: SessionNumbers | null = null;
        if (body.session !== null) {
          if (engine.register === undefined) return this.#endWithError(id, unsupportedSessions());
          if (!body.atomic && statements.length > 1) {
            return this.#endWithError(id, { code: 'BadRequest', message: 'a write in a session is one log entry: send its statements with atomic set' });
          }
          session = { client: body.session.clientId, request: body.session.requestNumber };
        } else if (!body.atomic) {
          return this.#executeEach(id, body.tenant, statements, claims.subject, signal);
        }
        const outcome = await engine.execute(body.tenant, statements, claims.subject, session);
        if (!outcome.ok) return this.#endWithError(id, outcome.error);
        const last = outcome.value.statements.length - 1;
        for (let i = 0; i <= last; i++) {
          const s = outcome.value.statements[i] as (typeof outcome.value.statements)[number];
          await this.#sendResult(id, { statementIndex: i, columns: wireColumns(s.columns), rows: wireRows(s.columns, s.rows), rowsAffected: s.rowsAffected, position: outcome.value.position }, i === last);
        }
        return;
      }
      case 'query': {
        const outcome = await engine.query(body.tenant, statementOf(body.statement), {
          consistency: body.options.consistency, position: body.options.position, timeoutMs: body.options.timeoutMs, signal,
        });
        if (!outcome.ok) return this.#endWithError(id, outcome.error);
        const rowsLimit = body.options.rowsLimit === 0 ? limits.queryRowsMax : body.options.rowsLimit;
        const rows = outcome.value.rows.length > rowsLimit ? outcome.value.rows.slice(0, rowsLimit) : outcome.value.rows;
        return this.#sendResult(id, {
          statementIndex: 0, columns: wireColumns(outcome.value.columns), rows: wireRows(outcome.value.columns, rows),
          rowsAffected: rows.length, position: outcome.value.position,
        }, true);
      }
      case 'subscribe': return this.#subscribe(id, body.tenant, body.stream, body.from, signal);
      case 'admin': return this.#admin(id, body.admin, claims, signal);
      case 'register': {
        if (engine.register === undefined) return this.#endWithError(id, unsupportedSessions());
        const outcome = await engine.register(body.session.clientId, signal);
        return outcome.ok ? this.#sendResult(id, emptyResult(outcome.value.position), true) : this.#endWithError(id, outcome.error);
      }
      case 'cancel': return; // handled before dispatch
      default: return assertNever(body);
    }
  }

  /** Non-atomic execute: one log entry per statement, in order, stopping at the first error. */
  async #executeEach(id: bigint, tenant: number, statements: readonly EngineStatement[], actor: string, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < statements.length; i++) {
      if (signal.aborted) return this.#endWithError(id, { code: 'Cancelled', message: `cancelled before statement ${i + 1}` });
      const outcome = await this.#context.engine.execute(tenant, [statements[i] as EngineStatement], actor);
      if (!outcome.ok) return this.#endWithError(id, { ...outcome.error, message: `statement ${i + 1}: ${outcome.error.message}` });
      const s = outcome.value.statements[0];
      if (s === undefined) continue;
      await this.#sendResult(id, {
        statementIndex: i, columns: wireColumns(s.columns), rows: wireRows(s.columns, s.rows), rowsAffected: s.rowsAffected,
        position: outcome.value.position,
      }, i === statements.length - 1);
    }
  }

  async #admin(id: bigint, admin: AdminOp, claims: TokenClaims, signal: AbortSignal): Promise<void> {
    const engine = this.#context.engine;
    switch (admin.op) {
      case 'createTenant': {
        const outcome = await engine.createTenant(admin.id, admin.name, claims.subject);
        return outcome.ok ? this.#sendResult(id, emptyResult(outcome.value.position), true) : this.#endWithError(id, outcome.error);
      }
      case 'dropTenant': {
        const outcome = await engine.dropTenant(admin.id, claims.subject);
        return outcome.ok ? this.#sendResult(id, emptyResult(outcome.value.position), true) : this.#endWithError(id, outcome.error);
      }
      case 'listTenants':
        this.#write({ kind: 'response', response: { requestId: id, body: { kind: 'tenants', tenants: engine.listTenants().slice(0, wireLimits.tenantsListMax) } } });
        return;
      case 'status': {
        if (this.#context.clusterStatus !== null) {
          const status = await this.#context.clusterStatus(claims.subject.startsWith('replica-'));
          this.#write({ kind: 'response', response: { requestId: id, body: { kind: 'status', status } } });
          return;
        }
        const status = engine.status();
        const identity = this.#context.identity;
        const address = this.#context.primary()?.address ?? '';
        this.#write({
          kind: 'response', response: {
            requestId: id, body: {
              kind: 'status', status: {
                clusterId: identity.clusterId, view: 0, replicas: [{
                  index: identity.replicaIndex, address, role: 'primary', state: 'normal', view: 0,
                  commit: status.durable, applied: status.applied,
                }],
              },
            },
          },
        });
        return;
      }
      case 'createToken': return this.#createToken(id, admin.scopes, admin.expiresAtMicros, claims);
      case 'verify': return this.#verify(id, admin.tenant);
      case 'exportTenant': return this.#export(id, admin.tenant, signal);
      case 'backup': return this.#backup(id, signal);
      default: return assertNever(admin);
    }
  }

  /** Verifies the server's log: progress reports while it runs (dropped while the socket is backed up), then the final one. */
  async #verify(id: bigint, tenant: number | null): Promise<void> {
    const log = await this.#context.engine.auditLog();
    if (!log.ok) return this.#endWithError(id, log.error);
    const outcome = await verifyLog(log.value, tenant, (report) => {
      if (this.#inFlight.has(id) && this.#socket.writableLength <= connectionLimits.subscriptionBacklogBytesMax) void this.#streamFrame(id, verifyBody(report), false);
    });
    if (!outcome.ok) return this.#endWithError(id, outcome.error);
    await this.#streamFrame(id, verifyBody(outcome.value), true);
  }

  /**
   * Streams tenant `tenant`'s export file, signed with the server's admin key, one chunk per
   * frame, each sent once the previous one drained (a slow reader slows the export). One chunk is
   * held back so the final marker goes only on a complete file; a failure midway ends the request
   * with an error instead.
   */
  async #export(id: bigint, tenant: number, signal: AbortSignal): Promise<void> {
    const log = await this.#context.engine.auditLog();
    if (!log.ok) return this.#endWithError(id, log.error);
    const key = { secretKey: this.#context.secretKey, publicKey: this.#context.publicKey };
    let held: Uint8Array | null = null;
    try {
      // Reading may fail on a damaged record (the log's own checks): the request ends with the reason.
      const file = await exportFile(log.value, this.#context.engine.clusterId, tenant, key, new Date());
      if (!file.ok) return this.#endWithError(id, file.error);
      for await (const chunk of file.value) {
        if (signal.aborted || this.#closed) return;
        if (held !== null && !(await this.#streamFrame(id, { kind: 'exportChunk', chunk: { data: held, final: false } }, false))) return;
        held = chunk;
      }
    } catch (error) {
      this.#context.logger.error({ connection: this.id, request: id, tenant, err: error }, 'export failed');
      return this.#endWithError(id, { code: 'Internal', message: `the export of tenant ${tenant} failed: ${error instanceof Error ? error.message : String(error)}` });
    }
    await this.#streamFrame(id, { kind: 'exportChunk', chunk: { data: held ?? new Uint8Array(0), final: true } }, true);
  }

  /**
   * Streams a consistent copy of the data dir (the engine's cut: a fresh checkpoint and the log up
   * to its position), one chunk per frame, each sent once the previous one drained, then the
   * summary as the final frame. A failure midway (a file that changed under the cut) ends the
   * request with an error instead, so a client that saw `backupDone` holds every byte.
   */
  async #backup(id: bigint, signal: AbortSignal): Promise<void> {
    const cut = await this.#context.engine.backupCut();
    if (!cut.ok) return this.#endWithError(id, cut.error);
    try {
      for await (const file of backupChunks(cut.value)) {
        if (signal.aborted || this.#closed) return;
        if (!(await this.#streamFrame(id, { kind: 'backupFile', file }, false))) return;
      }
      await this.#streamFrame(id, { kind: 'backupDone', done: backupDone(cut.value) }, true);
    } catch (error) {
      this.#context.logger.error({ connection: this.id, request: id, err: error }, 'backup failed');
      this.#endWithError(id, { code: 'Internal', message: `the backup failed: ${error instanceof Error ? error.message : String(error)}` });
    } finally {
      await cut.value.release();
    }
  }

  /**
   * One frame of a streamed answer; resolves once the socket can take more. False (nothing sent)
   * once the request is gone: cancelled, or the connection closed.
   */
  async #streamFrame(id: bigint, body: ResponseBody, final: boolean): Promise<boolean> {
    if (this.#closed || !this.#inFlight.has(id)) return false;
    // The id may be reused as soon as the final frame is out.
    if (final) this.#inFlight.delete(id);
    if (!this.#socket.write(encodeFrame(encodeServerMessage({ kind: 'response', response: { requestId: id, body } })))) await this.#whenWritable();
    return true;
  }

  #createToken(id: bigint, scopeTexts: readonly string[], expiresAtMicros: bigint, claims: TokenClaims): void {
    const scopes: Scope[] = [];
    for (const text of scopeTexts) {
      const scope = parseScope(text);
      if (scope === null) return this.#endWithError(id, { code: 'SqlError', message: `scope ${JSON.stringify(text)} is not admin, tenant:<id>:read or tenant:<id>:write`, sqlState: '22023', line: 0, column: 0 });
      scopes.push(scope);
    }
    const now = this.#context.nowSeconds();
    const expires = Number(expiresAtMicros / 1_000_000n);
    if (scopes.length === 0 || expiresAtMicros > BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n || expires <= now) {
      return this.#endWithError(id, { code: 'SqlError', message: 'a token needs at least one scope and an expiry in the future', sqlState: '22023', line: 0, column: 0 });
    }
    const token = createToken(this.#context.secretKey, this.#context.publicKey, {
      subject: claims.subject, scopes, issuedAtSeconds: now, expiresAtSeconds: expires,
    });
    this.#write({ kind: 'response', response: { requestId: id, body: { kind: 'token', token } } });
  }

  /** Streams `__events` rows from `from`, then every new one as entries are applied, until cancelled. */
  async #subscribe(id: bigint, tenant: number, stream: string, from: Position, signal: AbortSignal): Promise<void> {
    const subscriptions = [...this.#inFlight.values()].filter((f) => f.subscription).length;
    if (subscriptions > connectionLimits.subscriptionsMax) {
      return this.#endWithError(id, { code: 'Overloaded', message: `more than ${connectionLimits.subscriptionsMax} subscriptions on one connection`, retryAfterMs: 1000 });
    }
    const engine = this.#context.engine;
    let next = from;
    let wake: (() => void) | null = null;
    const unsubscribe = engine.onApplied((applied) => { if (applied === tenant) { wake?.(); wake = null; } });
    const onAbort = (): void => { wake?.(); wake = null; };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (signal.aborted || this.#closed) return;
        // The scan sees the state at the applied head (taken in the same tick), so the next one
        // starts after it even when this stream had no events: a quiet stream costs no rescans.
        const scannedTo = engine.status().applied;
        const events = engine.events(tenant, next, stream);
        if (!events.ok) return this.#endWithError(id, events.error);
        next = toPosition(Math.max(next, scannedTo + 1));
        if (events.value.length > 0) {
          await this.#sendResult(id, {
            statementIndex: 0, columns: wireColumns(EVENT_COLUMN_TYPES), rows: wireRows(EVENT_COLUMN_TYPES, events.value),
            rowsAffected: events.value.length, position: scannedTo,
          }, false);
          if (this.#socket.writableLength > connectionLimits.subscriptionBacklogBytesMax) {
            return this.#endWithError(id, { code: 'Overloaded', message: 'the subscriber reads too slowly; resubscribe from the last position read', retryAfterMs: 100 });
          }
          continue;
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Cancels `target`; it ends with `Cancelled`. The cancel itself is answered with an empty final result. */
  #cancel(id: bigint, target: bigint): void {
    const flight = this.#inFlight.get(target);
    if (flight !== undefined) {
      this.#inFlight.delete(target);
      flight.controller.abort();
      this.#replyError(target, { code: 'Cancelled', message: `request ${target} was cancelled` });
    }
    void this.#sendResult(id, emptyResult(toPosition(0)), true, false);
  }

  /** Streams a result; for a tracked request, nothing is sent once it was cancelled. */
  async #sendResult(id: bigint, part: Parameters<typeof resultFrames>[1], final: boolean, tracked = true): Promise<void> {
    if (tracked && !this.#inFlight.has(id)) return;
    const frames = resultFrames(id, part, final);
    if (!Array.isArray(frames)) return tracked ? this.#endWithError(id, frames) : this.#replyError(id, frames);
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i] as Uint8Array;
      if (this.#closed) return;
      // The id may be reused as soon as the final frame is out.
      if (final && tracked && i === frames.length - 1) this.#inFlight.delete(id);
      if (!this.#socket.write(frame)) await this.#whenWritable();
    }
  }

  /**
   * Resolves once the socket drains (or closes). Every waiter shares one promise and one pair of
   * listeners: a listener per blocked write would pile up on a long-lived connection (each
   * 'close' one stayed until the connection closed).
   */
  #whenWritable(): Promise<void> {
    this.#writable ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        this.#writable = null;
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return this.#writable;
  }

  #replyError(id: bigint, error: WireError): void {
    this.#send(errorFrame(id, error), error);
  }

  /** The final error of a request in flight (nothing if it was cancelled meanwhile). */
  #endWithError(id: bigint, error: WireError): void {
    if (this.#inFlight.delete(id)) this.#replyError(id, error);
  }

  #send(frame: Uint8Array, error: { readonly code: string } | null): void {
    if (error !== null) this.#context.metrics.errors.inc(error.code);
    if (!this.#closed) this.#socket.write(frame);
  }

  #write(message: ServerMessage): void {
    let bounded = message;
    if (message.kind === 'response' && message.response.body.kind === 'error') {
      this.#context.metrics.errors.inc(message.response.body.error.code);
      bounded = { kind: 'response', response: { requestId: message.response.requestId, body: { kind: 'error', error: boundedError(message.response.body.error) } } };
    }
    if (!this.#closed) this.#socket.write(encodeFrame(encodeServerMessage(bounded)));
  }

  #refuse(reason: string, response: ReturnType<typeof connectionError>): void {
    this.#refuseWith(reason, { kind: 'response', response });
  }

  /** Sends a connection-level error and closes. */
  #refuseWith(reason: string, reply: ServerMessage): void {
    if (this.#closed) return;
    this.#context.metrics.connectionsRefused.inc(reason);
    this.#write(reply);
    this.#socket.end();
    this.#destroy();
  }

  #destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    for (const flight of this.#inFlight.values()) flight.controller.abort();
    // Writes in flight still complete in the engine; their replies have nowhere to go.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    for (const listener of this.#closedListeners.splice(0)) listener();
  }
}

function statementOf(statement: { readonly sql: string; readonly params: readonly import('@veritydb/wire').WireValue[] }): EngineStatement {
  return { sql: statement.sql, params: statement.params.map(paramOf) };
}

function emptyResult(position: Position): Parameters<typeof resultFrames>[1] {
  return { statementIndex: 0, columns: [], rows: [], rowsAffected: 0, position };
}

function verifyBody(report: VerifyReport): ResponseBody {
  return { kind: 'verify', verify: report };
}

function unsupportedSessions(): WireError {
  return {
    code: 'SqlError', sqlState: '0A000', line: 0, column: 0,
    message: 'exactly-once sessions (register, execute with a session) are not implemented by this server yet; send the execute without a session',
  };
}

/** The scope a request needs; null = any authenticated token. */
function accessOf(body: RequestBody): Access | null {
  switch (body.kind) {
    case 'execute': return { kind: 'tenant', tenant: body.tenant, access: 'write' };
    case 'query':
    case 'subscribe': return { kind: 'tenant', tenant: body.tenant, access: 'read' };
    case 'admin': return adminAccess(body.admin);
    case 'register': return null;
    case 'cancel': return null;
    default: return assertNever(body);
  }
}

/** Status: any token; export and a tenant's verify: reading that tenant; everything else (a whole-log verify included): admin. */
function adminAccess(admin: AdminOp): Access | null {
  switch (admin.op) {
    case 'status': return null;
    case 'exportTenant': return { kind: 'tenant', tenant: admin.tenant, access: 'read' };
    case 'verify': return admin.tenant === null ? { kind: 'admin' } : { kind: 'tenant', tenant: admin.tenant, access: 'read' };
    default: return { kind: 'admin' };
  }
}

function describeAccess(access: Access): string {
  return access.kind === 'admin' ? 'this admin operation (needs scope admin)' : `${access.access === 'write' ? 'writing' : 'reading'} tenant ${access.tenant} (needs scope tenant:${access.tenant}:${access.access})`;
}
