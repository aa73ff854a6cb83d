import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { Verity } from 'veritydb';


import { backupCommand, restoreCommand } from './backup.js';
import { clusterCommand } from './cluster.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, oneLine, parseId, UsageError, withDb, type Flags, type Io, type Target } from './command.js';
import { exportCommand, verifyExportCommand } from './export-command.js';
import { ProgressBar, renderStatus, renderTable, statusJson, toJsonValue, type ResultRow } from './format.js';
import { tokenCommand } from './token-command.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Io };

/**
 * `vdb-admin`: the operator CLI (DESIGN §11). Every command runs remotely against a server
 * (`--addresses`, `--token` or `VDB_TOKEN`, through the SDK's `Verity.connect`) or embedded on a
 * data dir (`--data-dir`, `Verity.open`).
 *
 * Exit codes: 0 success, 1 the operation failed (one line on stderr says why), 2 bad usage.
 */

export const HELP = `vdb-admin — operate a VerityDB database

Usage:
  vdb-admin status [--json]
      Cluster id, view, primary and every replica's role, state, commit and applied positions.
  vdb-admin tenant create --id N [--name NAME] [--json]
  vdb-admin tenant list [--json]                (remote mode)
  vdb-admin tenant show N | --id N [--json]     (remote mode)
  vdb-admin tenant drop N | --id N [--json]
  vdb-admin sql [STATEMENT] [--tenant N] [--json]
      Run one SQL statement, or with no statement an interactive SQL shell.
      The tenant is created on first use if it does not exist.
  vdb-admin verify [--tenant N] [--json]
      Check the log's hash chain (every record, or one tenant's chain). Remote: the server
      checks its own log (a replica's ledger) while serving; the whole log needs an admin
      token, a tenant's chain admin or tenant:N:read.
  vdb-admin token create --scope SCOPE [--scope …] [--expires-in DURATION] [--subject NAME]
                         [--admin-key FILE] [--json]
      Create an access token. SCOPE: admin, tenant:<id>:read or tenant:<id>:write;
      DURATION: e.g. 90s, 15m, 12h, 30d (default), 2w. Remote: the server signs it for the
      subject of the token that asks. Embedded: signed here with the data dir's admin key
      (<data-dir>/keys/admin.key) or --admin-key FILE; --subject defaults to admin.
  vdb-admin export --tenant N --out FILE [--admin-key FILE] [--json]
      Write tenant N's hash chain and a head statement signed with the admin key
      (format: docs/EXPORT.md). No other tenant's data is in the file. Remote: the server
      streams the file, signed with its admin key (needs admin or tenant:N:read; no
      --admin-key); embedded: signed with the data dir's key or --admin-key FILE.
  vdb-admin verify-export FILE [--public-key HEX|FILE] [--json]       (offline)
      Check every record's hash, every per-tenant link and the signed head. --public-key
      pins the cluster's admin public key (e.g. DIR/admin.pub from cluster init).
  vdb-admin backup --out DIR [--json]
      A consistent copy of the data dir with a manifest of every file's BLAKE3, the position
      and the state hash; DIR must be new or empty. Embedded: the data dir's lock held, after a
      checkpoint (refused while a server holds it). Remote: a single-node server writes a
      checkpoint and streams it with its log up to that position while it keeps serving (needs
      an admin token; a cluster replica refuses: stop one and back up its data dir embedded).
  vdb-admin restore --from DIR --data-dir DIR2 [--json]
      Check the backup, copy it into the new or empty DIR2, open it and require the same state.
  vdb-admin cluster init --nodes 3|5 [--dir DIR] [--base-port P] [--json]
      Create a local development cluster in DIR (default ./cluster): cluster id, admin key
      pair (DIR/admin.key, DIR/admin.pub), DIR/admin.token and DIR/replica-<i>.toml for
      vdb-server --config. Replica i: client port P+2i, HTTP P+2i+1 on 127.0.0.1 (P: 7420).
  vdb-admin cluster start [--dir DIR] [--timeout DURATION]
      Start every replica in the background (logs DIR/replica-<i>.log, pids DIR/replica-<i>.pid)
      and wait until each /ready answers 200 (default timeout 30s).
  vdb-admin cluster stop [--dir DIR] [--timeout DURATION]
      SIGTERM every running replica and wait for it to exit.
  vdb-admin cluster status [--dir DIR] [--json]
      Per replica: index, address, pid, status, role, view, commit and applied positions.
  vdb-admin cluster up [--nodes 3|5] [--dir DIR] [--base-port P]
      init (if DIR holds no cluster), start, print the addresses and token, and stay in the
      foreground until SIGINT/SIGTERM, then stop the replicas.
  vdb-admin help

Every command runs either
  remote:    --addresses HOST:PORT[,HOST:PORT…] [--token TOKEN]   (token default: $VDB_TOKEN)
  embedded:  --data-dir DIR   (default ./data; opens the database in this process)

Options:
  --tenant N       tenant id for sql (default 1) and verify (default: the whole log)
  --json           machine-readable output (one JSON document per line; errors too, on stderr)

Exit codes: 0 success, 1 failure (one line on stderr says why), 2 bad usage.
`;

