import { EXIT_OK, refuseFlags, UsageError, withDb, type Flags, type Io, type Target } from './command.js';
import { parseDurationSeconds } from './duration.js';
import { findAdminKey, parseScopes, signToken } from './keys.js';

/** A token lives this long unless `--expires-in` says otherwise. */
export const TOKEN_LIFETIME_DEFAULT = '30d';
const SUBJECT_DEFAULT = 'admin';

/**
 * `token create --scope S [--scope …] [--expires-in D] [--subject NAME]`: remotely the server
 * signs it (`admin.createToken`, for the caller's own subject); embedded, the data dir's admin
 * key (or `--admin-key FILE`) signs it here.
 */
export async function tokenCommand(target: Target, args: readonly string[], values: Flags, json: boolean, io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'create') throw new UsageError(`unknown token command '${sub ?? ''}' (expected: create)`);
  if (rest.length > 0) throw new UsageError(`token create takes no arguments, got '${rest.join(' ')}'`);
  const texts = values.scope ?? [];
  if (texts.length === 0) throw new UsageError('token create needs at least one --scope (admin, tenant:<id>:read, tenant:<id>:write)');
  const parsed = parseScopes(texts);
  if (!parsed.ok) throw new UsageError(`--scope '${parsed.bad}' is not admin, tenant:<id>:read or tenant:<id>:write`);
  const lifetime = values['expires-in'] ?? TOKEN_LIFETIME_DEFAULT;
  const lifetimeSeconds = parseDurationSeconds(lifetime);
  if (lifetimeSeconds === null) throw new UsageError(`--expires-in '${lifetime}' is not a duration (e.g. 90s, 15m, 12h, 30d, 2w)`);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const expiresAtSeconds = nowSeconds + lifetimeSeconds;
  let token: string;
  let subject: string;
  if (target.addresses !== null) {
    refuseFlags('token create (remote)', values, ['admin-key']);
    if (values.subject !== undefined) {
      throw new UsageError('--subject works in embedded mode only: a server signs remote tokens for the subject of the token that asks');
    }
    token = await withDb(target, (db) => db.createToken(texts, expiresAtSeconds));
    subject = subjectOf(token);
  } else {
    const key = await findAdminKey(values['admin-key'], target.dataDir, nowSeconds);
    subject = values.subject ?? SUBJECT_DEFAULT;
    token = signToken(key, subject, parsed.scopes, nowSeconds, expiresAtSeconds);
  }
  io.stdout(json
    ? `${JSON.stringify({ token, subject, scopes: texts, expiresAt: new Date(expiresAtSeconds * 1000).toISOString() })}\n`
    : `${token}\n`);
  return EXIT_OK;
}

/** The subject a token names (its payload is readable; only the server checks the signature). */
function subjectOf(token: string): string {
  const payload = token.split('.')[1];
  const parsed = payload === undefined ? null : JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
  return typeof parsed?.sub === 'string' ? parsed.sub : '';
}
