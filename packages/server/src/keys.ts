import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
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

/** Loads the admin key, creating it (and the admin token) on a fresh data dir. */
export async function ensureAdminKeys(dataDir: string, nowSeconds: number): Promise<AdminKeys> {
  const keyPath = join(dataDir, ADMIN_KEY_FILE);
  const existing = await readSecret(keyPath);
  if (existing !== null) return { secretKey: existing, publicKey: ed25519PublicKey(existing), createdTokenPath: null };
  await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  const { secretKey, publicKey } = ed25519Keygen();
  const token = createToken(secretKey, publicKey, {
    subject: 'admin', scopes: [{ kind: 'admin' }], issuedAtSeconds: nowSeconds,
    expiresAtSeconds: nowSeconds + tokenLimits.adminTokenLifetimeSeconds,
  });
  const tokenPath = join(dataDir, ADMIN_TOKEN_FILE);
  // The token first: a crash between the two leaves no key, so the next start makes both again.
  await writePrivate(tokenPath, `${token}\n`);
  await writePrivate(keyPath, `${Buffer.from(secretKey).toString('hex')}\n`);
  return { secretKey, publicKey, createdTokenPath: tokenPath };
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
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await chmod(temp, 0o600);
  await rename(temp, path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
