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
 *   body (version 3) = tenants length u32 | tenants | sessions length u32 | sessions | kernel checkpoint
 *   tenants = count u32, then per live tenant: id u64 | name length u32 | name (UTF-8)
 *   sessions = the client session table (`SessionTable.encode`: per session, by client id,
 *              client u128 | session u64 | request u32 | op u64 | reply length u32 | reply)
 *   body (version 2) = tenants length u32 | tenants | kernel checkpoint (written before the
 *              single-node engine had sessions: its log holds none, the table is empty)
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
const VERSION = 3;
const VERSION_WITHOUT_SESSIONS = 2;
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
  /** The client session table (`SessionTable.encode`); undefined in a version 1 or 2 file, which predate sessions. */
  readonly sessions: Uint8Array | undefined;
  /** The kernel's checkpoint. */
  readonly payload: Uint8Array;
}

type CheckpointToWrite = CheckpointFile & { readonly tenants: readonly TenantName[]; readonly sessions: Uint8Array };

export async function writeCheckpointFile(dir: string, checkpoint: CheckpointToWrite): Promise<void> {
  const tenants = encodeTenants(checkpoint.tenants);
  const sessions = checkpoint.sessions;
  const body = new Uint8Array(4 + tenants.length + 4 + sessions.length + checkpoint.payload.length);
  const bodyView = new DataView(body.buffer);
  bodyView.setUint32(0, tenants.length, true);
  body.set(tenants, 4);
  bodyView.setUint32(4 + tenants.length, sessions.length, true);
  body.set(sessions, 8 + tenants.length);
  body.set(checkpoint.payload, 8 + tenants.length + sessions.length);
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
  if (version !== VERSION && version !== VERSION_WITHOUT_SESSIONS && version !== VERSION_WITHOUT_TENANTS) {
    corrupt(`unknown format version ${version} (this build reads versions ${VERSION_WITHOUT_TENANTS} to ${VERSION}; a newer build wrote it?)`);
  }
  const position = Number(view.getBigUint64(8, true));
  const length = Number(view.getBigUint64(16, true));
  if (!Number.isSafeInteger(position) || length !== bytes.length - HEADER_BYTES) corrupt('length mismatch');
  const body = bytes.subarray(HEADER_BYTES);
  if (!checksumEqual(headerChecksum(bytes, body), bytes.subarray(56, 88))) corrupt('checksum mismatch');
  const recordHash = bytes.slice(24, 56);
  if (version === VERSION_WITHOUT_TENANTS) return { position, recordHash, tenants: undefined, sessions: undefined, payload: body };
  const tenantsSection = section(body, 0);
  if (tenantsSection === undefined) return corrupt('tenant directory length mismatch');
  const tenants = decodeTenants(tenantsSection);
  if (tenants === undefined) return corrupt('malformed tenant directory');
  const afterTenants = 4 + tenantsSection.length;
  if (version === VERSION_WITHOUT_SESSIONS) return { position, recordHash, tenants, sessions: undefined, payload: body.subarray(afterTenants) };
  const sessions = section(body, afterTenants);
  if (sessions === undefined) return corrupt('session table length mismatch');
  return { position, recordHash, tenants, sessions, payload: body.subarray(afterTenants + 4 + sessions.length) };
}

/** The bytes of a `length u32 | bytes` section at `offset`; undefined when it runs past the body. */
function section(body: Uint8Array, offset: number): Uint8Array | undefined {
  if (offset + 4 > body.length) return undefined;
  const length = new DataView(body.buffer, body.byteOffset + offset, 4).getUint32(0, true);
  if (offset + 4 + length > body.length) return undefined;
  return body.subarray(offset + 4, offset + 4 + length);
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

