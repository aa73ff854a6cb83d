import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ED25519_PUBLIC_KEY_BYTES } from '@veritydb/crypto';
import { ADMIN_KEY_FILE, claimsProblem, createToken, ensureAdminKeys, keyId, parseScope, type Scope, type TokenClaims } from '@veritydb/server';
import { VerityError } from '@veritydb/types';

/**
 * The cluster admin key as `vdb-admin` finds it for signing offline (tokens, export heads):
 * `--admin-key FILE` (the file `cluster init` writes and every replica's `admin_key` names),
 * else the data dir's own `<data-dir>/keys/admin.key` (what `vdb-server` creates at first
 * start). Both hold the 32-byte Ed25519 seed as hex, mode 0600.
 */
export interface AdminKey {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The file read. */
  readonly path: string;
}

/** The data dir's key, read through the server's own loader (never created here). */
export async function dataDirAdminKey(dataDir: string, nowSeconds: number): Promise<AdminKey> {
  const path = join(dataDir, ADMIN_KEY_FILE);
  if (!(await exists(path))) {
    throw new VerityError('NoAdminKey', `${path} does not exist: start vdb-server once on this data dir (it creates the admin key), or pass --admin-key FILE`);
  }
  const keys = await ensureAdminKeys(dataDir, nowSeconds);
  return { secretKey: keys.secretKey, publicKey: keys.publicKey, path };
}

/**
 * Reads an admin key file at any path (the cluster's shared key) through the server's loader,
 * which checks it exactly as `vdb-server --admin-key` does: owner-only mode, 64 hex digits.
 */
export async function adminKeyFile(path: string, nowSeconds: number): Promise<AdminKey> {
  if (!(await exists(path))) throw new VerityError('NoAdminKey', `${path} does not exist`);
  const keys = await ensureAdminKeys(dirname(path), nowSeconds, path);
  return { secretKey: keys.secretKey, publicKey: keys.publicKey, path };
}

/** `--admin-key FILE` if given, else the data dir's key. */
export async function findAdminKey(adminKeyPath: string | undefined, dataDir: string, nowSeconds: number): Promise<AdminKey> {
  return adminKeyPath === undefined ? dataDirAdminKey(dataDir, nowSeconds) : adminKeyFile(adminKeyPath, nowSeconds);
}

/**
 * A public key given on the command line: 64 hex digits, or a file holding them (e.g. the
 * `admin.pub` written by `cluster init`).
 */
export async function publicKeyArgument(text: string): Promise<Uint8Array> {
  const hex = /^[0-9a-fA-F]+$/.test(text) && text.length === ED25519_PUBLIC_KEY_BYTES * 2 ? text : (await readFile(text, 'utf8')).trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== ED25519_PUBLIC_KEY_BYTES * 2) {
    throw new VerityError('InvalidArgument', `--public-key: expected ${ED25519_PUBLIC_KEY_BYTES * 2} hex digits or a file holding them`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Parses `--scope` values; null names the first that is not a scope. */
export function parseScopes(texts: readonly string[]): { ok: true; scopes: Scope[] } | { ok: false; bad: string } {
  const scopes: Scope[] = [];
  for (const text of texts) {
    const scope = parseScope(text);
    if (scope === null) return { ok: false, bad: text };
    scopes.push(scope);
  }
  return { ok: true, scopes };
}

/** Signs a token offline with an admin key, as the server does for `admin.createToken`. */
export function signToken(key: AdminKey, subject: string, scopes: readonly Scope[], nowSeconds: number, expiresAtSeconds: number): string {
  const claims: TokenClaims = { subject, scopes, issuedAtSeconds: nowSeconds, expiresAtSeconds };
  const problem = claimsProblem(claims);
  if (problem !== null) throw new VerityError('InvalidArgument', `cannot sign this token: ${problem}`);
  return createToken(key.secretKey, key.publicKey, claims);
}

export { keyId };

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
