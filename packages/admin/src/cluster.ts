import { spawn } from 'node:child_process';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { processAlive } from '@veritydb/storage';
import { VerityError } from '@veritydb/types';
import { EXIT_OK, UsageError, type Flags, type Io } from './command.js';
import {
  BASE_PORT_DEFAULT, CLUSTER_SIZES, initCluster, logPath, pidPath, readCluster, type ClusterInit, type ReplicaConfig,
} from './cluster-files.js';
import { parseDurationSeconds } from './duration.js';
import { renderTable } from './format.js';

/**
 * `cluster init|start|stop|status|up` (DESIGN §11): a development cluster of 3 or 5
 * `vdb-server` processes on loopback, described by the files of cluster-files.ts.
 */
export const CLUSTER_DIR_DEFAULT = './cluster';
export const clusterLimits = Object.freeze({
  /** `start` waits this long for every /ready, `stop` for every exit (unless --timeout). */
  timeoutDefault: '30s',
  pollMs: 200,
  /** One /ready request may take this long. */
  httpTimeoutMs: 2_000,
  /** Lines of a failed replica's log quoted in the error. */
  logLinesQuoted: 3,
});

/** The compiled `vdb-server` entry point, next to the server package's index. */
export const SERVER_MAIN = fileURLToPath(new URL('./main.js', import.meta.resolve('@veritydb/server')));

export async function clusterCommand(args: readonly string[], values: Flags, json: boolean, io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (rest.length > 0) throw new UsageError(`cluster ${sub ?? ''} takes no arguments, got '${rest.join(' ')}'`);
  if (values.addresses !== undefined || values['data-dir'] !== undefined) throw new UsageError('cluster commands take --dir DIR, not --addresses or --data-dir');
  const dir = values.dir ?? CLUSTER_DIR_DEFAULT;
  const timeoutMs = timeoutOf(values.timeout);
  switch (sub) {
    case 'init': {
      const init = await initCluster(dir, nodesOf(values.nodes, true) as number, basePortOf(values['base-port']), Math.floor(Date.now() / 1000));
      io.stdout(json ? `${JSON.stringify(init)}\n` : describeInit(init));
      return EXIT_OK;
    }
    case 'start': {
      const replicas = await clusterIn(dir);
      const started = await startCluster(dir, replicas, timeoutMs);
      io.stdout(json
        ? `${JSON.stringify({ started: started.map((s) => ({ index: s.index, pid: s.pid, address: s.address })), addresses: replicas.map((r) => r.listen) })}\n`
        : `${replicas.length} replica(s) ready: ${replicas.map((r) => r.listen).join(',')}${started.length < replicas.length ? ` (${replicas.length - started.length} were already running)` : ''}\n`);
      return EXIT_OK;
    }
    case 'stop': {
      const stopped = await stopCluster(dir, await clusterIn(dir), timeoutMs);
      io.stdout(json ? `${JSON.stringify({ stopped })}\n` : `stopped ${stopped.length} replica(s)${stopped.length > 0 ? `: ${stopped.map((s) => `${s.index} (pid ${s.pid})`).join(', ')}` : ''}\n`);
      return EXIT_OK;
    }
    case 'status': {
      const replicas = await clusterIn(dir);
      const statuses = await Promise.all(replicas.map((r) => replicaStatus(dir, r)));
      io.stdout(json
        ? `${JSON.stringify({ clusterId: replicas[0]?.clusterId ?? null, replicas: statuses })}\n`
        : `cluster ${replicas[0]?.clusterId ?? '?'}\n${renderTable(statuses.map((s) => ({ ...s })))}\n`);
      return EXIT_OK;
    }
    case 'up':
      return clusterUp(dir, values, timeoutMs, json, io);
    default:
      throw new UsageError(`unknown cluster command '${sub ?? ''}' (expected: init, start, stop, status, up)`);
  }
}

function nodesOf(text: string | undefined, isRequired: boolean): number | undefined {
  if (text === undefined) {
    if (isRequired) throw new UsageError('--nodes is required (3 or 5)');
    return undefined;
  }
  const nodes = Number(text);
  if (!CLUSTER_SIZES.includes(nodes)) throw new UsageError(`--nodes must be 3 or 5, got '${text}'`);
  return nodes;
}

function basePortOf(text: string | undefined): number {
  if (text === undefined) return BASE_PORT_DEFAULT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port + 2 * 5 - 1 > 65_535) throw new UsageError(`--base-port must be an integer from 1 to ${65_535 - 9}, got '${text}'`);
  return port;
}

function timeoutOf(text: string | undefined): number {
  const seconds = parseDurationSeconds(text ?? clusterLimits.timeoutDefault);
  if (seconds === null) throw new UsageError(`--timeout '${text}' is not a duration (e.g. 30s, 2m)`);
  return seconds * 1000;
}

