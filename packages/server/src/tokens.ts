import { ed25519KeyId, ed25519Sign, ed25519Verify } from '@veritydb/crypto';
import { assert } from '@veritydb/types';
import { wireLimits } from '@veritydb/wire';

/**
 * Bearer tokens (DESIGN §12), signed with the cluster's Ed25519 admin key:
 *
 *   vdb1.<base64url(payload JSON)>.<base64url(signature)>
 *
 * The signature covers the ASCII bytes of `vdb1.<payload part>`. The payload is a JSON object
 * with exactly these fields:
 *
 *   v       1
 *   kid     key id: the first 16 hex digits of SHA-256 over the raw public key
 *   sub     subject, recorded as the actor of every write (1..128 bytes)
 *   scopes  1..64 of: "admin", "tenant:<id>:read", "tenant:<id>:write"
 *   iat     issued at, seconds since the epoch
 *   exp     expires at, seconds since the epoch (> iat)
 *
 * A token is valid when it parses, its kid names the key, the signature verifies and
 * now < exp. Anything else — a wrong prefix, extra fields, a scope that does not parse — is
 * refused with a reason, never half-trusted.
 */
export const TOKEN_PREFIX = 'vdb1';

export const tokenLimits = Object.freeze({
  subjectBytesMax: 128,
  scopesMax: wireLimits.tokenScopesMax,
  scopeBytesMax: wireLimits.scopeBytesMax,
  tokenBytesMax: wireLimits.tokenBytesMax,
  /** The admin token written at first start lives this long. */
  adminTokenLifetimeSeconds: 10 * 365 * 24 * 3600,
});

export type Scope =
  | { readonly kind: 'admin' }
  | { readonly kind: 'tenant'; readonly tenant: number; readonly access: 'read' | 'write' };

export interface TokenClaims {
  readonly subject: string;
  readonly scopes: readonly Scope[];
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
}

export type TokenCheck = { readonly ok: true; readonly claims: TokenClaims } | { readonly ok: false; readonly reason: string };

const SCOPE = /^tenant:([1-9][0-9]{0,15}):(read|write)$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const PAYLOAD_KEYS = ['exp', 'iat', 'kid', 'scopes', 'sub', 'v'];

/** Parses one scope string ("admin", "tenant:7:read", "tenant:7:write"). */
export function parseScope(text: string): Scope | null {
  if (text === 'admin') return { kind: 'admin' };
  const match = SCOPE.exec(text);
  if (match === null) return null;
  const tenant = Number(match[1]);
  if (!Number.isSafeInteger(tenant)) return null;
  return { kind: 'tenant', tenant, access: match[2] as 'read' | 'write' };
}

export function formatScope(scope: Scope): string {
  return scope.kind === 'admin' ? 'admin' : `tenant:${scope.tenant}:${scope.access}`;
}

/** The key id of a public key: 16 hex digits of its SHA-256 (`ed25519KeyId`). */
export const keyId: (publicKey: Uint8Array) => string = ed25519KeyId;

/**
 * Signs a token.
 *
 * @example createToken(secretKey, publicKey, { subject: 'ann', scopes: [parseScope('tenant:1:write')!], issuedAtSeconds: now, expiresAtSeconds: now + 3600 })
 */
