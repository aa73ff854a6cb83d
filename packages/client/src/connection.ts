import { connect as netConnect, type Socket } from 'node:net';
import { assert, limits, type ClusterId, type Position, type ReplicaIndex, type TenantId } from '@veritydb/types';
import {
  ClientHandshake, DEFAULT_REQUEST_OPTIONS, FrameDecoder, PROTOCOL_VERSIONS, decodeServerMessage, encodeClientMessage,
  encodeFrame, isFinalResponse, type AdminOp, type ClusterStatus, type Column, type RequestBody, type RequestOptions,
  type Response, type ResponseBody, type Result, type ServerHello, type Session, type Statement, type TenantInfo,
  type VerifyReport, type WireValue,
} from '@veritydb/wire';
import { formatAddress, parseAddress, type Address } from './address.js';
import {
  AbortedError, BadRequestError, ClientError, ConnectionClosedError, IndeterminateError, OverloadedError, TimeoutError,
  fromWireError,
} from './errors.js';

/** Bounds and defaults of one connection. */
export const connectionLimits = Object.freeze({
  /** Requests in flight on one connection before new ones fail with `Overloaded`. */
  inFlightDefault: 1024,
  inFlightMax: 65_536,
  /** TCP connect + handshake. */
  connectTimeoutMsDefault: 5_000,
  /** One request, from send to final response. */
  requestTimeoutMsDefault: 30_000,
  /** Result frames a subscription buffers before the consumer reads them; beyond it, it ends with `Overloaded`. */
  subscriptionBufferedMax: 1024,
  /** Export or backup bytes received but not yet taken by the consumer beyond which the connection stops reading (TCP backpressure). */
  exportBufferedBytesMax: 8 * 1024 * 1024,
});

export interface ConnectionOptions {
  /** "host:port" of one server. */
  readonly address: string;
  readonly token: string;
  /** Shown in the server's logs. */
  readonly clientName?: string;
  /** The cluster this client expects; 0n (default) accepts any. */
  readonly clusterId?: ClusterId;
  readonly connectTimeoutMs?: number;
  /** Default per-request timeout. */
  readonly requestTimeoutMs?: number;
  /** Requests in flight at once; more fail at once with `OverloadedError`. */
  readonly inFlightMax?: number;
}

/** Per-call options. */
export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ReadOptions extends CallOptions {
  readonly consistency?: RequestOptions['consistency'];
  /** causal: the highest position seen; atPosition: the exact position. */
  readonly position?: number;
  /** Rows at most over the whole result (0 = the server's default). */
  readonly rowsLimit?: number;
}

export interface ExecuteOptions extends ReadOptions {
  /** All statements or none (default true). */
  readonly atomic?: boolean;
  /** Exactly-once numbering (see PROTOCOL.md §5); without it a retry may apply twice. */
  readonly session?: Session;
}

/** One statement's complete result, reassembled from its frames. */
export interface StatementResult {
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly WireValue[])[];
  readonly rowsAffected: number;
}

export interface ExecuteResult {
  /** The write's log position (the position token for causal reads). */
  readonly position: Position;
  readonly statements: readonly StatementResult[];
}

export interface QueryResult extends StatementResult {
  /** The state the read saw. */
  readonly position: Position;
}

interface Pending {
  readonly id: bigint;
  readonly write: boolean;
  readonly description: string;
  readonly onFrame: ((result: Result) => void) | null;
  /** Non-final frames of other kinds (verify progress, export chunks). */
  readonly onPart: ((body: ResponseBody) => void) | null;
  readonly resolve: (responses: Response) => void;
  readonly reject: (error: ClientError) => void;
  readonly cleanup: () => void;
}

/**
 * One authenticated connection to one server: pipelined requests (many in flight, replies in
 * any order, matched by request id), multi-frame results reassembled, typed errors, per-request
 * timeouts and AbortSignals. It never retries: a write whose reply does not arrive fails with
 * `IndeterminateError` (it may have happened); a read with `TimeoutError`.
 *
 * @example
 *   const connection = await Connection.open({ address: '127.0.0.1:7420', token });
 *   const { position } = await connection.execute(1, [{ sql: 'INSERT INTO p VALUES ($1)', params: [{ kind: 'int64', value: 1n }] }]);
 *   const { rows } = await connection.query(1, { sql: 'SELECT * FROM p', params: [] }, { consistency: 'atPosition', position });
 *   await connection.close();
 */
