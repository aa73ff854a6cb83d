import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ed25519Keygen } from '@veritydb/crypto';
import { Prng, seedFrom } from '@veritydb/types';
import {
  ADMIN_KEY_FILE, ADMIN_TOKEN_FILE, allows, createToken, ensureAdminKeys, keyId, parseScope, verifyToken, type Scope,
} from '../src/index.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000_007);
t.comment(`SEED=${seed}`);

const NOW = 1_800_000_000;
const keys = ed25519Keygen();
const scopes = (...texts: string[]): Scope[] => texts.map((text) => {
  const scope = parseScope(text);
  if (scope === null) throw new Error(`bad scope ${text}`);
  return scope;
});
const mint = (texts: string[], exp = NOW + 60, secret = keys.secretKey, pub = keys.publicKey): string =>
  createToken(secret, pub, { subject: 'ann', scopes: scopes(...texts), issuedAtSeconds: NOW - 10, expiresAtSeconds: exp });

t.test('a signed token verifies and carries its claims', async (t) => {
  const token = mint(['admin', 'tenant:7:read']);
  t.match(token, /^vdb1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const check = verifyToken(token, keys.publicKey, NOW);
  t.same(check, { ok: true, claims: { subject: 'ann', scopes: scopes('admin', 'tenant:7:read'), issuedAtSeconds: NOW - 10, expiresAtSeconds: NOW + 60 } });
  const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
  t.same(Object.keys(payload).sort(), ['exp', 'iat', 'kid', 'scopes', 'sub', 'v']);
  t.equal(payload.kid, keyId(keys.publicKey));
});

t.test('expiry: valid until exp, refused from exp on', async (t) => {
  const token = mint(['admin'], NOW + 60);
  t.equal(verifyToken(token, keys.publicKey, NOW + 59).ok, true);
  t.match(verifyToken(token, keys.publicKey, NOW + 60), { ok: false, reason: /^token expired at / });
});

t.test('another key, a changed payload or signature, and malformed tokens are refused', async (t) => {
  const token = mint(['tenant:1:write']);
  const other = ed25519Keygen();
  t.match(verifyToken(token, other.publicKey, NOW), { ok: false, reason: 'bad token signature' });
  t.match(verifyToken(mint(['admin'], NOW + 60, other.secretKey, other.publicKey), keys.publicKey, NOW), { ok: false, reason: 'bad token signature' });
  const [prefix, payload, signature] = token.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scopes: ['admin'] })).toString('base64url');
  t.match(verifyToken(`${prefix}.${forged}.${signature}`, keys.publicKey, NOW), { ok: false, reason: 'bad token signature' });
  for (const bad of ['', 'abc', 'vdb1.x', 'vdb2.a.b', `${prefix}.${payload}`, `${prefix}.${payload}.${signature}.x`, `${prefix}.${payload}.!!`]) {
    t.equal(verifyToken(bad, keys.publicKey, NOW).ok, false, JSON.stringify(bad));
  }
  t.match(verifyToken('x'.repeat(5000), keys.publicKey, NOW), { ok: false, reason: 'token too long' });
});

t.test('random mutations of a token never verify (seeded)', async (t) => {
  const rng = new Prng(seed);
  const token = mint(['tenant:3:read']);
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    const chars = [...token];
    const at = rng.int(chars.length);
    const replacement = rng.pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.']);
    if (chars[at] === replacement) continue;
    chars[at] = replacement;
    const mutated = chars.join('');
    const check = verifyToken(mutated, keys.publicKey, NOW);
    // base64url has slack bits in its last character: a change there may decode to the same bytes.
    const sameBytes = mutated.split('.').length === 3 && mutated.split('.').every((part, k) => k === 0 ? part === 'vdb1'
      : Buffer.from(part, 'base64url').equals(Buffer.from(token.split('.')[k] as string, 'base64url')));
    if (!sameBytes) {
      t.equal(check.ok, false, `mutation ${i} at ${at}`);
      refused++;
    }
  }
  t.ok(refused > 200, `${refused} mutations refused`);
});

t.test('scopes: parsing and what each allows', async (t) => {
  for (const bad of ['', 'Admin', 'tenant:0:read', 'tenant:01:read', 'tenant:1:admin', 'tenant:x:read', 'tenant:1:read:x', 'tenant:99999999999999999:read']) {
    t.equal(parseScope(bad), null, JSON.stringify(bad));
  }
  const read = scopes('tenant:1:read');
  const write = scopes('tenant:1:write');
  const admin = scopes('admin');
  t.equal(allows(read, { kind: 'tenant', tenant: 1, access: 'read' }), true);
  t.equal(allows(read, { kind: 'tenant', tenant: 1, access: 'write' }), false, 'read does not allow write');
  t.equal(allows(read, { kind: 'tenant', tenant: 2, access: 'read' }), false, 'another tenant');
  t.equal(allows(write, { kind: 'tenant', tenant: 1, access: 'read' }), true, 'write allows read');
  t.equal(allows(write, { kind: 'admin' }), false);
  t.equal(allows(admin, { kind: 'tenant', tenant: 99, access: 'write' }), true);
  t.equal(allows(admin, { kind: 'admin' }), true);
});

t.test('first start creates a 0600 key and a 0600 admin token; later starts reuse the key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vdb-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await ensureAdminKeys(dir, NOW);
  t.equal(first.createdTokenPath, join(dir, ADMIN_TOKEN_FILE));
  t.equal((await stat(join(dir, ADMIN_KEY_FILE))).mode & 0o777, 0o600);
  t.equal((await stat(join(dir, ADMIN_TOKEN_FILE))).mode & 0o777, 0o600);
  t.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700);
  const token = (await readFile(join(dir, ADMIN_TOKEN_FILE), 'utf8')).trim();
  t.match(verifyToken(token, first.publicKey, NOW + 1), { ok: true, claims: { subject: 'admin', scopes: [{ kind: 'admin' }] } });
  const second = await ensureAdminKeys(dir, NOW);
  t.equal(second.createdTokenPath, null);
  t.same(second.publicKey, first.publicKey);
  await chmod(join(dir, ADMIN_KEY_FILE), 0o644);
  await t.rejects(ensureAdminKeys(dir, NOW), { code: 'InsecureKey' });
  await writeFile(join(dir, ADMIN_KEY_FILE), 'zz\n', { mode: 0o600 });
  await chmod(join(dir, ADMIN_KEY_FILE), 0o600);
  await t.rejects(ensureAdminKeys(dir, NOW), { code: 'CorruptKey' });
});
