import { open, rename, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { blake3 } from '@veritydb/crypto';
import { syncDirectory } from '@veritydb/storage';
import { checksumEqual, VerityError } from '@veritydb/types';

/**
 * The engine's checkpoint on disk: one file, replaced atomically (write a temporary
 * file, fsync it, rename it over the old one, fsync the directory), so a crash leaves either
 * the old checkpoint or the new one, never a mix.
 *
 *   magic "VDBC" u32 | version u32 | position u64 | body length u64 |
 *   hash of the log record at `position` [32] | checksum [32] | body
 *
 *   body (version 2) = tenants length u32 | tenants | kernel checkpoint
 *   tenants = count u32, then per live tenant: id u64 | name length u32 | name (UTF-8)
 *   body (version 1) = kernel checkpoint (no tenant directory: the reader rebuilds it)
 *
 *   checksum = BLAKE3(header bytes [0, 56) ‖ BLAKE3(body)): it covers every field.
 *
 * The record hash ties the checkpoint to the log it was taken from: on open, a checkpoint
 * whose position's record has another hash belongs to another history and is refused.
 * A checkpoint that fails its checksum or has an unknown version stops the engine (fail
 * closed, DESIGN §12): it is never silently skipped, since the log before it may be gone.
 */
export const CHECKPOINT_FILE = 'checkpoint';
const CHECKPOINT_TEMP = 'checkpoint.tmp';
const MAGIC = 0x56444243;
const VERSION = 2;
const VERSION_WITHOUT_TENANTS = 1;
const HEADER_BYTES = 4 + 4 + 8 + 8 + 32 + 32;

/** A live tenant's id and name, as `listTenants` reports them. */
export interface TenantName {
  readonly id: number;
  readonly name: string;
}

export interface CheckpointFile {
  readonly position: number;
  /** Hash of the log record at `position` (all zero at position 0). */
  readonly recordHash: Uint8Array;
  /** The live tenants at `position`, by id; undefined in a version 1 file, which has none. */
  readonly tenants: readonly TenantName[] | undefined;
  /** The kernel's checkpoint. */
  readonly payload: Uint8Array;
}

export async function writeCheckpointFile(dir: string, checkpoint: CheckpointFile & { readonly tenants: readonly TenantName[] }): Promise<void> {
  const tenants = encodeTenants(checkpoint.tenants);
  const body = new Uint8Array(4 + tenants.length + checkpoint.payload.length);
  new DataView(body.buffer).setUint32(0, tenants.length, true);
  body.set(tenants, 4);
  body.set(checkpoint.payload, 4 + tenants.length);
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setBigUint64(8, BigInt(checkpoint.position), true);
  view.setBigUint64(16, BigInt(body.length), true);
  header.set(checkpoint.recordHash, 24);
  header.set(headerChecksum(header, body), 56);
  const temp = join(dir, CHECKPOINT_TEMP);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writev([header, body]);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, join(dir, CHECKPOINT_FILE));
  await syncDirectory(dir);
}

export async function readCheckpointFile(dir: string): Promise<CheckpointFile | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(join(dir, CHECKPOINT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const corrupt = (why: string): never => {
    throw new VerityError('CorruptCheckpoint', `checkpoint ${join(dir, CHECKPOINT_FILE)} is unusable: ${why}`);
  };
  if (bytes.length < HEADER_BYTES) corrupt('shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) corrupt('bad magic');
  const version = view.getUint32(4, true);
  if (version !== VERSION && version !== VERSION_WITHOUT_TENANTS) corrupt(`unknown version ${version}`);
  const position = Number(view.getBigUint64(8, true));
  const length = Number(view.getBigUint64(16, true));
  if (!Number.isSafeInteger(position) || length !== bytes.length - HEADER_BYTES) corrupt('length mismatch');
  const body = bytes.subarray(HEADER_BYTES);
  if (!checksumEqual(headerChecksum(bytes, body), bytes.subarray(56, 88))) corrupt('checksum mismatch');
  const recordHash = bytes.slice(24, 56);
  if (version === VERSION_WITHOUT_TENANTS) return { position, recordHash, tenants: undefined, payload: body };
  const tenantsBytes = body.length < 4 ? -1 : new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
  if (tenantsBytes < 0 || 4 + tenantsBytes > body.length) corrupt('tenant directory length mismatch');
  const tenants = decodeTenants(body.subarray(4, 4 + tenantsBytes));
  if (tenants === undefined) return corrupt('malformed tenant directory');
  return { position, recordHash, tenants, payload: body.subarray(4 + tenantsBytes) };
}

function encodeTenants(tenants: readonly TenantName[]): Uint8Array {
  const names = tenants.map((tenant) => new TextEncoder().encode(tenant.name));
  const bytes = new Uint8Array(4 + names.reduce((sum, name) => sum + 12 + name.length, 0));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, tenants.length, true);
  let offset = 4;
  tenants.forEach((tenant, i) => {
    const name = names[i] as Uint8Array;
    view.setBigUint64(offset, BigInt(tenant.id), true);
    view.setUint32(offset + 8, name.length, true);
    bytes.set(name, offset + 12);
    offset += 12 + name.length;
  });
  return bytes;
}

/** Undefined when the bytes are not a well-formed directory (ids ascending, lengths in range). */
function decodeTenants(bytes: Uint8Array): TenantName[] | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const tenants: TenantName[] = [];
  let offset = 4;
  for (let i = 0; i < count; i++) {
    if (offset + 12 > bytes.length) return undefined;
    const id = Number(view.getBigUint64(offset, true));
    const nameBytes = view.getUint32(offset + 8, true);
    if (!Number.isSafeInteger(id) || offset + 12 + nameBytes > bytes.length) return undefined;
    if (tenants.length > 0 && (tenants[tenants.length - 1] as TenantName).id >= id) return undefined;
    tenants.push({ id, name: new TextDecoder().decode(bytes.subarray(offset + 12, offset + 12 + nameBytes)) });
    offset += 12 + nameBytes;
  }
  return offset === bytes.length ? tenants : undefined;
}

function headerChecksum(header: Uint8Array, payload: Uint8Array): Uint8Array {
  const input = new Uint8Array(56 + 32);
  input.set(header.subarray(0, 56));
  input.set(blake3(payload), 56);
  return blake3(input);
}

/** Removes a temporary file a crash left behind mid-write. */
export async function removeStaleCheckpointTemp(dir: string): Promise<void> {
  await unlink(join(dir, CHECKPOINT_TEMP)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