export class Connection {
  readonly address: string;
  readonly hello: ServerHello;
  readonly #socket: Socket;
  readonly #handshake: ClientHandshake;
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<bigint, Pending>();
  readonly #requestTimeoutMs: number;
  readonly #inFlightMax: number;
  readonly #closedListeners: ((error: ClientError) => void)[] = [];
  #nextId = 1n;
  #closedBy: ClientError | null = null;

  private constructor(init: {
    address: string; hello: ServerHello; socket: Socket; handshake: ClientHandshake; decoder: FrameDecoder;
    requestTimeoutMs: number; inFlightMax: number;
  }) {
    this.address = init.address;
    this.hello = init.hello;
    this.#socket = init.socket;
    this.#handshake = init.handshake;
    this.#decoder = init.decoder;
    this.#requestTimeoutMs = init.requestTimeoutMs;
    this.#inFlightMax = init.inFlightMax;
  }

  /** Connects, sends the hello with the token and waits for the server's hello. */
  static open(options: ConnectionOptions): Promise<Connection> {
    const parsed = parseAddress(options.address);
    if (!parsed.ok) return Promise.reject(new BadRequestError(`address: ${parsed.reason}`));
    if (parsed.address.port === 0) return Promise.reject(new BadRequestError(`address ${options.address}: port 0 cannot be connected to`));
    const inFlightMax = options.inFlightMax ?? connectionLimits.inFlightDefault;
    assert(Number.isSafeInteger(inFlightMax) && inFlightMax >= 1 && inFlightMax <= connectionLimits.inFlightMax, `inFlightMax ${inFlightMax}`);
    const requestTimeoutMs = options.requestTimeoutMs ?? connectionLimits.requestTimeoutMsDefault;
    assert(requestTimeoutMs > 0, 'requestTimeoutMs must be positive');
    const handshake = new ClientHandshake({
      versions: PROTOCOL_VERSIONS, role: 'client', token: options.token, clientName: options.clientName ?? 'veritydb-client',
      clusterId: options.clusterId ?? (0n as ClusterId), replicaIndex: 0 as ReplicaIndex,
    });
    let hello: Uint8Array;
    try {
      hello = encodeFrame(encodeClientMessage(handshake.hello()));
    } catch (error) {
      return Promise.reject(new BadRequestError(`hello: ${(error as Error).message}`));
    }
    return handshakeOver(parsed.address, hello, handshake, options.connectTimeoutMs ?? connectionLimits.connectTimeoutMsDefault)
      .then(({ socket, decoder, serverHello, leftover }) => {
        const connection = new Connection({
          address: formatAddress(parsed.address), hello: serverHello, socket, handshake, decoder, requestTimeoutMs, inFlightMax,
        });
        connection.#attach(leftover);
        return connection;
      });
  }

  /** Requests awaiting their final response. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Why the connection closed, or null while it is open. */
  get closedBy(): ClientError | null {
    return this.#closedBy;
  }

