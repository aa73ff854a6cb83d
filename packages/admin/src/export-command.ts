import { readFile, rm } from 'node:fs/promises';
import { VerityError } from '@veritydb/types';
import { EXIT_FAILED, EXIT_OK, oneLine, parseId, refuseFlags, required, UsageError, withDb, type Flags, type Io, type Target } from './command.js';
import { clusterOf, exportTenant, writeAtomically, type ExportSummary } from './export.js';
import { EXPORT_PREAMBLE_BYTES, parseStatement, verifyExport, type HeadStatement } from './export-format.js';
import { findAdminKey, publicKeyArgument } from './keys.js';

/**
 * `export --tenant N --out FILE`: embedded (the data dir's log, signed with its admin key or
 * --admin-key) or remote (the server streams the file, signed with the admin key it holds).
 * Either way the file appears complete or not at all (temp file, fsync, rename).
 */
export async function exportCommand(target: Target, values: Flags, json: boolean, io: Io): Promise<number> {
  const tenant = parseId(values.tenant, '--tenant');
  const out = required(values.out, '--out');
  const { bytes, statement } = target.addresses === null
    ? await exportEmbedded(target, values, tenant, out)
    : await exportRemote(target, values, tenant, out);
  io.stdout(json
    ? `${JSON.stringify({ out, bytes, ...statement })}\n`
    : `exported tenant ${tenant}: ${statement.records} record(s) up to position ${statement.tenantHead.position}, log head ${statement.logHead.position}, ` +
      `signed by key ${statement.keyId} (public key ${statement.publicKey}) -> ${out} (${bytes} bytes)\n`);
  return EXIT_OK;
}

async function exportEmbedded(target: Target, values: Flags, tenant: number, out: string): Promise<ExportSummary> {
  const now = new Date();
  await clusterOf(target.dataDir);
  const key = await findAdminKey(values['admin-key'], target.dataDir, Math.floor(now.getTime() / 1000));
  return exportTenant(target.dataDir, tenant, out, key, now);
}

async function exportRemote(target: Target, values: Flags, tenant: number, out: string): Promise<ExportSummary> {
  refuseFlags('a remote export (the server signs with its admin key)', values, ['admin-key']);
  return withDb(target, async (db) => {
    let first: Uint8Array | null = null;
    const bytes = await writeAtomically(out, async (write) => {
      for await (const chunk of db.exportTenant(tenant)) {
        first ??= chunk;
        await write(chunk);
      }
    });
    const statement = first === null ? 'the server sent an empty file' : statementOf(first);
    if (typeof statement === 'string') {
      await rm(out, { force: true });
      throw new VerityError('BadExport', `the server's export of tenant ${tenant} has no valid head statement: ${statement}`);
    }
    return { out, bytes, statement };
  });
}

/** The head statement at the start of an export file (its first chunk holds it: ≤ 64 KiB + 76 bytes, chunks are 1 MiB). */
function statementOf(start: Uint8Array): HeadStatement | string {
  if (start.length < EXPORT_PREAMBLE_BYTES) return 'the file is shorter than its preamble';
  const length = Buffer.from(start.buffer, start.byteOffset, start.byteLength).readUInt32LE(8);
  if (start.length < EXPORT_PREAMBLE_BYTES + length) return 'the first chunk ends inside the head statement';
  return parseStatement(start.subarray(EXPORT_PREAMBLE_BYTES, EXPORT_PREAMBLE_BYTES + length));
}

/** `verify-export FILE [--public-key HEX|FILE]`: offline, no server, no data dir. */
export async function verifyExportCommand(values: Flags, args: readonly string[], json: boolean, io: Io): Promise<number> {
  refuseFlags('verify-export (offline)', values, ['addresses', 'data-dir', 'token']);
  if (args.length !== 1) throw new UsageError('verify-export takes exactly one FILE');
  const file = args[0] as string;
  const trusted = values['public-key'] === undefined ? undefined : await publicKeyArgument(values['public-key']);
  const check = await verifyExport(new Uint8Array(await readFile(file)), trusted);
  if (!check.ok) {
    if (json) io.stdout(`${JSON.stringify({ ok: false, file, fault: check.fault, message: check.message, record: check.record ?? null, position: check.position ?? null })}\n`);
    io.stderr(`vdb-admin: ${file}: ${oneLine(check.message)}\n`);
    return EXIT_FAILED;
  }
  const s = check.statement;
  if (json) {
    io.stdout(`${JSON.stringify({
      ok: true, file, tenant: s.tenant, records: s.records, cluster: s.cluster, logHead: s.logHead, tenantHead: s.tenantHead,
      exportedAt: s.exportedAt, keyId: s.keyId, publicKey: s.publicKey, keyPinned: check.keyPinned,
    })}\n`);
    return EXIT_OK;
  }
  io.stdout(`ok: tenant ${s.tenant}, ${s.records} record(s): every hash and per-tenant link verified; ` +
    `signed head: log position ${s.logHead.position} (${s.logHead.hash}), tenant head ${s.tenantHead.position}, ` +
    `cluster ${s.cluster}, exported ${s.exportedAt}, key ${s.keyId}\n`);
  if (!check.keyPinned) io.stdout(`note: checked against the key named in the file; pass --public-key ${s.publicKey} (or your cluster's admin.pub) to prove it is your cluster's key\n`);
  return EXIT_OK;
}
