import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { formatAddress, type Address } from '@veritydb/client';
import { VerityError, type ClusterId, type ReplicaIndex } from '@veritydb/types';
import { connectionError, encodeFrame, encodeServerMessage, type PrimaryHint } from '@veritydb/wire';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.js';
import { ClientConnection, type ConnectionContext } from './connection.js';
import type { Engine } from './engine.js';
import { ensureAdminKeys, type AdminKeys } from './keys.js';
import { LocalEngine } from './local-engine.js';
import { ClusterEngine } from './cluster-engine.js';
import { PeerLinks } from './peers.js';
import { probeCluster } from './probe.js';
import { ClusterNode } from '@veritydb/runtime';
import { createToken } from './tokens.js';
import { Metrics } from './metrics.js';

export const serverLimits = Object.freeze({
  /** Open client connections; more are refused with `Overloaded`. */
  connectionsMax: 1024,
  /** How long SIGTERM waits for requests in flight before closing connections anyway. */
  drainTimeoutMs: 10_000,
});

export interface ServerOptions {
  /** Seconds since the epoch (injected by token-expiry tests). */
  readonly nowSeconds?: () => number;
  /** Milliseconds per replica tick of a cluster replica (default the runtime's). */
  readonly tickMs?: number;
}

/** Lifetime of the token a replica mints for its links to the others (renewed at every start). */
const REPLICA_TOKEN_LIFETIME_SECONDS = 365 * 24 * 3600;

/**
 * A running vdb-server: the client port (wire protocol), the HTTP sidecar and the engine.
 *
 * @example
 *   const server = await VerityServer.start(config, createLogger());
 *   process.on('SIGTERM', () => server.stop().then(() => process.exit(0)));
 */
export class VerityServer {
  readonly listen: Address;
  readonly http: Address;
  readonly #logger: Logger;
  readonly #engine: Engine;
  readonly #tcp: TcpServer;
  readonly #httpServer: HttpServer;
  readonly #metrics: Metrics;
  readonly #connections = new Set<ClientConnection>();
  #accepting = true;
  #stopping: Promise<void> | null = null;

  private constructor(init: {
    logger: Logger; engine: Engine; tcp: TcpServer; httpServer: HttpServer; metrics: Metrics;
    listen: Address; http: Address;
  }) {
    this.#logger = init.logger;
    this.#engine = init.engine;
    this.#tcp = init.tcp;
    this.#httpServer = init.httpServer;
    this.#metrics = init.metrics;
    this.listen = init.listen;
    this.http = init.http;
  }

  static async start(config: ServerConfig, logger: Logger, options: ServerOptions = {}): Promise<VerityServer> {
    const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    // Opening the engine takes the data dir's lock (one process per data dir; a lock whose
    // process is gone is taken over), so it comes before anything else touches the dir.
    const engine = config.peers.length > 1
      ? await VerityServer.#openReplica(config, logger, options, nowSeconds)
      : await LocalEngine.open({ dataDir: config.dataDir, clusterId: config.clusterId });
    try {
      const keys = await ensureAdminKeys(config.dataDir, nowSeconds(), config.adminKey);
      if (keys.createdTokenPath !== null) logger.info({ path: keys.createdTokenPath }, 'admin token created');
      const status = engine.status();
      logger.info({ dataDir: config.dataDir, clusterId: `0x${engine.clusterId.toString(16)}`, applied: status.applied, tenants: status.tenants }, 'log replayed');
      return await VerityServer.#listen(config, logger, engine, keys, nowSeconds);
    } catch (error) {
      await engine.close().catch(() => undefined);
      throw error;
    }
  }

