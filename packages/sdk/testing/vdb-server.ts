import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Test helper: runs a real `vdb-server` (the built `packages/server/dist/src/main.js`) on
 * 127.0.0.1 with ports chosen by the OS, on a temporary data dir, and reads its admin token.
 * Every server started is stopped by `stop()`, and killed if the test process exits first.
 *
 * @example
 *   const server = await startServer();
 *   const db = await Verity.connect({ addresses: [server.address], token: server.token });
 *   …
 *   await server.stop();
 */
export interface RunningServer {
  /** Client address "127.0.0.1:PORT". */
  readonly address: string;
  /** HTTP sidecar "127.0.0.1:PORT". */
  readonly http: string;
  /** The admin token the server wrote to `<dataDir>/admin.token`. */
  readonly token: string;
  readonly dataDir: string;
  /** Everything the server wrote so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the data dir. */
  stop(): Promise<void>;
  /** SIGTERM (SIGKILL after `graceMs`) and wait for the exit, keeping the data dir (`stop` still removes it). */
  halt(): Promise<void>;
}

export const SERVER_MAIN = fileURLToPath(new URL('../../../server/dist/src/main.js', import.meta.url));

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_CHARS_MAX = 64 * 1024;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startServer(): Promise<RunningServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'vdb-server-test-'));
  // The server reads VDB_* variables: the test environment must not configure it by accident.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VDB_')));
  const child = spawn(process.execPath, [SERVER_MAIN, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => { running.delete(child); resolve(); }));
  const halt = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
  };
  const stop = async (): Promise<void> => {
    await halt();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const ports = await new Promise<{ listen: string; http: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vdb-server did not log "listening" within ${STARTUP_TIMEOUT_MS} ms:\n${output}`)), STARTUP_TIMEOUT_MS);
      let pending = '';
      child.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-OUTPUT_CHARS_MAX); });
      child.stdout?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        output = (output + text).slice(-OUTPUT_CHARS_MAX);
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const listening = parseListening(line);
          if (listening !== null) {
            clearTimeout(timer);
            resolve(listening);
          }
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`vdb-server exited (${code ?? signal}) before listening:\n${output}`));
      });
    });
    const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
    return { address: ports.listen, http: ports.http, token, dataDir, output: () => output, stop, halt };
  } catch (error) {
    await stop();
    throw error;
  }
}

function parseListening(line: string): { listen: string; http: string } | null {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  const { msg, listen, http } = record as { msg?: unknown; listen?: unknown; http?: unknown };
  return msg === 'listening' && typeof listen === 'string' && typeof http === 'string' ? { listen, http } : null;
}
