import { readFile } from 'node:fs/promises';
import { VerityError } from '@veritydb/types';
import { EXIT_FAILED, EXIT_OK, oneLine, parseId, refuseFlags, required, UsageError, type Flags, type Io, type Target } from './command.js';
import { clusterOf, exportTenant } from './export.js';
import { verifyExport } from './export-format.js';
import { findAdminKey, publicKeyArgument } from './keys.js';

/** `export --tenant N --out FILE`: embedded; signs the head with the admin key. */
export async function exportCommand(target: Target, values: Flags, json: boolean, io: Io): Promise<number> {
  if (target.addresses !== null) {
    throw new VerityError('NotSupported', 'export is not available remotely: the wire protocol has no export request yet; run vdb-admin export --data-dir DIR on a replica\'s data dir (with the server stopped) or on a backup');
  }
  const tenant = parseId(values.tenant, '--tenant');
  const out = required(values.out, '--out');
  const now = new Date();
  await clusterOf(target.dataDir);
  const key = await findAdminKey(values['admin-key'], target.dataDir, Math.floor(now.getTime() / 1000));
  const { bytes, statement } = await exportTenant(target.dataDir, tenant, out, key, now);
  io.stdout(json
    ? `${JSON.stringify({ out, bytes, ...statement })}\n`
    : `exported tenant ${tenant}: ${statement.records} record(s) up to position ${statement.tenantHead.position}, log head ${statement.logHead.position}, ` +
      `signed by key ${statement.keyId} (public key ${statement.publicKey}) -> ${out} (${bytes} bytes)\n`);
  return EXIT_OK;
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