  /** Called once when the connection closes for any reason. */
  onClose(listener: (error: ClientError) => void): void {
    if (this.#closedBy !== null) listener(this.#closedBy);
    else this.#closedListeners.push(listener);
  }

  /** Runs SQL statements for a tenant as one log entry (atomic by default). */
  async execute(tenant: number, statements: readonly Statement[], options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const body: RequestBody = {
      kind: 'execute', tenant: tenant as TenantId, statements, atomic: options.atomic ?? true, session: options.session ?? null,
      options: requestOptions(options),
    };
    const frames: Result[] = [];
    const final = await this.#call(body, true, options, (frame) => frames.push(frame));
    return { position: final.position, statements: assemble(frames) };
  }

  /** Runs one read-only statement. */
  async query(tenant: number, statement: Statement, options: ReadOptions = {}): Promise<QueryResult> {
    const body: RequestBody = { kind: 'query', tenant: tenant as TenantId, statement, options: requestOptions(options) };
    const frames: Result[] = [];
    const final = await this.#call(body, false, options, (frame) => frames.push(frame));
    const first = assemble(frames)[0];
    assert(first !== undefined, 'a query result has a statement');
    return { ...first, position: final.position };
  }

  /** Creates a tenant; resolves with the position of the entry that created it. */
  async createTenant(id: number, name: string, options: CallOptions = {}): Promise<Position> {
    return (await this.#call({ kind: 'admin', admin: { op: 'createTenant', id: id as TenantId, name } }, true, options, null)).position;
  }

  async dropTenant(id: number, options: CallOptions = {}): Promise<Position> {
    return (await this.#call({ kind: 'admin', admin: { op: 'dropTenant', id: id as TenantId } }, true, options, null)).position;
  }

  async listTenants(options: CallOptions = {}): Promise<readonly TenantInfo[]> {
    const response = await this.#admin({ op: 'listTenants' }, options);
    if (response.body.kind !== 'tenants') throw new BadRequestError(`listTenants answered with ${response.body.kind}`);
    return response.body.tenants;
  }

  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    const response = await this.#admin({ op: 'status' }, options);
    if (response.body.kind !== 'status') throw new BadRequestError(`status answered with ${response.body.kind}`);
    return response.body.status;
  }

  /** Asks the server to sign a token with the given scopes (needs the `admin` scope). */
  async createToken(scopes: readonly string[], expiresAtMicros: bigint, options: CallOptions = {}): Promise<string> {
    const response = await this.#admin({ op: 'createToken', scopes, expiresAtMicros }, options);
    if (response.body.kind !== 'token') throw new BadRequestError(`createToken answered with ${response.body.kind}`);
    return response.body.token;
  }

  /**
   * Verifies the server's own log (PROTOCOL.md §5): tenant `tenant`'s chain, or every record
   * (`tenant` null; needs the `admin` scope). Resolves with the final report (`ok`, or `broken`
   * with the first broken position); `onProgress` gets the progress reports on the way. No
   * timeout unless `timeoutMs` is given: a large log takes as long as reading it.
   */
  async verify(tenant: number | null, options: CallOptions & { readonly onProgress?: (report: VerifyReport) => void } = {}): Promise<VerifyReport> {
    let last: Response | null = null;
    const onProgress = options.onProgress;
    await this.#start({ kind: 'admin', admin: { op: 'verify', tenant: tenant as TenantId | null } }, false,
      { timeoutMs: Number.POSITIVE_INFINITY, ...options }, null, null, (response) => { last = response; },
      (body) => { if (body.kind === 'verify') onProgress?.(body.verify); });
    const final = last as Response | null;
    if (final?.body.kind !== 'verify') throw new BadRequestError(`verify answered with ${final?.body.kind ?? 'nothing'}`);
    return final.body.verify;
  }

  /**
   * Tenant `tenant`'s export file (docs/EXPORT.md) as the server streams it: yields its bytes in
   * order; the iteration ends normally only after the final chunk, so a consumer that saw the end
   * has the whole file. At most `exportBufferedBytesMax` wait here for the consumer (beyond it the
   * connection stops reading). No timeout unless `timeoutMs` is given; stopping the iteration or
   * aborting `signal` cancels the request.
   */
  async *exportTenant(tenant: number, options: CallOptions = {}): AsyncGenerator<Uint8Array> {
    for await (const body of this.#stream({ kind: 'admin', admin: { op: 'exportTenant', tenant: tenant as TenantId } }, 'export', options)) {
      if (body.kind === 'exportChunk' && body.chunk.data.length > 0) yield body.chunk.data;
    }
  }

  /**
   * A consistent copy of the server's data dir (PROTOCOL.md §5; needs the `admin` scope), as the
   * server streams it: `backupFile` chunks (every file's bytes in order, each file's last chunk
   * with its BLAKE3-256), then one `backupDone` (position, state hash), after which the iteration
   * ends. Checking the chunks is the caller's (the SDK's `Verity.backup` does). Flow control,
   * timeout and cancellation as `exportTenant`.
   */
  async *backup(options: CallOptions = {}): AsyncGenerator<Extract<ResponseBody, { kind: 'backupFile' | 'backupDone' }>> {
    for await (const body of this.#stream({ kind: 'admin', admin: { op: 'backup' } }, 'backup', options)) {
      if (body.kind === 'backupFile' || body.kind === 'backupDone') yield body;
      else throw new BadRequestError(`a backup answered with ${body.kind}`);
    }
  }

  /**
   * The frames of a streamed answer (every frame's body, the final one last) as the consumer
   * takes them: at most `exportBufferedBytesMax` of data wait here (beyond it the connection stops
   * reading: TCP backpressure to the server). Leaving the loop early cancels the request.
   */
  async *#stream(body: RequestBody, what: string, options: CallOptions): AsyncGenerator<ResponseBody> {
    const queue: ResponseBody[] = [];
    let queuedBytes = 0;
    let wake: (() => void) | null = null;
    let ended: { error: ClientError | null } | null = null;
    const notify = (): void => { wake?.(); wake = null; };
    const take = (part: ResponseBody): void => {
      queue.push(part);
      queuedBytes += streamedBytes(part);
      if (queuedBytes > connectionLimits.exportBufferedBytesMax && !this.#socket.isPaused()) this.#socket.pause();
      notify();
    };
    let id = 0n;
    const done = this.#start(body, false, { timeoutMs: Number.POSITIVE_INFINITY, ...options }, null, (requestId) => { id = requestId; },
      (response) => take(response.body), take);
    done.then(() => { ended = { error: null }; notify(); }, (error: ClientError) => { ended = { error }; notify(); });
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          queuedBytes -= streamedBytes(next);
          if (queuedBytes <= connectionLimits.exportBufferedBytesMax / 2 && this.#socket.isPaused()) this.#socket.resume();
          yield next;
          continue;
        }
        if (ended !== null) {
          const error = (ended as { error: ClientError | null }).error;
          if (error !== null) throw error;
          return;
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    } finally {
      if (this.#socket.isPaused()) this.#socket.resume();
      if (ended === null) {
        this.#fail(id, new AbortedError(`the ${what} consumer stopped reading`));
        this.#cancel(id);
      }
    }
  }

  /** Registers an exactly-once session (request number 0); resolves with its position. */
  async register(session: Session, options: CallOptions = {}): Promise<Position> {
    return (await this.#call({ kind: 'register', session }, true, options, null)).position;
  }

  /**
   * Follows a table's events from position `from`: yields each result frame (rows of
   * `__events`) as the server sends them. Ends when the signal aborts (the server is told to
   * cancel) or with the error that ended the subscription.
   */
  async *subscribe(tenant: number, stream: string, from: number, options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<Result> {
    const queue: Result[] = [];
    let wake: (() => void) | null = null;
    let ended: { error: ClientError | null } | null = null;
    const notify = (): void => { wake?.(); wake = null; };
    const body: RequestBody = { kind: 'subscribe', tenant: tenant as TenantId, stream, from: from as Position };
    let id = 0n;
    const done = this.#start(body, false, { timeoutMs: Number.POSITIVE_INFINITY, ...(options.signal === undefined ? {} : { signal: options.signal }) }, (frame) => {
      if (queue.length >= connectionLimits.subscriptionBufferedMax) {
        this.#fail(id, new OverloadedError(`subscription fell ${queue.length} frames behind; resubscribe from the last position read`, 0));
        this.#cancel(id);
        return;
      }
      queue.push(frame);
      notify();
    }, (requestId) => { id = requestId; });
    done.then(() => { ended = { error: null }; notify(); }, (error: ClientError) => { ended = { error }; notify(); });
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) { yield next; continue; }
        if (ended !== null) {
          const error = (ended as { error: ClientError | null }).error;
          if (error === null || error.code === 'Aborted' || error.code === 'Cancelled') return;
          throw error;
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    } finally {
      if (ended === null) {
        this.#fail(id, new AbortedError('the subscriber stopped reading'));
        this.#cancel(id);
      }
    }
  }