  /** Opens a cluster replica; an empty data dir first asks the peers whether the cluster is new (see probe.ts). */
  static async #openReplica(config: ServerConfig, logger: Logger, options: ServerOptions, nowSeconds: () => number): Promise<ClusterEngine> {
    const clusterId = config.clusterId as bigint;
    let whenEmpty: 'format' | 'rejoin' = 'format';
    if (!(await ClusterNode.hasState(config.dataDir))) {
      const keys = await ensureAdminKeys(config.dataDir, nowSeconds(), config.adminKey);
      const now = nowSeconds();
      const token = createToken(keys.secretKey, keys.publicKey, {
        subject: `replica-${config.replicaIndex}`, scopes: [{ kind: 'admin' }], issuedAtSeconds: now, expiresAtSeconds: now + 300,
      });
      const probe = await probeCluster(config.peers, config.replicaIndex, token, clusterId, logger);
      whenEmpty = probe.decision;
      logger.info({ decision: probe.decision, answers: probe.answers }, probe.decision === 'rejoin'
        ? 'empty data dir in an existing cluster: rejoining in recovery mode (no vote until it holds the view\'s log)'
        : 'empty data dir and no peer reports an existing cluster: formatting a new replica');
    }
    return ClusterEngine.open({
      dataDir: config.dataDir, clusterId, replicaIndex: config.replicaIndex, addresses: config.peers.map(formatAddress), whenEmpty,
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
    });
  }

  static async #listen(config: ServerConfig, logger: Logger, engine: LocalEngine | ClusterEngine, keys: AdminKeys, nowSeconds: () => number): Promise<VerityServer> {
    const metrics = new Metrics();
    let server: VerityServer | null = null;
    const tcp = createTcpServer({ allowHalfOpen: true }, (socket) => {
      if (server === null) socket.destroy();
      else server.#accept(socket);
    });
    const httpServer = createHttpServer((request, response) => {
      if (server === null) reply(response, 503, 'text/plain', 'starting\n');
      else server.#onHttp(request, response);
    });
    const listen = await listenOn(tcp, config.listen);
    let http: Address;
    try {
      http = await listenOn(httpServer, config.http);
    } catch (error) {
      tcp.close();
      throw error;
    }
    server = new VerityServer({ logger, engine, tcp, httpServer, metrics, listen, http });
    // The address clients should use: the configured peer address when there is one (the listen
    // address may be a wildcard like 0.0.0.0), else the bound one.
    const advertised = config.peers[config.replicaIndex] ?? listen;
    const self: PrimaryHint = { index: config.replicaIndex as ReplicaIndex, address: formatAddress(advertised) };
    // What this replica authenticates with to its peers (replica links, status questions).
    const mintedAt = nowSeconds();
    const replicaToken = createToken(keys.secretKey, keys.publicKey, {
      subject: `replica-${config.replicaIndex}`, scopes: [{ kind: 'admin' }], issuedAtSeconds: mintedAt, expiresAtSeconds: mintedAt + REPLICA_TOKEN_LIFETIME_SECONDS,
    });
    const cluster = engine instanceof ClusterEngine ? engine : null;
    server.#context = {
      engine, metrics, logger, publicKey: keys.publicKey, secretKey: keys.secretKey,
      identity: { clusterId: engine.clusterId as ClusterId, replicaIndex: config.replicaIndex as ReplicaIndex, replicaCount: Math.max(1, config.peers.length) },
      primary: cluster === null ? () => self : () => cluster.primaryHint(),
      accepting: () => server !== null && server.#accepting, nowSeconds,
      replicaFrame: cluster === null ? null : (from, payload) => cluster.replicaFrame(from, payload),
      clusterStatus: cluster === null ? null : (local) => local ? Promise.resolve(cluster.clusterStatus()) : cluster.gatheredStatus(replicaToken),
    };
    if (cluster !== null) {
      const token = replicaToken;
      server.#peers = new PeerLinks({ self: config.replicaIndex, peers: config.peers, cluster: engine.clusterId as ClusterId, token, logger });
      cluster.node.start(server.#peers);
    }
    engine.onFatal((error) => {
      logger.fatal({ err: error }, 'the log failed; stopping');
      process.exitCode = 1;
      if (server !== null) void server.stop();
    });
    logger.info({ listen: formatAddress(listen), http: formatAddress(http), clusterId: `0x${engine.clusterId.toString(16)}`, replicaIndex: config.replicaIndex }, 'listening');
    return server;
  }

  #context: ConnectionContext | null = null;
  #peers: PeerLinks | null = null;
  #nextConnectionId = 1;

  #accept(socket: Socket): void {
    const context = this.#context;
    if (context === null || !this.#accepting) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= serverLimits.connectionsMax) {
      this.#metrics.connectionsRefused.inc('connections-max');
      socket.on('error', () => undefined);
      socket.end(encodeFrame(encodeServerMessage({ kind: 'response', response: connectionError({ code: 'Unavailable', message: `${this.#connections.size} connections open (max ${serverLimits.connectionsMax})` }) })));
      return;
    }
    this.#metrics.connectionsAccepted.inc();
    const connection = new ClientConnection(this.#nextConnectionId++, socket, context);
    this.#connections.add(connection);
    connection.onClose(() => this.#connections.delete(connection));
  }

  #onHttp(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const known = path === '/health' || path === '/ready' || path === '/metrics' || path === '/state';
    this.#metrics.httpRequests.inc(known ? path : 'other');
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(response, 405, 'text/plain', 'method not allowed\n');
    const status = this.#engine.status();
    switch (path) {
      case '/health': {
        const healthy = status.failure === null;
        return reply(response, healthy ? 200 : 503, 'application/json', `${JSON.stringify(healthy ? { status: 'ok' } : { status: 'failed', reason: status.failure })}\n`);
      }
      case '/ready': {
        if (this.#engine instanceof ClusterEngine) {
          // Ready = in a normal view and caught up with every op known committed.
          const node = this.#engine.node.status();
          const ready = this.#accepting && status.failure === null && this.#engine.ready;
          return reply(response, ready ? 200 : 503, 'application/json', `${JSON.stringify({
            ready, role: node.status !== 'normal' ? 'unknown' : node.isPrimary ? 'primary' : 'backup', status: node.status === 'normal' ? 'normal' : 'view_change',
            replica: node.replica, view: node.view, primary: node.primary, commit: node.commit, applied: node.applied,
          })}\n`);
        }
        // A single node is always in a normal view and caught up once it serves.
        const ready = this.#accepting && status.failure === null;
        return reply(response, ready ? 200 : 503, 'application/json', `${JSON.stringify({
          ready, role: 'primary', status: 'normal', replica: 0, view: 0, primary: 0, commit: status.durable, applied: status.applied,
        })}\n`);
      }
      case '/metrics': {
        let requestsInFlight = 0;
        for (const c of this.#connections) requestsInFlight += c.requestsInFlight;
        return reply(response, 200, 'text/plain; version=0.0.4', this.#metrics.render({
          connections: this.#connections.size, logHead: status.logHead, durable: status.durable, applied: status.applied,
          tenants: status.tenants, writesInFlight: status.writesInFlight, requestsInFlight,
        }));
      }
      case '/state': {
        // Cluster replicas: what replicas at equal positions must agree on (tests, operators comparing replicas).
        if (!(this.#engine instanceof ClusterEngine)) return reply(response, 404, 'text/plain', 'not found: /state is served by cluster replicas\n');
        return reply(response, 200, 'application/json', `${JSON.stringify(this.#engine.node.stateSummary())}\n`);
      }
      default: return reply(response, 404, 'text/plain', 'not found: try /health, /ready or /metrics\n');
    }
  }

  /**
   * Graceful stop (SIGTERM): stop accepting connections and requests, let requests in flight
   * finish (bounded by drainTimeoutMs), close connections, make the log durable and close it.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#accepting = false;
    this.#logger.info({ connections: this.#connections.size }, 'stopping');
    const tcpClosed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    for (const connection of this.#connections) connection.endSubscriptions('the server is shutting down');
    const drained = Promise.all([...this.#connections].map((c) => c.drained()));
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), serverLimits.drainTimeoutMs).unref());
    if (await Promise.race([drained.then(() => 'drained' as const), timeout]) === 'timeout') {
      this.#logger.warn({ drainTimeoutMs: serverLimits.drainTimeoutMs }, 'requests still in flight at the drain deadline');
    }
    for (const connection of [...this.#connections]) connection.close();
    await tcpClosed;
    this.#peers?.close();
    await this.#engine.close();
    await new Promise<void>((resolve) => {
      this.#httpServer.close(() => resolve());
      this.#httpServer.closeAllConnections();
    });
    this.#logger.info({ exitCode: 0 }, 'stopped');
  }
}

function reply(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function listenOn(server: TcpServer | HttpServer, address: Address): Promise<Address> {
  return new Promise<Address>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new VerityError('ListenFailed', `cannot listen on ${formatAddress(address)}: ${error.code ?? error.message}`));
    };
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      const bound = server.address() as AddressInfo;
      resolve({ host: address.host, port: bound.port });
    });
  });
}