export function createToken(secretKey: Uint8Array, publicKey: Uint8Array, claims: TokenClaims): string {
  const problem = claimsProblem(claims);
  assert(problem === null, `token claims: ${problem}`);
  const payload = {
    v: 1, kid: keyId(publicKey), sub: claims.subject, scopes: claims.scopes.map(formatScope),
    iat: claims.issuedAtSeconds, exp: claims.expiresAtSeconds,
  };
  const signed = `${TOKEN_PREFIX}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = ed25519Sign(secretKey, Buffer.from(signed, 'ascii'));
  const token = `${signed}.${Buffer.from(signature).toString('base64url')}`;
  assert(token.length <= tokenLimits.tokenBytesMax, 'a token fits the wire limit');
  return token;
}

/** Why claims cannot be signed, or null. */
export function claimsProblem(claims: TokenClaims): string | null {
  const subjectBytes = Buffer.byteLength(claims.subject);
  if (subjectBytes < 1 || subjectBytes > tokenLimits.subjectBytesMax) return `subject must be 1..${tokenLimits.subjectBytesMax} bytes`;
  if (claims.scopes.length < 1 || claims.scopes.length > tokenLimits.scopesMax) return `a token carries 1..${tokenLimits.scopesMax} scopes`;
  if (!Number.isSafeInteger(claims.issuedAtSeconds) || !Number.isSafeInteger(claims.expiresAtSeconds)) return 'times must be whole seconds';
  if (claims.expiresAtSeconds <= claims.issuedAtSeconds) return 'the token must expire after it is issued';
  return null;
}

/** Checks a token's form, key, signature and expiry at `nowSeconds`. */
export function verifyToken(token: string, publicKey: Uint8Array, nowSeconds: number): TokenCheck {
  if (token.length > tokenLimits.tokenBytesMax) return { ok: false, reason: 'token too long' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) return { ok: false, reason: `not a VerityDB token (expected ${TOKEN_PREFIX}.<payload>.<signature>)` };
  const [, payloadPart, signaturePart] = parts as [string, string, string];
  if (!BASE64URL.test(payloadPart) || !BASE64URL.test(signaturePart)) return { ok: false, reason: 'token parts are not base64url' };
  const signature = Buffer.from(signaturePart, 'base64url');
  if (!ed25519Verify(publicKey, Buffer.from(`${TOKEN_PREFIX}.${payloadPart}`, 'ascii'), signature)) {
    return { ok: false, reason: 'bad token signature' };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'token payload is not JSON' };
  }
  const claims = claimsOf(payload, publicKey);
  if (typeof claims === 'string') return { ok: false, reason: claims };
  if (nowSeconds >= claims.expiresAtSeconds) {
    return { ok: false, reason: `token expired at ${new Date(claims.expiresAtSeconds * 1000).toISOString()}` };
  }
  return { ok: true, claims };
}

function claimsOf(payload: unknown, publicKey: Uint8Array): TokenClaims | string {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return 'token payload is not an object';
  const record = payload as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  if (keys.length !== PAYLOAD_KEYS.length || keys.some((k, i) => k !== PAYLOAD_KEYS[i])) return `token payload must have exactly ${PAYLOAD_KEYS.join(', ')}`;
  if (record['v'] !== 1) return 'unknown token version';
  if (record['kid'] !== keyId(publicKey)) return 'token signed by another key';
  const subject = record['sub'];
  const scopesRaw = record['scopes'];
  const iat = record['iat'];
  const exp = record['exp'];
  if (typeof subject !== 'string' || typeof iat !== 'number' || typeof exp !== 'number' || !Array.isArray(scopesRaw)) return 'token fields have the wrong types';
  const scopes: Scope[] = [];
  for (const text of scopesRaw) {
    const scope = typeof text === 'string' ? parseScope(text) : null;
    if (scope === null) return `token scope ${JSON.stringify(text)} is not admin, tenant:<id>:read or tenant:<id>:write`;
    scopes.push(scope);
  }
  const claims: TokenClaims = { subject, scopes, issuedAtSeconds: iat, expiresAtSeconds: exp };
  return claimsProblem(claims) ?? claims;
}

/** What a request needs. */
export type Access = { readonly kind: 'admin' } | { readonly kind: 'tenant'; readonly tenant: number; readonly access: 'read' | 'write' };

/**
 * Whether `scopes` allow `access`: `admin` allows everything; `tenant:<id>:write` allows
 * reading and writing that tenant (a writer sees RETURNING rows anyway); `tenant:<id>:read`
 * allows reads only.
 */
export function allows(scopes: readonly Scope[], access: Access): boolean {
  for (const scope of scopes) {
    if (scope.kind === 'admin') return true;
    if (access.kind === 'tenant' && scope.tenant === access.tenant && (scope.access === 'write' || access.access === 'read')) return true;
  }
  return false;
}
