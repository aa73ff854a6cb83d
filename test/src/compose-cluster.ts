/**
 * Runs the services of docker-compose.yml as local `vdb-server` processes: the Dockerfile's
 * ENTRYPOINT, ENV and WORKDIR (mapped to the repo), each service's command and environment,
 * addresses on 127.0.0.1 with ports from the OS, named volumes as temp dirs. Every wait is
 * bounded; `stop` always ends every process (SIGTERM, then SIGKILL) and removes the temp dirs.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeServices, loadCompose, loadImage, Mapper, type Image, type Service, type Vars } from './compose.js';

export const clusterLimits = Object.freeze({
  readyWaitMs: 90_000,
  commitWaitMs: 30_000,
  pollIntervalMs: 200,
  httpTimeoutMs: 2_000,
  healthcheckTimeoutMs: 20_000,
  stopGraceMs: 15_000,
  killWaitMs: 5_000,
  outputBytesMax: 64 * 1024,
});

export interface ReadyReport {
  readonly ready: boolean;
  readonly role: string;
  readonly status: string;
  readonly replica: number;
  readonly view: number;
  readonly primary: number;
  readonly commit: number;
  readonly applied: number;
}

/** One service as a local process, with the settings it was started with (after mapping). */
export interface LocalNode {
  readonly service: Service;
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  /** The effective setting as started (mapped): a flag beats its environment variable (as in vdb-server). */
  setting(flag: string, env: string): string | undefined;
  /** The same setting as the compose file and Dockerfile give it, inside the container. */
  containerSetting(flag: string, env: string): string | undefined;
  /** The 127.0.0.1 address the host reaches a container port at (from the service's `ports`). */
  published(containerPort: number): string;
}

interface Running extends LocalNode {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface ClusterOptions {
  readonly root: string;
  readonly composeText: string;
  readonly dockerfileText: string;
  /** The variables compose interpolates with (the shell environment of `docker compose`). */
  readonly vars: Vars;
  readonly profiles: readonly string[];
}

/** The settings `vdb-server --help` documents: its flags and its VDB_* variables. */
export function serverSettings(root: string): { flags: Set<string>; env: Set<string> } {
  const help = execFileSync(process.execPath, [join(root, 'packages/server/dist/src/main.js'), '--help'], {
    encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' },
  });
  return { flags: new Set(help.match(/--[a-z][a-z-]*/g) ?? []), env: new Set(help.match(/VDB_[A-Z_]+/g) ?? []) };
}

export class LocalCluster {
  readonly nodes: readonly Running[];
  readonly #temp: string;
  #stopped = false;

  private constructor(nodes: readonly Running[], temp: string) {
    this.nodes = nodes;
    this.#temp = temp;
  }