  /** Closes the connection. Reads in flight fail with ConnectionClosed, writes with Indeterminate. */
  async close(): Promise<void> {
    if (this.#closedBy === null) this.#shutdown(new ConnectionClosedError('the connection was closed by the client'));
    await new Promise<void>((resolve) => {
      if (this.#socket.destroyed) resolve();
      else this.#socket.once('close', () => resolve());
    });
  }

  async #admin(admin: AdminOp, options: CallOptions): Promise<Response> {
    const write = admin.op === 'createTenant' || admin.op === 'dropTenant';
    let last: Response | null = null;
    await this.#start({ kind: 'admin', admin }, write, options, null, null, (response) => { last = response; });
    assert(last !== null, 'a final response was recorded');
    return last;
  }

  /** Sends a request and resolves with its final Result (earlier frames go to onFrame). */
  async #call(body: RequestBody, write: boolean, options: CallOptions, onFrame: ((result: Result) => void) | null): Promise<Result> {
    let final: Response | null = null;
    await this.#start(body, write, options, onFrame, null, (response) => { final = response; });
    const response = final as Response | null;
    if (response === null || response.body.kind !== 'result') {
      throw new BadRequestError(`expected a result, the server answered with ${response?.body.kind ?? 'nothing'}`);
    }
    return response.body.result;
  }

