import { assert, type ClusterId, type ReplicaIndex } from '@veritydb/types';
import type { FrameError } from './frame-decoder.js';
import type {
  ClientHello, ClientMessage, PlainErrorCode, PrimaryHint, Request, Response, ServerHello, ServerMessage, WireError,
} from './messages.js';
import { frameErrorResponse } from './codec.js';

/** Protocol versions this implementation speaks (message semantics; the frame has its own). */
export const PROTOCOL_VERSIONS: readonly number[] = Object.freeze([1]);

/**
 * The highest version both sides speak, or null if they share none.
 *
 * @example negotiateVersion([1, 2, 3], [2, 3, 4]) === 3
 */
export function negotiateVersion(offered: readonly number[], supported: readonly number[]): number | null {
  let best: number | null = null;
  for (const version of offered) {
    if (supported.includes(version) && (best === null || version > best)) best = version;
  }
  return best;
}

/** What the server must do next. A `close` step's reply is sent, then the connection closed. */
export type ServerStep =
  | { readonly kind: 'authenticate'; readonly hello: ClientHello; readonly version: number }
  | { readonly kind: 'send'; readonly message: ServerMessage }
  | { readonly kind: 'request'; readonly request: Request }
  | { readonly kind: 'close'; readonly reply: ServerMessage };

export type ServerHandshakeState = 'awaitingHello' | 'authenticating' | 'ready' | 'closed';

export interface ServerIdentity {
  readonly clusterId: ClusterId;
  readonly replicaIndex: ReplicaIndex;
  readonly replicaCount: number;
  /** Versions this server speaks; PROTOCOL_VERSIONS by default. */
  readonly versions?: readonly number[];
}

/**
 * The server side of the handshake, pure: no sockets, no clock, no crypto. Feed it every
 * decoded ClientMessage; it answers with the next step. Token verification is the caller's job
 * (it needs keys): on an `authenticate` step, verify `hello.token` and call `accept` or `reject`.
 *
 *   awaitingHello --hello, common version--> authenticating --accept--> ready
 *         |                                        |
 *         +-- anything else / no common version ---+--reject / any message--> closed
 *
 * Nothing but a ClientHello is accepted before `accept`; a second hello after it is refused.
 *
 * @example
 *   const handshake = new ServerHandshake({ clusterId, replicaIndex, replicaCount: 3 });
 *   const step = handshake.onMessage(decoded);
 *   if (step.kind === 'authenticate') send(verify(step.hello.token) ? handshake.accept(primary) : handshake.reject('bad token'));
 */
export class ServerHandshake {
  readonly #identity: ServerIdentity;
  readonly #versions: readonly number[];
  #state: ServerHandshakeState = 'awaitingHello';
  #version: number | null = null;
  #hello: ClientHello | null = null;

