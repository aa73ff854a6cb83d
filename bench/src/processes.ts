import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything the cluster benchmark starts and creates — child processes and temporary
 * directories — registered in one place, so that a normal end, an error, Ctrl-C or SIGTERM all
 * stop every process and remove every directory.
 */

const STOP_GRACE_MS = 5_000;
const LOG_TAIL_BYTES = 4_096;

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The file that receives the child's stdout and stderr. */
  readonly logPath: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

const children = new Set<Child>();
const directories = new Set<string>();
let installed = false;
let interrupted: NodeJS.Signals | null = null;

/** The signal that is stopping the bench, if any: failures after it are its consequence, not news. */
export function interruptedBy(): NodeJS.Signals | null {
  return interrupted;
}

/** Kills every child (SIGKILL) and removes every directory, synchronously: safe in 'exit'. */
function cleanupNow(): void {
  for (const child of children) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  }
  children.clear();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories.clear();
}

/** Installs the exit and signal handlers once. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.once('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      interrupted = signal;
      process.stderr.write(`bench: ${signal}, stopping every process it started\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A new temporary directory under the OS temp dir (same disk as every other one), removed at the end. */
export function tempDirectory(prefix: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  directories.add(directory);
  return directory;
}

export function removeDirectory(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
  directories.delete(directory);
}

/** Starts `command` with its output going to `logPath`. */
export function startChild(name: string, command: string, args: readonly string[], logPath: string, env?: NodeJS.ProcessEnv): Child {
  const log = openSync(logPath, 'a');
  const child = spawn(command, args, { stdio: ['ignore', log, log], env: env ?? process.env });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const entry: Child = { name, process: child, logPath, exited };
  children.add(entry);
  void exited.then(() => children.delete(entry));
  return entry;
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null) {
    child.process.kill('SIGTERM');
    const timer = setTimeout(() => child.process.kill('SIGKILL'), STOP_GRACE_MS);
    await child.exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

/** Stops every child still running, then removes every directory. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map(stopChild));
  cleanupNow();
}

/** The end of a child's log, for error messages. */
export function logTail(child: Child): string {
  try {
    const text = readFileSync(child.logPath, 'utf8');
    return text.slice(-LOG_TAIL_BYTES);
  } catch {
    return '(no log)';
  }
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port from the OS');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws `describe()` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, describe: () => string, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(describe());
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** GET `url`; true on a 2xx answer. */
export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  return response.ok;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where unavailable. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}