const READ_PREFIXES = ['select', 'show', 'describe', 'explain'];


export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'data-dir': { type: 'string' },
        addresses: { type: 'string', multiple: true },
        token: { type: 'string' },
        tenant: { type: 'string' },
        id: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        'expires-in': { type: 'string' },
        subject: { type: 'string' },
        'admin-key': { type: 'string' },
        out: { type: 'string' },
        from: { type: 'string' },
        'public-key': { type: 'string' },
        nodes: { type: 'string' },
        dir: { type: 'string' },
        'base-port': { type: 'string' },
        timeout: { type: 'string' },
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
  const json = values.json;
  try {
    const target = targetOf(values, io);
    switch (command) {
      case 'status':
        noArguments(command, rest);
        return await statusCommand(target, json, io);
      case 'sql':
        return await sqlCommand(target, parseId(values.tenant ?? '1', '--tenant'), rest, json, io);
      case 'tenant':
        return await tenantCommand(target, rest, values.id, values.name, json, io);
      case 'verify':
        noArguments(command, rest);
        return await verifyCommand(target, values.tenant === undefined ? undefined : parseId(values.tenant, '--tenant'), json, io);
      case 'token':
        return await tokenCommand(target, rest, values, json, io);
      case 'export':
        noArguments(command, rest);
        return await exportCommand(target, values, json, io);
      case 'verify-export':
        return await verifyExportCommand(values, rest, json, io);
      case 'backup':
        noArguments(command, rest);
        return await backupCommand(target, values, json, io);
      case 'restore':
        noArguments(command, rest);
        return await restoreCommand(values, json, io);
      case 'cluster':
        return await clusterCommand(rest, values, json, io);
      default:
        throw new UsageError(`unknown command '${command}' (see vdb-admin help)`);
    }
  } catch (error) {
    const usage = error instanceof UsageError;
    const reason = usage ? (error as Error).message : describeError(error);
    io.stderr(json
      ? `${JSON.stringify({ error: { code: usage ? 'Usage' : codeOf(error), message: usage ? reason : messageOf(error) } })}\n`
      : `vdb-admin: ${oneLine(reason)}\n`);
    return usage ? EXIT_USAGE : EXIT_FAILED;
  }
}

function targetOf(values: Flags, io: Io): Target {
  const addresses = values.addresses?.flatMap((list) => list.split(',')).map((a) => a.trim()).filter((a) => a !== '') ?? null;
  if (addresses !== null && addresses.length === 0) throw new UsageError('--addresses needs at least one HOST:PORT');
  if (addresses !== null && values['data-dir'] !== undefined) throw new UsageError('--addresses (remote) and --data-dir (embedded) exclude each other');
  if (addresses === null && values.token !== undefined) throw new UsageError('--token needs --addresses (embedded mode has no authentication)');
  return { dataDir: values['data-dir'] ?? './data', dataDirGiven: values['data-dir'] !== undefined, addresses, token: values.token ?? (io.env ?? process.env)['VDB_TOKEN'] };
}

