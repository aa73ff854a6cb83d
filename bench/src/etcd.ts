import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cpuSeconds, freePorts, httpOk, logTail, removeDirectory, startChild, stopChild, tempDirectory, waitUntil, type Child } from './processes.js';
import type { Operation } from './load.js';

const MEMBERS = 3;
const READY_TIMEOUT_MS = 60_000;
/** etcd's default backend quota (2 GiB) can fill during long batched runs; 8 GiB is its documented maximum. */
const QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;

/** Whether `etcd` is on the PATH. */
function etcdInstalled(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Finds `etcd`, installing Debian's `etcd-server` when it is missing and the bench runs as root
 * with apt-get. Returns null when etcd is usable, else why it is not.
 */
export function ensureEtcd(install: boolean): string | null {
  if (etcdInstalled()) return null;
  if (!install) return 'etcd is not installed and --no-install was given';
  if (process.getuid?.() !== 0) return 'etcd is not installed and installing etcd-server needs root (apt-get install -y etcd-server)';
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return 'etcd is not installed and apt-get is not available';
  process.stderr.write('bench: etcd missing, running apt-get update && apt-get install -y etcd-server\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (update.status !== 0) return `apt-get update failed (exit ${update.status ?? update.signal})`;
  const installed = spawnSync('apt-get', ['install', '-y', 'etcd-server'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (installed.status !== 0) return `apt-get install -y etcd-server failed (exit ${installed.status ?? installed.signal})`;
  return etcdInstalled() ? null : 'etcd-server was installed but `etcd` is not on the PATH';
}

/** `etcd --version`'s first line, e.g. "etcd Version: 3.4.23". */
export function etcdVersion(): string {
  const result = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return (result.stdout.split('\n')[0] ?? '').replace(/^etcd Version:\s*/, '');
}

interface Status {
  readonly header?: { readonly member_id?: string };
  readonly leader?: string;
}

/** A running 3-member etcd cluster on loopback, spoken to through its HTTP/JSON gateway. */
export class EtcdCluster {
  readonly #members: readonly Child[];
  readonly #directory: string;
  /** Client URLs in member order. */
  readonly clientUrls: readonly string[];
  /** The leader's client URL: every put goes there (a follower would forward it). */
  leaderUrl: string;
  #nextKey = 1;
  readonly #value: string;

  private constructor(members: readonly Child[], directory: string, clientUrls: readonly string[], valueBytes: number) {
    this.#members = members;
    this.#directory = directory;
    this.clientUrls = clientUrls;
    this.leaderUrl = clientUrls[0]!;
    this.#value = Buffer.from('v'.repeat(valueBytes)).toString('base64');
  }

  static async start(valueBytes: number): Promise<EtcdCluster> {
    const directory = tempDirectory('vdb-bench-etcd-');
    const ports = await freePorts(2 * MEMBERS);
    const clientUrls = ports.slice(0, MEMBERS).map((port) => `http://127.0.0.1:${port}`);
    const peerUrls = ports.slice(MEMBERS).map((port) => `http://127.0.0.1:${port}`);
    const initialCluster = peerUrls.map((url, index) => `m${index}=${url}`).join(',');
    const members = clientUrls.map((clientUrl, index) => startChild(`etcd-${index}`, 'etcd', [
      '--name', `m${index}`, '--data-dir', join(directory, `m${index}`),
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrls[index]!, '--initial-advertise-peer-urls', peerUrls[index]!,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${ports[0]}`,
      '--quota-backend-bytes', String(QUOTA_BACKEND_BYTES), '--logger', 'zap', '--log-level', 'warn',
    ], join(directory, `m${index}.log`)));
    const cluster = new EtcdCluster(members, directory, clientUrls, valueBytes);
    try {
      const describe = () => `etcd not healthy within ${READY_TIMEOUT_MS} ms; member logs:\n${members.map((m) => `--- ${m.name}\n${logTail(m)}`).join('\n')}`;
      await waitUntil(async () => (await Promise.all(clientUrls.map((url) => httpOk(`${url}/health`)))).every(Boolean), READY_TIMEOUT_MS, describe);
      cluster.leaderUrl = await cluster.#findLeader();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  async #findLeader(): Promise<string> {
    const statuses = await Promise.all(this.clientUrls.map((url) => post<Status>(`${url}/v3/maintenance/status`, '{}')));
    const index = statuses.findIndex((status) => status.leader !== undefined && status.header?.member_id === status.leader);
    if (index < 0) throw new Error(`no etcd member reports itself as leader: ${JSON.stringify(statuses)}`);
    return this.clientUrls[index]!;
  }

  #key(): string {
    return Buffer.from(`bench/${String(this.#nextKey++).padStart(12, '0')}`).toString('base64');
  }

  /** One 200-byte put per request (`POST /v3/kv/put`). */
  put(): Operation {
    const url = `${this.leaderUrl}/v3/kv/put`;
    return async () => {
      await post(url, `{"key":"${this.#key()}","value":"${this.#value}"}`);
    };
  }

  /** `rows` puts of distinct keys in one transaction with no compares (`POST /v3/kv/txn`). */
  txn(rows: number): Operation {
    const url = `${this.leaderUrl}/v3/kv/txn`;
    return async () => {
      const puts = [];
      for (let i = 0; i < rows; i += 1) puts.push(`{"request_put":{"key":"${this.#key()}","value":"${this.#value}"}}`);
      await post(url, `{"success":[${puts.join(',')}]}`);
    };
  }

  /** CPU seconds used so far by each member. */
  cpuSeconds(): number[] {
    return this.#members.map((member) => cpuSeconds(member.process.pid));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#members.map(stopChild));
    removeDirectory(this.#directory);
  }
}

/** POSTs JSON with Node's fetch (undici: pooled keep-alive connections); throws on an error answer. */
async function post<T = unknown>(url: string, body: string): Promise<T> {
  const response = await fetch(url, {
    method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`etcd ${response.status}: ${text.slice(0, 200)}`);
  const parsed = JSON.parse(text) as T & { error?: unknown };
  if (parsed.error !== undefined) throw new Error(`etcd: ${text.slice(0, 200)}`);
  return parsed;
}
