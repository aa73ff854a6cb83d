import { connect, type Socket } from 'node:net';
import type { PeerTransport } from '@veritydb/runtime';
import type { ClusterId, ReplicaIndex } from '@veritydb/types';
import { FrameDecoder, PROTOCOL_VERSIONS, decodeServerMessage, encodeClientMessage, encodeFrame } from '@veritydb/wire';
import type { Logger } from 'pino';
import type { Address } from '@veritydb/client';

/**
 * Replica-to-replica links (DESIGN §10): to send, this replica keeps one outbound TCP connection
 * to every peer's client port, opened with the wire handshake as role `replica` (token signed by
 * the cluster's admin key); after the server's hello, every frame's payload is one encoded VSR
 * message. Each peer sends to us over its own outbound connection, so traffic on a connection
 * flows one way.
 *
 * Sending never blocks and never queues without bound: a message for a peer that is not
 * connected, or whose socket already holds `backlogBytesMax` unsent bytes, is dropped — the
 * protocol re-sends what matters. A lost connection is re-dialled, at most once per
 * `redialMs`.
 */
export const peerLimits = Object.freeze({
  backlogBytesMax: 32 * 1024 * 1024,
  redialMs: 200,
  handshakeTimeoutMs: 5_000,
});

interface Link {
  socket: Socket | null;
  ready: boolean;
  /** Frames waiting for the end of the current event-loop pass, and their bytes. */
  queued: Uint8Array[];
  queuedBytes: number;
  lastDialMs: number;
}

export class PeerLinks implements PeerTransport {
  readonly #self: number;
  readonly #peers: readonly Address[];
  readonly #cluster: ClusterId;
  readonly #token: string;
  readonly #logger: Logger;
  readonly #links: Link[];
  #closed = false;

  constructor(options: { self: number; peers: readonly Address[]; cluster: ClusterId; token: string; logger: Logger }) {
    this.#self = options.self;
    this.#peers = options.peers;
    this.#cluster = options.cluster;
    this.#token = options.token;
    this.#logger = options.logger;
    this.#links = options.peers.map(() => ({ socket: null, ready: false, queued: [], queuedBytes: 0, lastDialMs: 0 }));
  }

  send(to: number, bytes: Uint8Array): void {
    if (this.#closed || to === this.#self) return;
    const link = this.#links[to];
    if (link === undefined) return;
    if (!link.ready || link.socket === null) {
      this.#dial(to, link);
      return;
    }
    if (link.socket.writableLength + link.queuedBytes > peerLimits.backlogBytesMax) return;
    // Messages sent in one pass of the event loop (every prepare that the requests of one poll
    // produced) leave in one write of one buffer: a write to a loopback socket costs far more
    // than copying the frames together.
    const frame = encodeFrame(bytes);
    link.queued.push(frame);
    link.queuedBytes += frame.length;
    if (link.queued.length === 1) {
      const socket = link.socket;
      setImmediate(() => {
        const frames = link.queued;
        link.queued = [];
        link.queuedBytes = 0;
        if (link.socket === socket && !socket.destroyed) socket.write(frames.length === 1 ? frames[0] as Uint8Array : Buffer.concat(frames));
      });
    }
  }

  close(): void {
    this.#closed = true;
    for (const link of this.#links) link.socket?.destroy();
  }

  #dial(index: number, link: Link): void {
    const now = Date.now();
    if (link.socket !== null || now - link.lastDialMs < peerLimits.redialMs) return;
    link.lastDialMs = now;
    const address = this.#peers[index] as Address;
    const socket = connect({ host: address.host, port: address.port });
    link.socket = socket;
    link.ready = false;
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => socket.destroy(), peerLimits.handshakeTimeoutMs);
    socket.on('connect', () => {
      socket.write(encodeFrame(encodeClientMessage({
        kind: 'hello', hello: {
          versions: [...PROTOCOL_VERSIONS], role: 'replica', token: this.#token, clientName: `replica-${this.#self}`,
          clusterId: this.#cluster, replicaIndex: this.#self as ReplicaIndex,
        },
      })));
    });
    socket.on('data', (chunk: Buffer) => {
      const { frames, error } = decoder.push(chunk);
      for (const frame of frames) {
        const message = decodeServerMessage(frame.payload);
        if (!message.ok) continue;
        if (message.value.kind === 'hello' && !link.ready) {
          link.ready = true;
          clearTimeout(timer);
          this.#logger.info({ peer: index }, 'replica link up');
        } else if (message.value.kind === 'response' && message.value.response.body.kind === 'error') {
          this.#logger.warn({ peer: index, error: message.value.response.body.error }, 'replica link refused');
        }
      }
      if (error !== null) socket.destroy();
    });
    const down = (): void => {
      clearTimeout(timer);
      if (link.socket !== socket) return;
      if (link.ready) this.#logger.info({ peer: index }, 'replica link down');
      link.socket = null;
      link.ready = false;
    };
    socket.on('error', down);
    socket.on('close', down);
  }
}
