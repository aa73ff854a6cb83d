import { Verity } from 'veritydb';
/** What every `vdb-admin` command shares: its I/O, exit codes, flags and the usage error. */

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stdin: NodeJS.ReadableStream;
  readonly interactive: boolean;
  /** stderr is a terminal: long operations (verify) draw a progress bar there. */
  readonly progress?: boolean;
  /** Where `VDB_TOKEN` is read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Resolves when the process is asked to stop (`cluster up` waits for it); default: the first
   * SIGINT or SIGTERM. */
  readonly untilStopped?: () => Promise<string>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad usage: exit code 2 with the message. */
export class UsageError extends Error {}

/** Where a command runs: a server (`addresses` set) or a data dir in this process. */
export interface Target {
  readonly dataDir: string;
  /** True when --data-dir was given (not the default). */
  readonly dataDirGiven: boolean;
  readonly addresses: readonly string[] | null;
  readonly token: string | undefined;
}

/** The parsed flags (every command's; each reads its own). */
export interface Flags {
  readonly 'data-dir'?: string | undefined;
  readonly addresses?: string[] | undefined;
  readonly token?: string | undefined;
  readonly tenant?: string | undefined;
  readonly id?: string | undefined;
  readonly name?: string | undefined;
  readonly scope?: string[] | undefined;
  readonly 'expires-in'?: string | undefined;
  readonly subject?: string | undefined;
  readonly 'admin-key'?: string | undefined;
  readonly out?: string | undefined;
  readonly from?: string | undefined;
  readonly 'public-key'?: string | undefined;
  readonly nodes?: string | undefined;
  readonly dir?: string | undefined;
  readonly 'base-port'?: string | undefined;
  readonly timeout?: string | undefined;
}

export function parseId(text: string | undefined, flag: string): number {
  if (text === undefined) throw new UsageError(`${flag} is required`);
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
  return id;
}

/** The value of a required flag. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** The reason on one line, whatever the error message holds. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** Refuses flags a command does not use, so a mistyped intent is not silently ignored. */
export function refuseFlags(command: string, values: Flags, flags: readonly (keyof Flags)[]): void {
  const given = flags.filter((flag) => values[flag] !== undefined);
  if (given.length > 0) throw new UsageError(`${command} does not take ${given.map((f) => `--${f}`).join(', ')}`);
}

/** Opens the database the flags name: a server through the SDK, or the data dir in-process. */
export async function openDb(target: Target): Promise<Verity> {
  if (target.addresses === null) return Verity.open(target.dataDir);
  if (target.token === undefined || target.token === '') throw new UsageError('remote mode needs a token: --token TOKEN or VDB_TOKEN');
  return Verity.connect({ addresses: target.addresses, token: target.token });
}

export async function withDb<T>(target: Target, action: (db: Verity) => Promise<T>): Promise<T> {
  const db = await openDb(target);
  try {
    return await action(db);
  } finally {
    await db.close();
  }
}
