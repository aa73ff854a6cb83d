import { blake3 } from '@veritydb/crypto';
import { decodeEnvelope, Kernel, OPERATION, type ApplyResult, type KernelOptions } from '@veritydb/kernel';
import type { Log } from '@veritydb/storage';
import type { SessionTable } from '@veritydb/vsr';
import { assert, CHECKSUM_ZERO, checksum, checksumEqual, position, tenantId, VerityError, type Checksum } from '@veritydb/types';
import { readCheckpointFile, type CheckpointFile } from './checkpoint-file.js';
import { applyEntry, createSessionTable } from './sessions.js';

/**
 * Recovery at open: the latest checkpoint (refused unless it belongs to this log) plus the log
 * after it, and what the engine keeps beside the kernel: the tenant directory and the client
 * session table.
 */
export interface Replayed {
  readonly kernel: Kernel;
  /** Client sessions as the checkpoint and the log after it leave them (see `sessions.ts`). */
  readonly sessions: SessionTable;
  /** Hash of the last applied record (the next checkpoint's tie to the log). */
  readonly lastHash: Checksum;
  readonly checkpointPosition: number;
  /** Live tenants and their names. */
  readonly tenants: Map<number, string>;
}

/**
 * The latest checkpoint plus the log after it: the state, its last hash, the tenant directory and
 * the session table. `ledger`: the log is a cluster replica's ledger, whose bodies are applied as
 * they are (its replicas' session tables already turned skipped requests into no-ops).
 */
export async function replay(dir: string, log: Log, ledger: boolean): Promise<Replayed> {
  const loaded = await loadCheckpoint(dir, log);
  const { kernel, tenants, sessions } = loaded;
  let lastHash = loaded.lastHash;
  for await (const record of log.scan(position(kernel.head + 1))) {
    const { result } = applyEntry(kernel, ledger ? null : sessions, {
      position: record.position, timestampMicros: record.timestamp, tenant: record.tenant, hash: record.hash,
      client: record.client, request: record.request, operation: record.operation, body: record.body,
    });
    trackTenants(tenants, result, record.body);
    lastHash = record.hash;
  }
  assert(kernel.head === log.head().position, `replay reached ${kernel.head}, the log head is ${log.head().position}`);
  if (kernel.head > 0) log.setCommitted(kernel.head);
  return { kernel, sessions, lastHash, checkpointPosition: loaded.position, tenants };
}

interface LoadedCheckpoint {
  readonly kernel: Kernel;
  readonly sessions: SessionTable;
  readonly position: number;
  readonly lastHash: Checksum;
  readonly tenants: Map<number, string>;
}

/**
 * How the runtime's kernels hash checkpoints: the WebAssembly BLAKE3 (identical digests to the
 * kernel's portable default, several times faster; hashing was half of a checkpoint's CPU).
 */
export const KERNEL_OPTIONS: KernelOptions = Object.freeze({ checkpointHash: blake3 });

async function loadCheckpoint(dir: string, log: Log): Promise<LoadedCheckpoint> {
  const file = await readCheckpointFile(dir);
  const sessions = createSessionTable();
  if (file === undefined) return { kernel: Kernel.create(KERNEL_OPTIONS), sessions, position: 0, lastHash: CHECKSUM_ZERO, tenants: new Map() };
  const refuse = (why: string): never => {
    throw new VerityError('CheckpointMismatch', `checkpoint in ${dir} at position ${file.position} cannot be used: ${why}`, { dir, position: file.position });
  };
  if (file.position > log.head().position) refuse(`the log ends at ${log.head().position}: entries the checkpoint covers are missing from the log`);
  const restored = Kernel.restore(file.payload, KERNEL_OPTIONS);
  if (!restored.ok) return refuse(restored.reason);
  if (restored.kernel.head !== file.position) refuse(`its state is at position ${restored.kernel.head}`);
  if (file.position > 0) {
    const record = await log.read(position(file.position));
    if (record === undefined || !checksumEqual(record.hash, file.recordHash)) refuse('it was taken from a different log');
  }
  const tenants = file.tenants === undefined ? await tenantsFromLog(log, file) : new Map(file.tenants.map((t) => [t.id, t.name]));
  for (const id of tenants.keys()) if (!restored.kernel.hasTenant(tenantId(id))) refuse(`it lists tenant ${id}, which its state does not hold`);
  // Versions 1 and 2 predate sessions: no log they were taken from holds one, so the table is empty.
  if (file.sessions !== undefined && !sessions.restore(file.sessions)) refuse('its client session table does not decode or exceeds the session limit');
  return { kernel: restored.kernel, sessions, position: file.position, lastHash: checksum(file.recordHash), tenants };
}

/**
 * The tenant directory at a version 1 checkpoint (which has none): the tenant creates and drops
 * in the log up to it, with the kernel's rules (an id is created once, ever; a drop needs a live
 * tenant). Only the tenant entries are decoded; nothing is applied.
 */
async function tenantsFromLog(log: Log, file: CheckpointFile): Promise<Map<number, string>> {
  const tenants = new Map<number, string>();
  const everCreated = new Set<number>();
  for await (const record of log.scan(position(1), position(file.position))) {
    if (record.operation !== OPERATION.tenant_create && record.operation !== OPERATION.tenant_drop) continue;
    const decoded = decodeEnvelope(record.body);
    if (!decoded.ok) continue;
    const command = decoded.value.command;
    if (command.kind === 'tenant_create' && command.id === record.tenant && command.id !== 0 && !everCreated.has(command.id)) {
      everCreated.add(command.id);
      tenants.set(command.id, command.name);
    } else if (command.kind === 'tenant_drop' && command.id === record.tenant) {
      tenants.delete(command.id);
    }
  }
  return tenants;
}

export function trackTenants(tenants: Map<number, string>, result: ApplyResult, body: Uint8Array): void {
  const reply = result.reply;
  if (reply.kind === 'tenant_created') {
    const decoded = decodeEnvelope(body);
    assert(decoded.ok && decoded.value.command.kind === 'tenant_create', 'a created tenant came from a tenant_create');
    tenants.set(reply.tenant, decoded.value.command.name);
  } else if (reply.kind === 'tenant_dropped') {
    tenants.delete(reply.tenant);
  }
}
