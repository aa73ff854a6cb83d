import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled server entry point, as the tests run it: `node packages/server/dist/src/main.js`. */
export const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  /** "host:port" of the client port and of the HTTP sidecar, from the `listening` log line. */
  readonly listen: string;
  readonly http: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A fresh temporary directory, removed at teardown. */
export async function tempDir(teardown: (fn: () => Promise<void>) => void, prefix = 'vdb-server-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Spawns `vdb-server` on 127.0.0.1 port 0 (client and HTTP) and resolves once it logs
 * `listening`; rejects with its stderr if it exits first or takes longer than `startMs`.
 * The process is killed at teardown if it still runs.
 */
export function startServer(
  teardown: (fn: () => Promise<void> | void) => void, dataDir: string, extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {}, startMs = 15_000,
): Promise<ServerProcess> {
  return spawnServer(teardown, ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', ...extraArgs], env, startMs);
}

/**
 * Spawns `vdb-server` with exactly `args` and resolves once it logs `listening`; rejects with its
 * stderr if it exits first or takes longer than `startMs`. Killed at teardown if it still runs.
 */
export function spawnServer(
  teardown: (fn: () => Promise<void> | void) => void, serverArgs: readonly string[], env: Readonly<Record<string, string>> = {}, startMs = 15_000,
): Promise<ServerProcess> {
  const args = [MAIN, ...serverArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(env) });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise<ServerProcess>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`vdb-server did not log "listening" within ${startMs} ms: ${stderr.join('')}`)), startMs);
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        if (logs.length > 2000) logs.splice(0, 1000);
        if (entry['msg'] === 'listening') {
          clearTimeout(timer);
          resolve({ child, listen: entry['listen'] as string, http: entry['http'] as string, logs, stderr, exited });
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`vdb-server exited (code ${code}, signal ${signal}) before listening: ${stderr.join('')}`));
    });
  });
}

/** Runs `vdb-server` to completion (for configurations that must refuse to start). */
export function runServer(args: readonly string[], env: Readonly<Record<string, string>> = {}, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(env) });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`vdb-server ${args.join(' ')} did not exit`)); }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** The test's environment without VDB_* variables (the server reads them), plus `extra`. */
function serverEnv(extra: Readonly<Record<string, string>>): Record<string, string | undefined> {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_'))), ...extra };
}

export async function adminToken(dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
}