async function clusterIn(dir: string): Promise<ReplicaConfig[]> {
  const replicas = await readCluster(dir);
  if (replicas.length === 0) throw new VerityError('NoCluster', `${dir} holds no replica-<i>.toml: run vdb-admin cluster init --nodes 3 --dir ${dir} first`);
  return replicas;
}

function describeInit(init: ClusterInit): string {
  return `cluster ${init.clusterId}: ${init.configs.length} replicas\n` +
    init.configs.map((config, i) => `  replica ${i}: ${init.addresses[i]} (http ${init.http[i]})  vdb-server --config ${config}\n`).join('') +
    `addresses: ${init.addresses.join(',')}\ntoken: ${init.token}\n`;
}

/** The pid in a replica's pid file if that process is alive and runs its config; else null. */
async function runningPid(dir: string, replica: ReplicaConfig): Promise<number | null> {
  const text = await readFile(pidPath(dir, replica.index), 'utf8').catch(() => null);
  const pid = text === null ? NaN : Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid < 1 || !processAlive(pid)) return null;
  // A recycled pid must not be signalled: where /proc exists, the command line must name the config.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return cmdline === null || cmdline.includes(replica.config) ? pid : null;
}

interface Started {
  readonly index: number;
  readonly pid: number;
  readonly address: string;
}

/** Starts every replica not running yet, detached, then waits until every /ready says 200. */
export async function startCluster(dir: string, replicas: readonly ReplicaConfig[], timeoutMs: number): Promise<Started[]> {
  const started: Started[] = [];
  try {
    for (const replica of replicas) {
      if (await runningPid(dir, replica) !== null) continue;
      started.push({ index: replica.index, pid: await spawnReplica(dir, replica), address: replica.listen });
    }
    await waitReady(dir, replicas, timeoutMs);
    return started;
  } catch (error) {
    // All or nothing: what this call started does not outlive its failure.
    await stopPids(dir, started, clusterLimits.pollMs * 50).catch(() => undefined);
    throw error;
  }
}

async function spawnReplica(dir: string, replica: ReplicaConfig): Promise<number> {
  const log = await open(logPath(dir, replica.index), 'a', 0o600);
  try {
    // The config file alone configures the replica: VDB_* variables would override it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_')));
    const child = spawn(process.execPath, [SERVER_MAIN, '--config', replica.config], { detached: true, stdio: ['ignore', log.fd, log.fd], env });
    const pid = child.pid;
    if (pid === undefined) throw new VerityError('SpawnFailed', `cannot start replica ${replica.index}: ${process.execPath} ${SERVER_MAIN} did not start`);
    child.unref();
    await writeFile(pidPath(dir, replica.index), `${pid}\n`);
    return pid;
  } finally {
    await log.close();
  }
}

async function waitReady(dir: string, replicas: readonly ReplicaConfig[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(replicas);
  while (waiting.size > 0) {
    for (const replica of [...waiting]) {
      if (await runningPid(dir, replica) === null) {
        throw new VerityError('ReplicaExited', `replica ${replica.index} exited: ${await logTail(dir, replica.index)} (log: ${logPath(dir, replica.index)})`);
      }
      if ((await ready(replica.http)).code === 200) waiting.delete(replica);
    }
    if (waiting.size === 0) return;
    if (Date.now() > deadline) {
      throw new VerityError('Timeout', `not ready within ${timeoutMs / 1000}s: ${[...waiting].map((r) => `replica ${r.index} (${r.http}/ready; log ${logPath(dir, r.index)})`).join(', ')}`);
    }
    await sleep(clusterLimits.pollMs);
  }
}

/** SIGTERM to every running replica, then waits for each to exit. */
export async function stopCluster(dir: string, replicas: readonly ReplicaConfig[], timeoutMs: number): Promise<{ index: number; pid: number }[]> {
  const running: { index: number; pid: number }[] = [];
  for (const replica of replicas) {
    const pid = await runningPid(dir, replica);
    if (pid === null) await rm(pidPath(dir, replica.index), { force: true });
    else running.push({ index: replica.index, pid });
  }
  await stopPids(dir, running, timeoutMs);
  return running;
}

async function stopPids(dir: string, replicas: readonly { index: number; pid: number }[], timeoutMs: number): Promise<void> {
  for (const { pid } of replicas) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const { index, pid } of replicas) {
    while (processAlive(pid)) {
      if (Date.now() > deadline) throw new VerityError('Timeout', `replica ${index} (pid ${pid}) did not exit within ${timeoutMs / 1000}s of SIGTERM (log: ${logPath(dir, index)})`);
      await sleep(clusterLimits.pollMs / 4);
    }
    await rm(pidPath(dir, index), { force: true });
  }
}

