import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SERVER_MAIN } from './vdb-server.js';

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<void>;
}

const OUTPUT_CHARS_MAX = 64 * 1024;

/** Spawns `vdb-server` with `args` (no VDB_* variables from the test's environment); resolves once it logs `listening`. */
function spawnServer(args: readonly string[], startMs = 20_000): Promise<ServerProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_')));
  const child = spawn(process.execPath, [SERVER_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > OUTPUT_CHARS_MAX) output = output.slice(-OUTPUT_CHARS_MAX);
  };
  child.stderr.on('data', append);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vdb-server did not listen within ${startMs} ms: ${output}`)), startMs);
    child.stdout.on('data', (chunk: Buffer) => {
      append(chunk);
      if (output.includes('"msg":"listening"')) {
        clearTimeout(timer);
        resolve({ child, output: () => output, exited });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`vdb-server exited before listening: ${output}`));
    });
  });
}

/**
 * A 3- or 5-replica `vdb-server` cluster of real processes on 127.0.0.1 for end-to-end tests:
 * peer ports picked free by the OS, one temp data dir per replica, one shared admin key. Every
 * process is stopped at teardown.
 */
export interface TestReplica {
  readonly index: number;
  readonly address: string;
  readonly http: string;
  readonly dataDir: string;
  process: ServerProcess | null;
}

export interface TestCluster {
  readonly replicas: readonly TestReplica[];
  readonly addresses: readonly string[];
  readonly token: string;
  readonly clusterId: string;
  /** Starts (or restarts) replica `i` and waits for it to listen. */
  start(i: number): Promise<ServerProcess>;
  /** SIGKILL, waiting for the exit. */
  kill(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT: a paused process keeps its sockets but answers nothing. */
  pause(i: number): void;
  resume(i: number): void;
  /** The /ready JSON of replica `i` (null if it does not answer). */
  ready(i: number): Promise<ReadyState | null>;
  state(i: number): Promise<{ applied: number; stateHash: string; chainHash: string } | null>;
  /** Waits until some running replica other than `except` is a ready primary; returns its index. */
  primary(except?: readonly number[], timeoutMs?: number): Promise<number>;
  /** Waits until every running, unpaused replica is ready at the same commit; returns it. */
  converged(timeoutMs?: number): Promise<number>;
}

export interface ReadyState {
  readonly ready: boolean;
  readonly role: string;
  readonly view: number;
  readonly primary: number | null;
  readonly commit: number;
  readonly applied: number;
}

/**
 * `count` free ports for replicas to listen on, below the OS's ephemeral range (32768 and up on
 * Linux): a port the OS picks for us could be handed out again as the local end of some outbound
 * connection before the replica binds it.
 */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (ports.includes(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) ports.push(port);
  }
  return ports;
}

export async function startCluster(teardown: (fn: () => Promise<void> | void) => void, root: string, count: 3 | 5): Promise<TestCluster> {
  const ports = await freePorts(count * 2);
  const addresses = Array.from({ length: count }, (_, i) => `127.0.0.1:${ports[i]}`);
  const keyFile = join(root, 'keys', 'admin.key');
  const clusterId = `0x${(0x7e57_0000 + count).toString(16)}`;
  const paused = new Set<number>();
  const replicas: TestReplica[] = addresses.map((address, index) => ({
    index, address, http: `127.0.0.1:${ports[count + index]}`, dataDir: join(root, `replica-${index}`), process: null,
  }));
  teardown(() => {
    for (const replica of replicas) {
      const child = replica.process?.child;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        if (paused.has(replica.index)) child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    }
  });
  const cluster: TestCluster = {
    replicas, addresses, token: '', clusterId,
    async start(i) {
      const replica = replicas[i] as TestReplica;
      await mkdir(replica.dataDir, { recursive: true });
      replica.process = await spawnServer([
        '--data-dir', replica.dataDir, '--listen', replica.address, '--http', replica.http, '--cluster-id', clusterId,
        '--replica-index', String(i), '--peers', addresses.join(','), '--admin-key', keyFile,
      ]);
      return replica.process;
    },
    async kill(i) {
      const replica = replicas[i] as TestReplica;
      const child = replica.process?.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      if (paused.delete(i)) child.kill('SIGCONT');
      child.kill('SIGKILL');
      await replica.process?.exited;
      replica.process = null;
    },
    pause(i) {
      paused.add(i);
      replicas[i]?.process?.child.kill('SIGSTOP');
    },
    resume(i) {
      paused.delete(i);
      replicas[i]?.process?.child.kill('SIGCONT');
    },
    async ready(i) {
      return getJson<ReadyState>(replicas[i] as TestReplica, '/ready');
    },
    async state(i) {
      return getJson(replicas[i] as TestReplica, '/state');
    },
    async primary(except = [], timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        for (const replica of replicas) {
          if (replica.process === null || except.includes(replica.index) || paused.has(replica.index)) continue;
          const state = await cluster.ready(replica.index);
          if (state?.ready === true && state.role === 'primary') return replica.index;
        }
        await sleep(50);
      }
      throw new Error(`no ready primary (other than ${except.join(',')}) within ${timeoutMs} ms`);
    },
    async converged(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        const live = replicas.filter((r) => r.process !== null && !paused.has(r.index));
        const states = await Promise.all(live.map((r) => cluster.ready(r.index)));
        last = JSON.stringify(states);
        const commits = new Set(states.map((s) => s?.ready === true && s.applied === s.commit ? s.commit : -1));
        if (!commits.has(-1) && commits.size === 1) return [...commits][0] as number;
        await sleep(50);
      }
      throw new Error(`replicas did not converge within ${timeoutMs} ms: ${last}`);
    },
  };
  await Promise.all(replicas.map((_, i) => cluster.start(i)));
  const token = (await readFile(join(root, 'keys', 'admin.token'), 'utf8')).trim();
  await cluster.primary();
  return { ...cluster, token };
}

async function getJson<T>(replica: TestReplica, path: string): Promise<T | null> {
  if (replica.process === null) return null;
  try {
    const response = await fetch(`http://${replica.http}${path}`, { signal: AbortSignal.timeout(1000) });
    return await response.json() as T;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function wipe(replica: TestReplica): Promise<void> {
  await rm(replica.dataDir, { recursive: true, force: true });
}