  constructor(identity: ServerIdentity) {
    this.#versions = identity.versions ?? PROTOCOL_VERSIONS;
    assert(this.#versions.length > 0, 'a server speaks at least one version');
    assert(identity.replicaIndex < identity.replicaCount, 'replica index within the cluster');
    this.#identity = identity;
  }

  get state(): ServerHandshakeState {
    return this.#state;
  }

  /** The negotiated version, once a hello was accepted for authentication. */
  get version(): number | null {
    return this.#version;
  }

  /** The peer's hello (role, name, replica index), once received. */
  get peer(): ClientHello | null {
    return this.#hello;
  }

  onMessage(message: ClientMessage): ServerStep {
    switch (this.#state) {
      case 'awaitingHello':
        if (message.kind !== 'hello') return this.#close('Unauthorized', 'the first message must be a hello');
        return this.#onHello(message.hello);
      case 'authenticating':
        return this.#close('BadRequest', 'no message may follow the hello before the server answers it');
      case 'ready':
        if (message.kind === 'hello') return this.#close('BadRequest', 'the handshake is already complete');
        return { kind: 'request', request: message.request };
      case 'closed':
        return this.#close('BadRequest', 'the connection is closed');
    }
  }

  /** The frame decoder failed: answer with BadFrame (or UnsupportedVersion) and close. */
  onFrameError(error: FrameError): ServerStep {
    this.#state = 'closed';
    return { kind: 'close', reply: { kind: 'response', response: frameErrorResponse(error) } };
  }

  /** A frame's payload did not decode (`decodeClientMessage` said why): BadRequest and close. */
  onMalformed(reason: string): ServerStep {
    return this.#close('BadRequest', reason.slice(0, 1024));
  }

  /** The token checked out: the server hello to send. `primary` is the current hint, if known. */
  accept(primary: PrimaryHint | null): ServerStep {
    assert(this.#state === 'authenticating' && this.#version !== null, `accept in state ${this.#state}`);
    this.#state = 'ready';
    const hello: ServerHello = {
      version: this.#version, clusterId: this.#identity.clusterId, replicaIndex: this.#identity.replicaIndex,
      replicaCount: this.#identity.replicaCount, primary,
    };
    return { kind: 'send', message: { kind: 'hello', hello } };
  }

  /** The token was refused (bad signature, expired, revoked, wrong scope for a replica). */
  reject(message: string, code: 'Unauthorized' | 'Forbidden' = 'Unauthorized'): ServerStep {
    assert(this.#state === 'authenticating', `reject in state ${this.#state}`);
    return this.#close(code, message);
  }

  #onHello(hello: ClientHello): ServerStep {
    this.#hello = hello;
    const version = negotiateVersion(hello.versions, this.#versions);
    if (version === null) {
      return this.#close('UnsupportedVersion',
        `no common protocol version: the client speaks ${hello.versions.join(', ')}, this server ${this.#versions.join(', ')}`);
    }
    if (hello.clusterId !== 0n && hello.clusterId !== this.#identity.clusterId) {
      return this.#close('Forbidden', 'the peer expects a different cluster');
    }
    if (hello.role === 'replica' && hello.replicaIndex >= this.#identity.replicaCount) {
      return this.#close('Forbidden', `replica index ${hello.replicaIndex} is not in this cluster`);
    }
    this.#version = version;
    this.#state = 'authenticating';
    return { kind: 'authenticate', hello, version };
  }

  #close(code: PlainErrorCode, message: string): ServerStep {
    this.#state = 'closed';
    return { kind: 'close', reply: { kind: 'response', response: connectionError({ code, message }) } };
  }
}

/** What the client must do next. */
export type ClientStep =
  | { readonly kind: 'ready'; readonly hello: ServerHello }
  | { readonly kind: 'response'; readonly response: Response }
  | { readonly kind: 'refused'; readonly error: WireError }
  | { readonly kind: 'close'; readonly reason: string };

export type ClientHandshakeState = 'awaitingServerHello' | 'ready' | 'closed';

/**
 * The client side of the handshake: send `hello()` first, then feed every decoded
 * ServerMessage. Requests may be sent only once a `ready` step was returned.
 *
 * @example
 *   const handshake = new ClientHandshake({ versions: PROTOCOL_VERSIONS, role: 'client', token, clientName: 'sdk',
 *     clusterId: 0n as ClusterId, replicaIndex: 0 as ReplicaIndex });
 *   socket.write(encodeFrame(encodeClientMessage(handshake.hello())));
 */
export class ClientHandshake {
  readonly #hello: ClientHello;
  #state: ClientHandshakeState = 'awaitingServerHello';
  #version: number | null = null;

  constructor(hello: ClientHello) {
    this.#hello = hello;
  }

  get state(): ClientHandshakeState {
    return this.#state;
  }

  get version(): number | null {
    return this.#version;
  }

  hello(): ClientMessage {
    return { kind: 'hello', hello: this.#hello };
  }

  onMessage(message: ServerMessage): ClientStep {
    switch (this.#state) {
      case 'awaitingServerHello': return this.#beforeReady(message);
      case 'ready':
        if (message.kind === 'hello') return this.#close('the server sent a second hello');
        return { kind: 'response', response: message.response };
      case 'closed': return { kind: 'close', reason: 'the connection is closed' };
    }
  }

  #beforeReady(message: ServerMessage): ClientStep {
    if (message.kind === 'response') {
      const body = message.response.body;
      this.#state = 'closed';
      if (message.response.requestId === 0n && body.kind === 'error') return { kind: 'refused', error: body.error };
      return { kind: 'close', reason: 'the server answered a request before the handshake completed' };
    }
    if (!this.#hello.versions.includes(message.hello.version)) {
      return this.#close(`the server chose version ${message.hello.version}, which was not offered`);
    }
    if (this.#hello.clusterId !== 0n && message.hello.clusterId !== this.#hello.clusterId) {
      return this.#close('the server belongs to a different cluster');
    }
    this.#state = 'ready';
    this.#version = message.hello.version;
    return { kind: 'ready', hello: message.hello };
  }

  #close(reason: string): ClientStep {
    this.#state = 'closed';
    return { kind: 'close', reason };
  }
}

/** An error about the connection itself (request id 0); the sender closes after it. */
export function connectionError(error: WireError): Response {
  return { requestId: 0n, body: { kind: 'error', error } };
}
