import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ED25519_SECRET_KEY_BYTES, ed25519Keygen, ed25519PublicKey } from '@veritydb/crypto';
import { VerityError } from '@veritydb/types';
import { createToken, tokenLimits } from './tokens.js';

/**
 * The admin key pair of a data dir (DESIGN §11): `<data-dir>/keys/admin.key` holds the raw
 * 32-byte Ed25519 secret seed as hex (mode 0600, in a 0700 directory). On the first start of a
 * data dir without it, a key pair is created and an admin token is written to
 * `<data-dir>/admin.token` (mode 0600).
 */
export interface AdminKeys {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The admin token written at this start, if the keys were just created. */
  readonly createdTokenPath: string | null;
}

export const ADMIN_KEY_FILE = join('keys', 'admin.key');
export const ADMIN_TOKEN_FILE = 'admin.token';

/**
 * Loads the admin key, creating it (and the admin token) if it does not exist. The key is
 * `keyFile` when given (a cluster's shared key, its token beside it as `admin.token`), else
 * `<data-dir>/keys/admin.key` with the token at `<data-dir>/admin.token`. Several replicas may
 * start at once on one shared key directory: the key is published with an atomic link, a replica
 * that loses the race uses the winner's key (and re-signs the token with it).
 */
export async function ensureAdminKeys(dataDir: string, nowSeconds: number, keyFile: string | null = null): Promise<AdminKeys> {
  const keyPath = keyFile ?? join(dataDir, ADMIN_KEY_FILE);
  const tokenPath = keyFile === null ? join(dataDir, ADMIN_TOKEN_FILE) : join(dirname(keyFile), ADMIN_TOKEN_FILE);
  const existing = await readSecret(keyPath);
  if (existing !== null) return { secretKey: existing, publicKey: ed25519PublicKey(existing), createdTokenPath: null };
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  const generated = ed25519Keygen();
  // The token first: a crash before the key is published leaves no key, so the next start makes both again.
  await writePrivate(tokenPath, `${adminToken(generated.secretKey, nowSeconds)}\n`);
  const temp = `${keyPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writePrivate(temp, `${Buffer.from(generated.secretKey).toString('hex')}\n`);
  try {
    await link(temp, keyPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await syncDir(dirname(keyPath));
  const published = await readSecret(keyPath);
  if (published === null) throw new VerityError('KeyVanished', `${keyPath} disappeared while it was being created`);
  if (Buffer.compare(Buffer.from(published), Buffer.from(generated.secretKey)) !== 0) {
    // Another process published its key first: the token must be signed by that one.
    await writePrivate(tokenPath, `${adminToken(published, nowSeconds)}\n`);
  }
  return { secretKey: published, publicKey: ed25519PublicKey(published), createdTokenPath: tokenPath };
}

function adminToken(secretKey: Uint8Array, nowSeconds: number): string {
  return createToken(secretKey, ed25519PublicKey(secretKey), {
    subject: 'admin', scopes: [{ kind: 'admin' }], issuedAtSeconds: nowSeconds,
    expiresAtSeconds: nowSeconds + tokenLimits.adminTokenLifetimeSeconds,
  });
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function readSecret(path: string): Promise<Uint8Array | null> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if ((mode & 0o077) !== 0) {
    throw new VerityError('InsecureKey', `${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const text = (await readFile(path, 'utf8')).trim();
  if (!/^[0-9a-f]+$/.test(text) || text.length !== ED25519_SECRET_KEY_BYTES * 2) {
    throw new VerityError('CorruptKey', `${path} does not hold a ${ED25519_SECRET_KEY_BYTES}-byte hex key`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Writes a file only its owner can read, durably (temp file, fsync, rename, fsync dir). */
async function writePrivate(path: string, content: string): Promise<void> {
  // A unique name: replicas sharing a key directory may write at the same moment.
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await chmod(temp, 0o600);
  await rename(temp, path);
  await syncDir(dirname(path));
}
