import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Verity } from 'veritydb';
import { cpuSeconds, freePorts, httpOk, logTail, removeDirectory, startChild, stopChild, tempDirectory, waitUntil, type Child } from './processes.js';
import type { Operation } from './load.js';

/** The built server entry point (`npx tsc -b packages/server` produces it). */
const SERVER_MAIN = fileURLToPath(new URL('../../packages/server/dist/src/main.js', import.meta.url));
const REPLICAS = 3;
const CLUSTER_ID = '0xbe7c';
const READY_TIMEOUT_MS = 60_000;
const TENANT = 1;
/** One row's text: the same 200 bytes as etcd's values. */
export const VALUE_BYTES = 200;
const BODY = 'v'.repeat(VALUE_BYTES);

export type BatchForm = 'values' | 'statements';

export interface VerityClusterOptions {
  /** Extra `node` flags for every replica (e.g. `--cpu-prof`). */
  readonly nodeFlags: readonly string[];
}

/** A running 3-replica cluster on loopback, with one table `p (id BIGINT PRIMARY KEY, body TEXT)`. */
export class VerityCluster {
  readonly #replicas: readonly Child[];
  readonly #directory: string;
  readonly addresses: readonly string[];
  readonly token: string;
  readonly #handles: Verity[] = [];
  #nextId = 1;

  private constructor(replicas: readonly Child[], directory: string, addresses: readonly string[], token: string) {
    this.#replicas = replicas;
    this.#directory = directory;
    this.addresses = addresses;
    this.token = token;
  }

  static async start(options: VerityClusterOptions): Promise<VerityCluster> {
    if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: run \`npx tsc -b packages/server packages/sdk\` first`);
    const directory = tempDirectory('vdb-bench-cluster-');
    const ports = await freePorts(2 * REPLICAS);
    const addresses = ports.slice(0, REPLICAS).map((port) => `127.0.0.1:${port}`);
    const https = ports.slice(REPLICAS).map((port) => `127.0.0.1:${port}`);
    const adminKey = join(directory, 'keys', 'admin.key');
    mkdirSync(join(directory, 'keys'), { recursive: true });
    // The server reads VDB_* variables: the bench's environment must not configure it by accident.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_')));
    const replicas = addresses.map((_address, index) => startChild(`vdb-${index}`, process.execPath, [
      ...options.nodeFlags, SERVER_MAIN,
      '--data-dir', join(directory, `d${index}`), '--http', https[index]!, '--cluster-id', CLUSTER_ID,
      '--replica-index', String(index), '--peers', addresses.join(','), '--admin-key', adminKey,
    ], join(directory, `replica-${index}.log`), env));
    const cluster = new VerityCluster(replicas, directory, addresses, '');
    try {
      const describe = (what: string) => () => `${what} within ${READY_TIMEOUT_MS} ms; replica logs:\n${replicas.map((r) => `--- ${r.name}\n${logTail(r)}`).join('\n')}`;
      const tokenPath = join(directory, 'keys', 'admin.token');
      await waitUntil(async () => existsSync(tokenPath) && readFileSync(tokenPath, 'utf8').trim() !== '', READY_TIMEOUT_MS, describe('no admin token'));
      await waitUntil(async () => (await Promise.all(https.map((http) => httpOk(`http://${http}/ready`)))).every(Boolean), READY_TIMEOUT_MS, describe('replicas not ready'));
      const token = readFileSync(tokenPath, 'utf8').trim();
      const ready = new VerityCluster(replicas, directory, addresses, token);
      await ready.#createTable();
      return ready;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  async #createTable(): Promise<void> {
    const db = await Verity.connect({ addresses: this.addresses, token: this.token });
    try {
      await db.createTenant({ id: TENANT, name: 'bench' });
      await db.tenant(TENANT).execute('CREATE TABLE p (id BIGINT PRIMARY KEY, body TEXT)');
    } finally {
      await db.close();
    }
  }

  /** CPU seconds used so far by each replica. */
  cpuSeconds(): number[] {
    return this.#replicas.map((replica) => cpuSeconds(replica.process.pid));
  }

  /** `count` SDK handles (one `Verity.connect` per client, so one connection each), opened once and reused. */
  async handles(count: number): Promise<Verity[]> {
    while (this.#handles.length < count) {
      // One write in flight per client: one exactly-once session each.
      this.#handles.push(await Verity.connect({ addresses: this.addresses, token: this.token, sessionsMax: 1, clientName: `bench-${this.#handles.length}` }));
    }
    return this.#handles.slice(0, count);
  }

  /** A single-row INSERT per request. */
  singleInsert(db: Verity): Operation {
    const tenant = db.tenant(TENANT);
    return async () => {
      await tenant.execute('INSERT INTO p VALUES ($1, $2)', [this.#nextId++, BODY]);
    };
  }

  /**
   * `rows` rows per request, atomically at one position: either one multi-row INSERT
   * (`values`) or one `batch` of single-row INSERT statements (`statements`).
   */
  batchInsert(db: Verity, rows: number, form: BatchForm): Operation {
    const tenant = db.tenant(TENANT);
    if (form === 'statements') {
      return async () => {
        const statements = [];
        for (let i = 0; i < rows; i += 1) statements.push({ sql: 'INSERT INTO p VALUES ($1, $2)', params: [this.#nextId++, BODY] });
        await tenant.batch(statements);
      };
    }
    const tuples = [];
    for (let i = 0; i < rows; i += 1) tuples.push(`($${2 * i + 1}, $${2 * i + 2})`);
    const sql = `INSERT INTO p VALUES ${tuples.join(', ')}`;
    return async () => {
      const params: unknown[] = [];
      for (let i = 0; i < rows; i += 1) params.push(this.#nextId++, BODY);
      await tenant.execute(sql, params);
    };
  }

  /** Closes the handles, stops the replicas (SIGTERM, so `--cpu-prof` files get written) and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.#handles.splice(0).map((db) => db.close().catch(() => undefined)));
    await Promise.all(this.#replicas.map(stopChild));
    removeDirectory(this.#directory);
  }
}