export interface ReplicaStatus {
  readonly index: number;
  readonly address: string;
  readonly http: string;
  readonly pid: number | null;
  /** Its HTTP /ready answered 200: in a normal view and caught up. */
  readonly ready: boolean;
  /** The replica's own status from /ready (normal, view_change, …), else unreachable (its
   * process runs but does not answer) or stopped. */
  readonly status: string;
  readonly role: string | null;
  readonly view: number | null;
  readonly commit: number | null;
  readonly applied: number | null;
}

/** One replica's state from its pid file and its HTTP `/ready` JSON. */
async function replicaStatus(dir: string, replica: ReplicaConfig): Promise<ReplicaStatus> {
  const pid = await runningPid(dir, replica);
  const answer = await ready(replica.http);
  const body = (typeof answer.body === 'object' && answer.body !== null ? answer.body : {}) as Record<string, unknown>;
  const field = <T>(key: string, type: 'number' | 'string'): T | null => (typeof body[key] === type ? body[key] as T : null);
  const status = answer.code !== null ? field<string>('status', 'string') ?? (answer.code === 200 ? 'normal' : 'not-ready') : pid === null ? 'stopped' : 'unreachable';
  return {
    index: replica.index, address: replica.listen, http: replica.http, pid, ready: answer.code === 200, status,
    role: field<string>('role', 'string'), view: field<number>('view', 'number'),
    commit: field<number>('commit', 'number'), applied: field<number>('applied', 'number'),
  };
}

/** GET /ready: the status code and JSON body, or code null when nothing answers. */
function ready(http: string): Promise<{ code: number | null; body: unknown }> {
  return new Promise((resolve) => {
    const request = get(`http://${http}/ready`, { timeout: clusterLimits.httpTimeoutMs }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { if (text.length < 64 * 1024) text += chunk; });
      response.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = null;
        }
        resolve({ code: response.statusCode ?? null, body });
      });
      response.on('error', () => resolve({ code: null, body: null }));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve({ code: null, body: null }));
  });
}

/** `cluster up`: init if DIR has no cluster, start, print where it is, wait for a stop signal, stop. */
async function clusterUp(dir: string, values: Flags, timeoutMs: number, json: boolean, io: Io): Promise<number> {
  const nodes = nodesOf(values.nodes, false);
  let replicas = await readCluster(dir);
  if (replicas.length === 0) {
    await initCluster(dir, nodes ?? 3, basePortOf(values['base-port']), Math.floor(Date.now() / 1000));
    replicas = await readCluster(dir);
  } else if (nodes !== undefined && nodes !== replicas.length) {
    throw new UsageError(`${dir} holds a ${replicas.length}-node cluster, not ${nodes}: use another --dir`);
  } else if (values['base-port'] !== undefined) {
    throw new UsageError(`${dir} already holds a cluster: its ports are in its configs, --base-port applies to a new one`);
  }
  const stopping = (io.untilStopped ?? untilSignal)();
  await startCluster(dir, replicas, timeoutMs);
  const token = (await readFile(`${dir}/admin.token`, 'utf8')).trim();
  const addresses = replicas.map((r) => r.listen);
  io.stdout(json
    ? `${JSON.stringify({ clusterId: replicas[0]?.clusterId, addresses, http: replicas.map((r) => r.http), token })}\n`
    : `cluster ${replicas[0]?.clusterId} is up (${dir}); Ctrl-C stops it\naddresses: ${addresses.join(',')}\ntoken: ${token}\n` +
      `try: VDB_TOKEN=${token} vdb-admin status --addresses ${addresses.join(',')}\n`);
  const signal = await stopping;
  const stopped = await stopCluster(dir, replicas, timeoutMs);
  io.stdout(json ? `${JSON.stringify({ signal, stopped })}\n` : `${signal}: stopped ${stopped.length} replica(s)\n`);
  return EXIT_OK;
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    // Signal listeners alone do not keep Node's event loop alive: without this timer the
    // process would exit as soon as the cluster is up, orphaning its replicas.
    const keepAlive = setInterval(() => undefined, 60_000);
    const on = (signal: string): void => {
      clearInterval(keepAlive);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = (): void => on('SIGINT');
    const onTerm = (): void => on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

async function logTail(dir: string, index: number): Promise<string> {
  const text = await readFile(logPath(dir, index), 'utf8').catch(() => '');
  const lines = text.trim().split('\n').filter((line) => line !== '').slice(-clusterLimits.logLinesQuoted);
  return lines.length === 0 ? 'no output' : lines.map((line) => line.trim()).join(' | ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