  #start(
    body: RequestBody, write: boolean, options: CallOptions, onFrame: ((result: Result) => void) | null,
    onId: ((id: bigint) => void) | null = null, onFinal: ((response: Response) => void) | null = null,
    onPart: ((body: ResponseBody) => void) | null = null,
  ): Promise<void> {
    if (this.#closedBy !== null) return Promise.reject(this.#closedBy);
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(new AbortedError(`aborted before sending: ${String(signal.reason)}`));
    if (this.#pending.size >= this.#inFlightMax) {
      return Promise.reject(new OverloadedError(`${this.#pending.size} requests already in flight on ${this.address} (inFlightMax ${this.#inFlightMax})`, 1));
    }
    const id = this.#nextId++;
    onId?.(id);
    let frame: Uint8Array;
    try {
      frame = encodeFrame(encodeClientMessage({ kind: 'request', request: { id, body } }));
    } catch (error) {
      return Promise.reject(new BadRequestError((error as Error).message));
    }
    const description = `${body.kind}${body.kind === 'admin' ? ` ${body.admin.op}` : ''} request ${id}`;
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => this.#giveUp(id, write ? new IndeterminateError(`${description}: no reply within ${timeoutMs} ms; the write may or may not have happened`)
          : new TimeoutError(`${description}: no reply within ${timeoutMs} ms`)), timeoutMs)
        : null;
      const onAbort = (): void => this.#giveUp(id, write ? new IndeterminateError(`${description} aborted after it was sent: the write may or may not have happened`)
        : new AbortedError(`${description} aborted: ${String(signal?.reason)}`));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        id, write, description, onFrame, onPart,
        resolve: (response) => { onFinal?.(response); resolve(); },
        reject,
        cleanup: () => {
          if (timer !== null) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      });
      this.#socket.write(frame);
    });
  }

  /** A timeout or abort: the request is forgotten (a late reply is ignored); reads are cancelled. */
  #giveUp(id: bigint, error: ClientError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#fail(id, error);
    if (!pending.write) this.#cancel(id);
  }

  #fail(id: bigint, error: ClientError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    pending.cleanup();
    pending.reject(error);
  }

  /** Best effort: tells the server to stop working on `target`; its answer is not awaited. */
  #cancel(target: bigint): void {
    if (this.#closedBy !== null) return;
    const id = this.#nextId++;
    this.#socket.write(encodeFrame(encodeClientMessage({ kind: 'request', request: { id, body: { kind: 'cancel', target } } })));
  }

  #attach(leftover: readonly Uint8Array[]): void {
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (error) => this.#shutdown(new ConnectionClosedError(`connection to ${this.address} failed: ${error.message}`)));
    this.#socket.on('close', () => this.#shutdown(new ConnectionClosedError(`the server closed the connection to ${this.address}`)));
    for (const payload of leftover) {
      if (this.#closedBy !== null) return;
      this.#onPayload(payload);
    }
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closedBy !== null) return;
    const { frames, error } = this.#decoder.push(chunk);
    for (const frame of frames) {
      if (this.#closedBy !== null) return;
      this.#onPayload(frame.payload);
    }
    if (error !== null) this.#shutdown(new ConnectionClosedError(`bad frame from ${this.address}: ${error.message}`));
  }

  #onPayload(payload: Uint8Array): void {
    const decoded = decodeServerMessage(payload);
    if (!decoded.ok) {
      this.#shutdown(new ConnectionClosedError(`malformed message from ${this.address}: ${decoded.reason}`));
      return;
    }
    const step = this.#handshake.onMessage(decoded.value);
    switch (step.kind) {
      case 'response': this.#onResponse(step.response); return;
      case 'close': this.#shutdown(new ConnectionClosedError(`protocol violation by ${this.address}: ${step.reason}`)); return;
      case 'ready':
      case 'refused':
        this.#shutdown(new ConnectionClosedError(`unexpected handshake message from ${this.address}`));
        return;
    }
  }

  #onResponse(response: Response): void {
    if (response.requestId === 0n) {
      const error = response.body.kind === 'error' ? fromWireError(response.body.error)
        : new ConnectionClosedError(`the server sent a ${response.body.kind} with request id 0`);
      this.#shutdown(error);
      return;
    }
    const pending = this.#pending.get(response.requestId);
    if (pending === undefined) return; // a reply to a request given up on (timeout, abort, cancel)
    const body = response.body;
    if (body.kind === 'error') {
      this.#fail(pending.id, fromWireError(body.error));
      return;
    }
    if (body.kind === 'result') pending.onFrame?.(body.result);
    if (!isFinalResponse(response)) {
      if (body.kind !== 'result') pending.onPart?.(body);
      return;
    }
    this.#pending.delete(pending.id);
    pending.cleanup();
    pending.resolve(response);
  }

  /** Ends the connection once: every request still pending fails (writes as indeterminate). */
  #shutdown(error: ClientError): void {
    if (this.#closedBy !== null) return;
    this.#closedBy = error;
    for (const pending of [...this.#pending.values()]) {
      this.#pending.delete(pending.id);
      pending.cleanup();
      pending.reject(pending.write
        ? new IndeterminateError(`${pending.description}: the connection ended before the reply (${error.message}); the write may or may not have happened`)
        : error);
    }
    this.#socket.destroy();
    for (const listener of this.#closedListeners.splice(0)) listener(error);
  }
}

function requestOptions(options: ReadOptions): RequestOptions {
  return {
    consistency: options.consistency ?? DEFAULT_REQUEST_OPTIONS.consistency,
    position: (options.position ?? 0) as Position,
    timeoutMs: options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs) ? Math.max(1, Math.floor(options.timeoutMs)) : 0,
    rowsLimit: options.rowsLimit ?? 0,
  };
}