function noArguments(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments, got '${rest.join(' ')}'`);
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'Error';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? `${code}: ${messageOf(error)}` : messageOf(error);
}

async function statusCommand(target: Target, json: boolean, io: Io): Promise<number> {
  const status = await withDb(target, (db) => db.status());
  io.stdout(json ? `${JSON.stringify(statusJson(status))}\n` : `${renderStatus(status)}\n`);
  return EXIT_OK;
}

async function tenantCommand(
  target: Target, args: readonly string[], id: string | undefined, name: string | undefined, json: boolean, io: Io,
): Promise<number> {
  const [sub, ...rest] = args;
  if (rest.length > 1 || (rest.length === 1 && id !== undefined)) throw new UsageError(`tenant ${sub ?? ''}: give the id once`);
  const idText = rest[0] ?? id;
  switch (sub) {
    case 'create': {
      const tenantId = parseId(idText, '--id');
      const { position } = await withDb(target, (db) => db.createTenant({ id: tenantId, name: name ?? `tenant-${tenantId}` }));
      io.stdout(json ? `${JSON.stringify({ created: tenantId })}\n` : `created tenant ${tenantId} at position ${position}\n`);
      return EXIT_OK;
    }
    case 'list': {
      if (idText !== undefined) throw new UsageError('tenant list takes no id');
      const tenants = await withDb(target, (db) => db.listTenants());
      io.stdout(json ? `${JSON.stringify({ tenants })}\n` : `${renderTable(tenants.map((t) => ({ ...t })))}\n`);
      return EXIT_OK;
    }
    case 'show': {
      const tenantId = parseId(idText, '--id');
      const tenant = (await withDb(target, (db) => db.listTenants())).find((t) => t.id === tenantId);
      if (tenant === undefined) throw Object.assign(new Error(`tenant ${tenantId} does not exist`), { code: 'TenantNotFound' });
      io.stdout(json ? `${JSON.stringify(tenant)}\n` : `${renderTable([{ ...tenant }])}\n`);
      return EXIT_OK;
    }
    case 'drop': {
      const tenantId = parseId(idText, '--id');
      const { position } = await withDb(target, (db) => db.dropTenant(tenantId));
      io.stdout(json ? `${JSON.stringify({ dropped: tenantId, position })}\n` : `dropped tenant ${tenantId} at position ${position}\n`);
      return EXIT_OK;
    }
    default:
      throw new UsageError(`unknown tenant command '${sub ?? ''}' (expected: create, list, show, drop)`);
  }
}

async function verifyCommand(target: Target, tenant: number | undefined, json: boolean, io: Io): Promise<number> {
  const bar = io.progress === true ? new ProgressBar(io.stderr) : null;
  const result = await withDb(target, (db) => db.verify(tenant === undefined ? {} : { tenant }, bar === null ? {} : { onProgress: (checked, total) => bar.update(checked, total) }));
  bar?.finish();
  const scope = tenant === undefined ? 'the log' : `tenant ${tenant}'s chain`;
  if (json) io.stdout(`${JSON.stringify({ ...(tenant === undefined ? {} : { tenant }), ...result })}\n`);
  if (result.ok) {
    if (!json) io.stdout(`ok: ${scope} verified, ${result.checked} record(s) checked\n`);
    return EXIT_OK;
  }
  io.stderr(`vdb-admin: verify failed at position ${result.position} (${result.reason}): ${oneLine(result.detail)} [${result.file}]\n`);
  return EXIT_FAILED;
}

type Db = Verity;


async function ensureTenant(db: Db, tenant: number): Promise<void> {
  try {
    await db.createTenant({ id: tenant, name: `tenant-${tenant}` });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'TenantExists') throw error;
  }
}

async function sqlCommand(target: Target, tenant: number, args: readonly string[], json: boolean, io: Io): Promise<number> {
  return withDb(target, async (db) => {
    await ensureTenant(db, tenant);
    if (args.length > 0) {
      await runStatement(db, tenant, args.join(' '), json, io);
      return EXIT_OK;
    }
    return repl(db, tenant, json, io);
  });
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
    io.stderr(`ERROR ${oneLine(describeError(error))}\n`);
    return 1;
  }
}
