import { assert, type Position } from '@veritydb/types';
import type { ClusterStatus, ResponseBody, Session, Statement, TenantInfo, VerifyReport } from '@veritydb/wire';
import { parseAddress } from './address.js';
import {
  Connection, type CallOptions, type ConnectionOptions, type ExecuteOptions, type ExecuteResult, type QueryResult,
  type ReadOptions,
} from './connection.js';
import { ClientError, NotPrimaryError, UnavailableError } from './errors.js';

export interface ClientOptions extends Omit<ConnectionOptions, 'address'> {
  /** Every replica's "host:port" (any order; the primary is discovered). At least one. */
  readonly addresses: readonly string[];
  /** How many times one call follows a primary hint or a `NotPrimary` at once, before pausing between tries. */
  readonly redirectsMax?: number;
  /** How long one call keeps following `NotPrimary` (default 10 s). */
  readonly redirectWindowMs?: number;
}

export const REDIRECTS_MAX_DEFAULT = 3;
export const REDIRECT_WINDOW_MS_DEFAULT = 10_000;
/** Codes that another replica would answer the same way: trying the next address is pointless. */
const FINAL_CONNECT_CODES: ReadonlySet<string> = new Set(['Unauthorized', 'Forbidden', 'UnsupportedVersion', 'BadRequest']);

/**
 * A client of one cluster: keeps one connection to the primary, found from a list of addresses.
 * The server hello names the primary; a reply `NotPrimary` names it too: the client follows
 * either (at most `redirectsMax` times per call) and retries the call there. `NotPrimary` means
 * the replica did not take the request, so the retry cannot apply a write twice.
 *
 * @example
 *   const client = await Client.connect({ addresses: ['127.0.0.1:7420', '127.0.0.1:7430'], token });
 *   await client.createTenant(1, 'clinic');
 *   await client.close();
 */
export class Client {
  readonly #options: ClientOptions;
  readonly #redirectsMax: number;
  readonly #redirectWindowMs: number;
  #connection: Connection | null = null;
  #connecting: Promise<Connection> | null = null;
  /** Where the primary was last said to be. */
  #primaryHint: string | null = null;
  #closed = false;

