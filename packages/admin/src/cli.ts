import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { Verity } from 'veritydb';
import { renderTable, toJsonValue, type ResultRow } from './format.js';

/**
 * `vdb-admin`: the operator CLI. Today it runs in embedded mode on a data dir (`--data-dir`);
 * the remote mode (`--addresses`, `--token`) arrives with the server.
 *
 * Exit codes: 0 success, 1 the operation failed (one line on stderr says why), 2 bad usage.
 */

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stdin: NodeJS.ReadableStream;
  readonly interactive: boolean;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export const HELP = `vdb-admin — operate a VerityDB database

Usage:
  vdb-admin sql [STATEMENT] --data-dir DIR [--tenant N] [--json]
      Run one SQL statement, or with no statement an interactive SQL shell.
      The tenant is created on first use if it does not exist.
  vdb-admin tenant create --id N [--name NAME] --data-dir DIR [--json]
  vdb-admin help

Options:
  --data-dir DIR   embedded mode: open the database in DIR (default ./data)
  --tenant N       tenant id for sql (default 1)
  --json           machine-readable output (one JSON document per line)

Exit codes: 0 success, 1 failure (reason on stderr), 2 bad usage.
`;

const READ_PREFIXES = ['select', 'show', 'describe', 'explain'];

class UsageError extends Error {}

export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'data-dir': { type: 'string', default: './data' },
        tenant: { type: 'string', default: '1' },
        id: { type: 'string' },
        name: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    io.stderr(`vdb-admin: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.stdout(HELP);
    return command === undefined && !values.help ? EXIT_USAGE : EXIT_OK;
  }
  try {
    switch (command) {
      case 'sql':
        return await sqlCommand(values['data-dir'], parseId(values.tenant, '--tenant'), rest, values.json, io);
      case 'tenant':
        return await tenantCommand(values['data-dir'], rest, values.id, values.name, values.json, io);
      default:
        throw new UsageError(`unknown command '${command}' (see vdb-admin help)`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`vdb-admin: ${error.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`vdb-admin: ${describeError(error)}\n`);
    return EXIT_FAILED;
  }
}

function parseId(text: string | undefined, flag: string): number {
  if (text === undefined) throw new UsageError(`${flag} is required`);
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
  return id;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

async function tenantCommand(
  dataDir: string, args: readonly string[], id: string | undefined, name: string | undefined, json: boolean, io: Io,
): Promise<number> {
  const [sub] = args;
  if (sub !== 'create') throw new UsageError(`unknown tenant command '${sub ?? ''}' (expected: create)`);
  const tenantId = parseId(id, '--id');
  const db = await Verity.open(dataDir);
  try {
    await db.createTenant({ id: tenantId, name: name ?? `tenant-${tenantId}` });
  } finally {
    await db.close();
  }
  io.stdout(json ? `${JSON.stringify({ created: tenantId })}\n` : `created tenant ${tenantId}\n`);
  return EXIT_OK;
}

type Db = Awaited<ReturnType<typeof Verity.open>>;

async function ensureTenant(db: Db, tenant: number): Promise<void> {
  try {
    await db.createTenant({ id: tenant, name: `tenant-${tenant}` });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'TenantExists') throw error;
  }
}

async function sqlCommand(
  dataDir: string, tenant: number, args: readonly string[], json: boolean, io: Io,
): Promise<number> {
  const db = await Verity.open(dataDir);
  try {
    await ensureTenant(db, tenant);
    if (args.length > 0) {
      await runStatement(db, tenant, args.join(' '), json, io);
      return EXIT_OK;
    }
    return await repl(db, tenant, json, io);
  } finally {
    await db.close();
  }
}

async function runStatement(db: Db, tenant: number, sql: string, json: boolean, io: Io): Promise<void> {
  const t = db.tenant(tenant);
  const isRead = READ_PREFIXES.some((p) => sql.trimStart().toLowerCase().startsWith(p));
  if (isRead) {
    const result = await t.query(sql);
    const rows = result.rows as readonly ResultRow[];
    io.stdout(json
      ? `${JSON.stringify({ position: result.position, rows: rows.map((r) => toJsonValue(r)) })}\n`
      : `${renderTable(rows)}\n`);
    return;
  }
  const result = await t.execute(sql);
  const rows = result.rows as readonly ResultRow[];
  if (json) {
    io.stdout(`${JSON.stringify({
      position: result.position, rowsAffected: result.rowsAffected, rows: rows.map((r) => toJsonValue(r)),
    })}\n`);
    return;
  }
  if (rows.length > 0) io.stdout(`${renderTable(rows)}\n`);
  io.stdout(`OK, ${result.rowsAffected} row(s) affected at position ${result.position}\n`);
}

/** Statements end with `;` and may span lines. `\q` quits, `\dt` lists tables, `\d T` describes. */
async function repl(db: Db, tenant: number, json: boolean, io: Io): Promise<number> {
  const rl = createInterface({ input: io.stdin, terminal: false });
  const prompt = (): void => { if (io.interactive) io.stdout(pending === '' ? `vdb:${tenant}> ` : `vdb:${tenant}-> `); };
  let pending = '';
  let failures = 0;
  prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (pending === '' && trimmed.startsWith('\\')) {
      if (trimmed === '\\q') break;
      const meta = metaCommand(trimmed);
      if (meta === undefined) io.stderr(`unknown command ${trimmed} (\\q, \\dt, \\d TABLE)\n`);
      else failures += await safely(() => runStatement(db, tenant, meta, json, io), io);
      prompt();
      continue;
    }
    pending = pending === '' ? line : `${pending}\n${line}`;
    if (trimmed.endsWith(';')) {
      const sql = pending.trim().replace(/;+$/, '');
      pending = '';
      if (sql !== '') failures += await safely(() => runStatement(db, tenant, sql, json, io), io);
    }
    prompt();
  }
  if (pending.trim() !== '') failures += await safely(() => runStatement(db, tenant, pending.trim(), json, io), io);
  return failures === 0 || io.interactive ? EXIT_OK : EXIT_FAILED;
}

function metaCommand(text: string): string | undefined {
  if (text === '\\dt') return 'SHOW TABLES';
  const describe = /^\\d\s+([A-Za-z_][A-Za-z0-9_]*)$/.exec(text);
  return describe ? `DESCRIBE ${describe[1]}` : undefined;
}

async function safely(action: () => Promise<void>, io: Io): Promise<number> {
  try {
    await action();
    return 0;
  } catch (error) {
    io.stderr(`ERROR ${describeError(error)}\n`);
    return 1;
  }
}
