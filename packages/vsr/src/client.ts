import { assert } from '@veritydb/types';
import { FROM_CLIENT, type EvictionMessage, type Message, type ReplyMessage, type RequestMessage } from './message.js';

export interface ClientOptions {
  readonly client: bigint;
  readonly replicaCount: number;
  /** Ticks between re-sends of the request in flight (same request number). */
  readonly retryTicks: number;
  /** Ticks after which the client gives up and reports an indeterminate outcome. */
  readonly timeoutTicks: number;
}

/** What the client's owner learns or must do. */
export type ClientEffect =
  | { readonly kind: 'send'; readonly to: number; readonly message: RequestMessage }
  | { readonly kind: 'registered'; readonly session: number }
  | { readonly kind: 'result'; readonly request: number; readonly op: number; readonly body: Uint8Array }
  /** Gave up waiting: the request may or may not have executed (never report it as failed). */
  | { readonly kind: 'indeterminate'; readonly request: number }
  /** The session is gone; the outstanding request (if any) did not execute under it. Register again. */
  | { readonly kind: 'evicted'; readonly request: number };

interface InFlight {
  readonly message: RequestMessage;
  readonly startTick: number;
  sentTick: number;
}

/**
 * The pure client protocol: register, one numbered request in flight, re-sends with the same
 * number (so the cluster's session table dedupes), primary discovery from reply views, and an
 * indeterminate outcome on timeout.
 *
 * @example
 * const client = new Client({ client: 7n, replicaCount: 3, retryTicks: 20, timeoutTicks: 2000 });
 * const effects = client.register();
 */
export class Client {
  readonly id: bigint;
  readonly #options: ClientOptions;
  #session = 0;
  #request = 0;
  #view = 0;
  #target = 0;
  #tick = 0;
  #inFlight: InFlight | undefined;

  constructor(options: ClientOptions) {
    assert(options.retryTicks > 0 && options.timeoutTicks >= options.retryTicks, 'client timeouts are ordered');
    this.id = options.client;
    this.#options = options;
  }

  get registered(): boolean { return this.#session !== 0; }
  get busy(): boolean { return this.#inFlight !== undefined; }
  get session(): number { return this.#session; }

  register(): ClientEffect[] {
    assert(this.#inFlight === undefined, 'one request in flight');
    this.#session = 0;
    this.#request = 0;
    return this.#start({ kind: 'request', from: FROM_CLIENT, client: this.id, session: 0, request: 0, operation: 'register', body: new Uint8Array(0) });
  }

  /** Submits a state machine operation; its number is `request` of the eventual result. */
  submit(body: Uint8Array): ClientEffect[] {
    assert(this.#inFlight === undefined && this.registered, 'submit needs a session and no request in flight');
    this.#request += 1;
    return this.#start({ kind: 'request', from: FROM_CLIENT, client: this.id, session: this.#session, request: this.#request, operation: 'normal', body });
  }

  /** The request number the next `submit` will use. */
  get nextRequest(): number { return this.#request + 1; }

  onTick(): ClientEffect[] {
    this.#tick += 1;
    const flight = this.#inFlight;
    if (flight === undefined) return [];
    if (this.#tick - flight.startTick >= this.#options.timeoutTicks) {
      this.#inFlight = undefined;
      return [{ kind: 'indeterminate', request: flight.message.request }];
    }
    if (this.#tick - flight.sentTick < this.#options.retryTicks) return [];
    flight.sentTick = this.#tick;
    // No answer from our guess of the primary: try the next replica (backups forward to their primary).
    this.#target = (this.#target + 1) % this.#options.replicaCount;
    return [{ kind: 'send', to: this.#target, message: flight.message }];
  }

  onMessage(message: Message): ClientEffect[] {
    if (message.kind === 'reply') return this.#onReply(message);
    if (message.kind === 'eviction') return this.#onEviction(message);
    return [];
  }

  #start(message: RequestMessage): ClientEffect[] {
    this.#inFlight = { message, startTick: this.#tick, sentTick: this.#tick };
    this.#target = this.#view % this.#options.replicaCount;
    return [{ kind: 'send', to: this.#target, message }];
  }

  #onReply(reply: ReplyMessage): ClientEffect[] {
    const flight = this.#inFlight;
    if (reply.client !== this.id || flight === undefined || reply.request !== flight.message.request) return [];
    if (flight.message.operation === 'normal' && reply.session !== this.#session) return [];
    this.#inFlight = undefined;
    this.#view = Math.max(this.#view, reply.view);
    if (flight.message.operation === 'register') {
      this.#session = reply.op;
      return [{ kind: 'registered', session: reply.op }];
    }
    return [{ kind: 'result', request: reply.request, op: reply.op, body: reply.body }];
  }

  #onEviction(message: EvictionMessage): ClientEffect[] {
    const flight = this.#inFlight;
    if (message.client !== this.id || flight === undefined || flight.message.operation === 'register') return [];
    if (message.session !== flight.message.session) return [];
    this.#inFlight = undefined;
    this.#session = 0;
    this.#view = Math.max(this.#view, message.view);
    return [{ kind: 'evicted', request: flight.message.request }];
  }
}