  private constructor(options: ClientOptions) {
    assert(options.addresses.length >= 1, 'a client needs at least one address');
    for (const address of options.addresses) {
      const parsed = parseAddress(address);
      assert(parsed.ok, `address ${address}: ${parsed.ok ? '' : parsed.reason}`);
    }
    this.#options = options;
    this.#redirectsMax = options.redirectsMax ?? REDIRECTS_MAX_DEFAULT;
    this.#redirectWindowMs = options.redirectWindowMs ?? REDIRECT_WINDOW_MS_DEFAULT;
    assert(Number.isSafeInteger(this.#redirectsMax) && this.#redirectsMax >= 0, 'redirectsMax ≥ 0');
  }

  /** Connects to the primary (following hints) and resolves once the handshake is done. */
  static async connect(options: ClientOptions): Promise<Client> {
    const client = new Client(options);
    await client.connection();
    return client;
  }

  /** The address of the connection in use (the primary, as far as known). */
  get address(): string | null {
    return this.#connection?.address ?? null;
  }

  execute(tenant: number, statements: readonly Statement[], options: ExecuteOptions = {}): Promise<ExecuteResult> {
    return this.#onPrimary((c) => c.execute(tenant, statements, options));
  }

  query(tenant: number, statement: Statement, options: ReadOptions = {}): Promise<QueryResult> {
    return this.#onPrimary((c) => c.query(tenant, statement, options));
  }

  createTenant(id: number, name: string, options: CallOptions = {}): Promise<Position> {
    return this.#onPrimary((c) => c.createTenant(id, name, options));
  }

  dropTenant(id: number, options: CallOptions = {}): Promise<Position> {
    return this.#onPrimary((c) => c.dropTenant(id, options));
  }

  listTenants(options: CallOptions = {}): Promise<readonly TenantInfo[]> {
    return this.#onPrimary((c) => c.listTenants(options));
  }

  status(options: CallOptions = {}): Promise<ClusterStatus> {
    return this.#onPrimary((c) => c.status(options));
  }

  createToken(scopes: readonly string[], expiresAtMicros: bigint, options: CallOptions = {}): Promise<string> {
    return this.#onPrimary((c) => c.createToken(scopes, expiresAtMicros, options));
  }

  register(session: Session, options: CallOptions = {}): Promise<Position> {
    return this.#onPrimary((c) => c.register(session, options));
  }

  /** `Connection.verify` on the connection in use (any replica answers for its own log). */
  async verify(tenant: number | null, options: CallOptions & { readonly onProgress?: (report: VerifyReport) => void } = {}): Promise<VerifyReport> {
    return (await this.connection()).verify(tenant, options);
  }

  /**
   * `Connection.exportTenant` over a connection of its own to the server in use (closed at the
   * end): a consumer that reads slowly pauses that socket, never the one other calls share.
   */
  async *exportTenant(tenant: number, options: CallOptions = {}): AsyncGenerator<Uint8Array> {
    const current = await this.connection();
    const dedicated = await Connection.open({ ...this.#options, address: current.address, clientName: `${(this.#options.clientName ?? 'veritydb-client').slice(0, 57)}-export` });
    try {
      yield* dedicated.exportTenant(tenant, options);
    } finally {
      await dedicated.close();
    }
  }

  /**
   * `Connection.backup` over a connection of its own to the server in use (closed at the end),
   * like `exportTenant`: a consumer that writes slowly holds up only that socket.
   */
  async *backup(options: CallOptions = {}): AsyncGenerator<Extract<ResponseBody, { kind: 'backupFile' | 'backupDone' }>> {
    const current = await this.connection();
    const dedicated = await Connection.open({ ...this.#options, address: current.address, clientName: `${(this.#options.clientName ?? 'veritydb-client').slice(0, 57)}-backup` });
    try {
      yield* dedicated.backup(options);
    } finally {
      await dedicated.close();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection ?? (await this.#connecting?.catch(() => null)) ?? null;
    this.#connection = null;
    await connection?.close();
  }

  /** The open connection to the primary, connecting (and following hints) if there is none. */
  connection(): Promise<Connection> {
    if (this.#closed) return Promise.reject(new UnavailableError('the client is closed'));
    if (this.#connection !== null && this.#connection.closedBy === null) return Promise.resolve(this.#connection);
    this.#connecting ??= this.#discover().finally(() => { this.#connecting = null; });
    return this.#connecting;
  }

  /**
   * Runs `call` on the primary, following `NotPrimary` (the replica did not take the call, so
   * a retry cannot apply a write twice). After `redirectsMax` quick redirects it keeps following,
   * with a growing pause, until `redirectWindowMs` has passed: a failover names a primary that
   * may be gone for the few hundred milliseconds its backups take to notice.
   */
  async #onPrimary<T>(call: (connection: Connection) => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let redirects = 0; ; redirects++) {
      const connection = await this.connection();
      try {
        return await call(connection);
      } catch (error) {
        if (!(error instanceof NotPrimaryError)) throw error;
        if (redirects >= this.#redirectsMax && Date.now() - started >= this.#redirectWindowMs) throw error;
        this.#follow(connection, error.primary.address);
        if (redirects >= this.#redirectsMax) await new Promise((resolve) => setTimeout(resolve, Math.min(500, 25 * 2 ** (redirects - this.#redirectsMax))));
      }
    }
  }

  /** Drops `connection` and remembers where the primary is said to be. */
  #follow(connection: Connection, primaryAddress: string): void {
    this.#primaryHint = primaryAddress;
    if (this.#connection === connection) this.#connection = null;
    void connection.close();
  }

  async #discover(): Promise<Connection> {
    const failures: string[] = [];
    for (let redirects = 0; redirects <= this.#redirectsMax; redirects++) {
      const connection = await this.#connectAny(failures);
      const primary = connection.hello.primary;
      const isPrimary = primary === null || primary.index === connection.hello.replicaIndex || primary.address === connection.address;
      if (isPrimary || redirects === this.#redirectsMax) {
        if (this.#closed) {
          await connection.close();
          throw new UnavailableError('the client was closed while connecting');
        }
        this.#connection = connection;
        return connection;
      }
      this.#follow(connection, primary.address);
    }
    throw new UnavailableError('unreachable');
  }

  /** The hinted primary first, then every address in order; the first handshake wins. */
  async #connectAny(failures: string[]): Promise<Connection> {
    const candidates = [...new Set([...(this.#primaryHint === null ? [] : [this.#primaryHint]), ...this.#options.addresses])];
    for (const address of candidates) {
      try {
        return await Connection.open({ ...this.#options, address });
      } catch (error) {
        if (!(error instanceof ClientError) || FINAL_CONNECT_CODES.has(error.code)) throw error;
        failures.push(`${address}: ${error.message}`);
        if (this.#primaryHint === address) this.#primaryHint = null;
      }
    }
    throw new UnavailableError(`no server reachable: ${failures.slice(-candidates.length).join('; ')}`);
  }
}
