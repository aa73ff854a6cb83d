import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ClusterId, Position, ReplicaIndex } from '@veritydb/types';
import {
  FrameDecoder, ServerHandshake, decodeClientMessage, encodeFrame, encodeServerMessage, type PrimaryHint, type Request,
  type Response, type Result, type ServerMessage,
} from '@veritydb/wire';

/**
 * A scripted wire-protocol server for client tests: real frames and the real handshake state
 * machine, with the answers decided by the test (`onRequest`), so out-of-order replies,
 * streaming, silence (timeouts), redirects and dropped connections can be produced at will.
 */
export interface FakeConnection {
  readonly socket: Socket;
  send(response: Response): void;
  /** Every request received on this connection, in order. */
  readonly requests: Request[];
}

export interface FakeServerOptions {
  /** The token the server accepts (others are refused with Unauthorized). */
  readonly token?: string;
  readonly replicaIndex?: number;
  readonly replicaCount?: number;
  /** The primary hint in the server hello (default: this server). */
  readonly primary?: (self: string) => PrimaryHint | null;
  readonly onRequest?: (request: Request, connection: FakeConnection) => void;
}

export class FakeServer {
  readonly #server: Server;
  readonly connections: FakeConnection[] = [];
  address = '';

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    let fake: FakeServer | null = null;
    const server = createServer((socket) => {
      if (fake !== null) fake.#accept(socket, options);
    });
    fake = new FakeServer(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return fake;
  }

  get requests(): Request[] {
    return this.connections.flatMap((c) => c.requests);
  }

  async stop(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket, options: FakeServerOptions): void {
    const replicaCount = options.replicaCount ?? 1;
    const handshake = new ServerHandshake({ clusterId: 7n as ClusterId, replicaIndex: (options.replicaIndex ?? 0) as ReplicaIndex, replicaCount });
    const decoder = new FrameDecoder();
    const write = (message: ServerMessage): void => { if (!socket.destroyed) socket.write(encodeFrame(encodeServerMessage(message))); };
    const connection: FakeConnection = { socket, requests: [], send: (response) => write({ kind: 'response', response }) };
    this.connections.push(connection);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      const { frames } = decoder.push(chunk);
      for (const frame of frames) {
        const decoded = decodeClientMessage(frame.payload);
        if (!decoded.ok) throw new Error(`the client sent a malformed message: ${decoded.reason}`);
        const step = handshake.onMessage(decoded.value);
        if (step.kind === 'authenticate') {
          const accepted = step.hello.token === (options.token ?? 'good-token');
          const next = accepted
            ? handshake.accept(options.primary === undefined ? { index: (options.replicaIndex ?? 0) as ReplicaIndex, address: this.address } : options.primary(this.address))
            : handshake.reject('bad token');
          if (next.kind === 'send') write(next.message);
          if (next.kind === 'close') { write(next.reply); socket.end(); }
        } else if (step.kind === 'request') {
          connection.requests.push(step.request);
          options.onRequest?.(step.request, connection);
        } else if (step.kind === 'close') {
          write(step.reply);
          socket.end();
        }
      }
    });
  }
}

/** A result frame with one BIGINT column. */
export function intResult(requestId: bigint, values: readonly number[], final: boolean, statementIndex = 0, position = 5): Response {
  const result: Result = {
    statementIndex, columns: [{ name: 'n', type: 'BIGINT' }], rows: values.map((v) => [{ kind: 'int64', value: BigInt(v) }]),
    rowsAffected: values.length, position: position as Position, final,
  };
  return { requestId, body: { kind: 'result', result } };
}