  /**
   * Starts every active service. Throws (after stopping what it started) if a service uses a
   * setting vdb-server does not document, or if the compose file cannot be mapped.
   */
  static async start(options: ClusterOptions): Promise<LocalCluster> {
    const image = loadImage(options.dockerfileText);
    const services = activeServices(loadCompose(options.composeText, options.vars).services, options.profiles);
    if (services.length === 0) throw new Error('no service is active');
    checkSettings(services, image, serverSettings(options.root));
    const temp = mkdtempSync(join(tmpdir(), 'vdb-compose-'));
    const nodes: Running[] = [];
    const cluster = new LocalCluster(nodes, temp);
    try {
      const volumeDirs = new Map<string, string>();
      for (const mount of services.flatMap((s) => s.volumes)) {
        if (!volumeDirs.has(mount.volume)) volumeDirs.set(mount.volume, mkdirIn(temp, mount.volume));
      }
      const mapper = await Mapper.create(services, image, volumeDirs);
      // Pushed one by one, so that a failure half-way still stops the processes already started.
      for (const service of services) nodes.push(spawnService(options.root, image, service, mapper));
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** A failure message for the first process that exited before `stop`, with its output. */
  failure(): string | null {
    const dead = this.nodes.find((n) => n.exit !== null);
    return dead === undefined ? null : describeExit(dead);
  }

  /** /ready of one node, or null if it did not answer 200 in time. */
  async ready(node: LocalNode): Promise<ReadyReport | null> {
    const http = node.published(containerPort(node.containerSetting('--http', 'VDB_HTTP')));
    try {
      const response = await fetch(`http://${http}/ready`, { signal: AbortSignal.timeout(clusterLimits.httpTimeoutMs) });
      const body = await response.text();
      return response.status === 200 ? JSON.parse(body) as ReadyReport : null;
    } catch {
      return null;
    }
  }

  /** Polls every node's /ready until `done` holds for all of them; throws past `waitMs`. */
  async waitFor(what: string, waitMs: number, done: (reports: readonly ReadyReport[]) => boolean): Promise<ReadyReport[]> {
    const deadline = Date.now() + waitMs;
    let last: (ReadyReport | null)[] = [];
    while (Date.now() < deadline) {
      const failure = this.failure();
      if (failure !== null) throw new Error(`${what}: ${failure}`);
      last = await Promise.all(this.nodes.map((n) => this.ready(n)));
      if (last.every((r) => r !== null) && done(last as ReadyReport[])) return last as ReadyReport[];
      await sleep(clusterLimits.pollIntervalMs);
    }
    const outputs = this.nodes.map((n) => `--- ${n.service.name} stdout (tail) ---\n${n.stdout.slice(-4000)}\n--- stderr ---\n${n.stderr}`).join('\n');
    throw new Error(`${what}: not within ${waitMs} ms; last /ready: ${JSON.stringify(last)}\n${outputs}`);
  }

  /** Runs a service's compose healthcheck (`["CMD", …]`) with its mapped environment; its exit code. */
  healthcheck(node: LocalNode): Promise<number> {
    const test = node.service.healthcheck;
    if (test === null || test[0] !== 'CMD' || test[1] !== 'node') throw new Error(`${node.service.name}: healthcheck must be ["CMD", "node", …]`);
    return new Promise((resolve) => {
      execFile(process.execPath, test.slice(2), { env: { PATH: process.env['PATH'] ?? '', ...node.env }, timeout: clusterLimits.healthcheckTimeoutMs },
        (error) => resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : 1));
    });
  }

  /** SIGTERM every process still running, SIGKILL after a bound, then remove the temp dirs. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await Promise.all(this.nodes.map((node) => stopNode(node)));
    } finally {
      rmSync(this.#temp, { recursive: true, force: true });
    }
  }

  /** Waits (bounded) until the service's process exits; its exit code and stderr, or null if it still runs. */
  async exitOf(name: string, waitMs: number): Promise<{ code: number | null; stderr: string } | null> {
    const node = this.nodes.find((n) => n.service.name === name);
    if (node === undefined) throw new Error(`no service ${name}`);
    return await exited(node, waitMs) ? { code: node.exit?.code ?? null, stderr: node.stderr } : null;
  }

  /** The exit status of every node after `stop` (null: had to be killed or still running). */
  exitCodes(): (number | null)[] {
    return this.nodes.map((n) => n.exit?.code ?? null);
  }
}

function checkSettings(services: readonly Service[], image: Image, known: { flags: Set<string>; env: Set<string> }): void {
  for (const service of services) {
    for (const key of Object.keys({ ...image.env, ...service.environment })) {
      if (key.startsWith('VDB_') && !known.env.has(key)) {
        throw new Error(`service ${service.name}: ${key} is not a vdb-server setting (known: ${[...known.env].join(', ')})`);
      }
    }
    for (const arg of [...service.command, ...image.cmd]) {
      const flag = arg.startsWith('--') ? arg.split('=')[0] as string : null;
      if (flag !== null && !known.flags.has(flag)) {
        throw new Error(`service ${service.name}: ${flag} is not a vdb-server flag (known: ${[...known.flags].join(', ')})`);
      }
    }
  }
}

function spawnService(root: string, image: Image, service: Service, mapper: Mapper): Running {
  const [program, script, ...entryArgs] = image.entrypoint;
  if (program !== 'node' || script === undefined || !script.startsWith(`${image.workdir}/`)) {
    throw new Error(`Dockerfile: ENTRYPOINT must be ["node", "${image.workdir}/…"], got ${JSON.stringify(image.entrypoint)}`);
  }
  const containerEnv: Record<string, string> = { ...image.env, ...service.environment };
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(containerEnv)) env[key] = mapper.value(service, value);
  const containerArgs = [...entryArgs, ...(service.command.length > 0 ? service.command : image.cmd)];
  const args = containerArgs.map((arg) => mapper.value(service, arg));
  const child = spawn(process.execPath, [join(root, script.slice(image.workdir.length + 1)), ...args], {
    cwd: root, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: Running = {
    service, env, args, child, stdout: '', stderr: '', exit: null,
    setting: (flag, name) => flagValue(args, flag) ?? env[name],
    containerSetting: (flag, name) => flagValue(containerArgs, flag) ?? containerEnv[name],
    published: (port) => {
      const published = service.ports.find((p) => p.containerPort === port);
      if (published === undefined) throw new Error(`service ${service.name} does not publish container port ${port}`);
      if (published.hostIp !== '127.0.0.1') throw new Error(`service ${service.name} publishes ${port} on ${published.hostIp}, not 127.0.0.1`);
      return `127.0.0.1:${mapper.port(service.name, port)}`;
    },
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { node.stdout = (node.stdout + chunk).slice(-clusterLimits.outputBytesMax); });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { node.stderr = (node.stderr + chunk).slice(-clusterLimits.outputBytesMax); });
  child.on('exit', (code, signal) => { node.exit = { code, signal }; });
  return node;
}

function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === flag) return args[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

/** The port of a container-side HOST:PORT setting (before mapping it is what `ports` publishes). */
export function containerPort(address: string | undefined): number {
  const port = Number(/:(\d+)$/.exec(address ?? '')?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`"${address ?? ''}" is not HOST:PORT`);
  return port;
}

function describeExit(node: Running): string {
  const how = node.exit?.signal !== null && node.exit?.signal !== undefined ? `signal ${node.exit.signal}` : `code ${node.exit?.code ?? '?'}`;
  return `service ${node.service.name} exited early with ${how}; stderr: ${node.stderr.trim() || '(empty)'}; stdout (tail): ${node.stdout.slice(-2000).trim()}`;
}

async function stopNode(node: Running): Promise<void> {
  if (node.exit !== null) return;
  node.child.kill('SIGTERM');
  if (await exited(node, clusterLimits.stopGraceMs)) return;
  node.child.kill('SIGKILL');
  await exited(node, clusterLimits.killWaitMs);
}

function exited(node: Running, waitMs: number): Promise<boolean> {
  if (node.exit !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    node.child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function mkdirIn(parent: string, name: string): string {
  const dir = join(parent, 'volumes', name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
