import { pino, type Logger } from 'pino';

/**
 * The server's structured logger: pino writing JSON lines to stdout synchronously, so the last
 * lines before a crash are not lost (TOOLCHAIN.md, pino). BigInts anywhere in a log object are
 * written as decimal strings (pino would print them as bare, precision-losing numbers).
 *
 * Machine-readable lines tests and scripts rely on:
 *   {"msg":"listening","listen":"127.0.0.1:7420","http":"127.0.0.1:7421",...}
 *   {"msg":"admin token created","path":"<data-dir>/admin.token"}
 *   {"msg":"stopped","exitCode":0}
 */
export function createLogger(level: string = process.env['VDB_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    formatters: { log: (object) => bigintsToStrings(object) as Record<string, unknown> },
  }, pino.destination({ dest: 1, sync: true }));
}

/** A logger that writes nothing (tests of in-process servers). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A copy of a log object with every BigInt (nested too) as a decimal string. */
export function bigintsToStrings(value: unknown, depth = 0): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (depth > 8 || value === null || typeof value !== 'object' || value instanceof Error || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((item) => bigintsToStrings(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = bigintsToStrings(item, depth + 1);
  return out;
}