/** Joins result frames into one result per statement, in statement order. */
function assemble(frames: readonly Result[]): StatementResult[] {
  const statements: { columns: readonly Column[]; rows: (readonly WireValue[])[]; rowsAffected: number }[] = [];
  for (const frame of frames) {
    let statement = statements[frame.statementIndex];
    if (statement === undefined) {
      if (frame.statementIndex !== statements.length) throw new BadRequestError(`result for statement ${frame.statementIndex} arrived after ${statements.length}`);
      statement = { columns: frame.columns, rows: [], rowsAffected: 0 };
      statements.push(statement);
    }
    if (statement.rows.length + frame.rows.length > limits.queryRowsMax) throw new BadRequestError(`more than ${limits.queryRowsMax} rows`);
    for (const row of frame.rows) statement.rows.push(row);
    statement.rowsAffected = Math.max(statement.rowsAffected, frame.rowsAffected);
  }
  return statements;
}

interface Handshaken {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  readonly serverHello: ServerHello;
  /** Payloads that arrived right behind the server hello. */
  readonly leftover: readonly Uint8Array[];
}

/** TCP connect + hello exchange, bounded by `timeoutMs`. */
function handshakeOver(address: Address, hello: Uint8Array, handshake: ClientHandshake, timeoutMs: number): Promise<Handshaken> {
  return new Promise<Handshaken>((resolve, reject) => {
    const where = formatAddress(address);
    const decoder = new FrameDecoder();
    const socket = netConnect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    let settled = false;
    const finish = (error: ClientError | null, value?: Handshaken): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.removeAllListeners('connect');
      if (error !== null) {
        socket.destroy();
        reject(error);
      } else {
        resolve(value as Handshaken);
      }
    };
    const timer = setTimeout(() => finish(new ConnectionClosedError(`no handshake with ${where} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(hello));
    socket.on('error', (error) => finish(new ConnectionClosedError(`cannot connect to ${where}: ${error.message}`)));
    socket.on('close', () => finish(new ConnectionClosedError(`${where} closed the connection during the handshake`)));
    socket.on('data', (chunk: Buffer) => {
      const { frames, error } = decoder.push(chunk);
      for (let i = 0; i < frames.length; i++) {
        const decoded = decodeServerMessage((frames[i] as { payload: Uint8Array }).payload);
        if (!decoded.ok) return finish(new ConnectionClosedError(`malformed handshake reply from ${where}: ${decoded.reason}`));
        const step = handshake.onMessage(decoded.value);
        if (step.kind === 'refused') return finish(fromWireError(step.error));
        if (step.kind !== 'ready') return finish(new ConnectionClosedError(`handshake with ${where} failed: ${step.kind === 'close' ? step.reason : step.kind}`));
        const leftover = frames.slice(i + 1).map((frame) => frame.payload);
        if (error !== null) return finish(new ConnectionClosedError(`bad frame from ${where}: ${error.message}`));
        return finish(null, { socket, decoder, serverHello: step.hello, leftover });
      }
      if (error !== null) finish(new ConnectionClosedError(`bad frame from ${where}: ${error.message}`));
    });
  });
}

/** The data bytes a streamed frame holds (what the flow control counts). */
function streamedBytes(body: ResponseBody): number {
  switch (body.kind) {
    case 'exportChunk': return body.chunk.data.length;
    case 'backupFile': return body.file.data.length;
    default: return 0;
  }
}
