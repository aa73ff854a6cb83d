import t from 'tap';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity } from 'veritydb';
import { startServer, type RunningServer } from 'veritydb/testing/vdb-server';
import { ensureAdminKeys, verifyToken } from '@veritydb/server';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../src/index.js';
import { parseDurationSeconds } from '../src/duration.js';
import { run } from './run.js';

const root = await mkdtemp(join(tmpdir(), 'vdb-admin-token-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

t.test('durations', async (t) => {
  t.equal(parseDurationSeconds('90s'), 90);
  t.equal(parseDurationSeconds('15m'), 900);
  t.equal(parseDurationSeconds('1d12h'), 129_600);
  t.equal(parseDurationSeconds('2w'), 1_209_600);
  for (const bad of ['', '10', 'h', '1.5h', '-1d', '0s', '1y', '99999999999999999w']) t.equal(parseDurationSeconds(bad), null, bad);
});

t.test('embedded: signed with the data dir\'s admin key, scopes, expiry and subject as asked', async (t) => {
  const dir = join(root, 'data');
  const keys = await ensureAdminKeys(dir, nowSeconds());
  const r = await run(['token', 'create', '--scope', 'tenant:7:read', '--scope', 'tenant:8:write', '--expires-in', '2h', '--subject', 'auditor', '--data-dir', dir, '--json']);
  t.equal(r.code, EXIT_OK, r.err);
  const printed = JSON.parse(r.out) as { token: string; subject: string; scopes: string[]; expiresAt: string };
  const check = verifyToken(printed.token, keys.publicKey, nowSeconds());
  t.ok(check.ok, 'the server accepts it');
  if (check.ok) {
    t.equal(check.claims.subject, 'auditor');
    t.same(check.claims.scopes, [{ kind: 'tenant', tenant: 7, access: 'read' }, { kind: 'tenant', tenant: 8, access: 'write' }]);
    t.ok(Math.abs(check.claims.expiresAtSeconds - (nowSeconds() + 7200)) <= 5, 'expires in two hours');
  }
  t.equal(printed.subject, 'auditor');
  const plain = await run(['token', 'create', '--scope', 'admin', '--data-dir', dir]);
  t.equal(plain.code, EXIT_OK, plain.err);
  t.match(plain.out, /^vdb1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/, 'plain output is the token alone');
  const plainCheck = verifyToken(plain.out.trim(), keys.publicKey, nowSeconds());
  t.ok(plainCheck.ok && plainCheck.claims.expiresAtSeconds - nowSeconds() > 29 * 86_400, 'default lifetime 30 days');
});

t.test('embedded with --admin-key FILE; key files are checked like the server checks them', async (t) => {
  const source = join(root, 'source');
  const keys = await ensureAdminKeys(source, nowSeconds());
  const file = join(root, 'admin.key');
  await writeFile(file, `${Buffer.from(keys.secretKey).toString('hex')}\n`, { mode: 0o600 });
  let r = await run(['token', 'create', '--scope', 'admin', '--admin-key', file, '--data-dir', join(root, 'unused')]);
  t.equal(r.code, EXIT_OK, r.err);
  t.ok(verifyToken(r.out.trim(), keys.publicKey, nowSeconds()).ok);
  await chmod(file, 0o644);
  r = await run(['token', 'create', '--scope', 'admin', '--admin-key', file]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /^vdb-admin: InsecureKey: .*admin\.key is readable by group or others \(mode 644\); chmod 600 it\n$/);
  await writeFile(file, 'not a key\n', { mode: 0o600 });
  await chmod(file, 0o600);
  r = await run(['token', 'create', '--scope', 'admin', '--admin-key', file]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /CorruptKey: .* does not hold a 32-byte hex key/);
  r = await run(['token', 'create', '--scope', 'admin', '--data-dir', join(root, 'no-such-dir')]);
  t.equal(r.code, EXIT_FAILED);
  t.match(r.err, /NoAdminKey: .*does not exist: start vdb-server once on this data dir/);
});

t.test('usage errors exit 2', async (t) => {
  const dir = join(root, 'data');
  for (const [argv, message] of [
    [['token', 'create', '--data-dir', dir], /needs at least one --scope/],
    [['token', 'create', '--scope', 'tenant:0:read', '--data-dir', dir], /--scope 'tenant:0:read' is not admin/],
    [['token', 'create', '--scope', 'tenant:1:admin', '--data-dir', dir], /is not admin, tenant:<id>:read or tenant:<id>:write/],
    [['token', 'create', '--scope', 'admin', '--expires-in', 'soon', '--data-dir', dir], /--expires-in 'soon' is not a duration/],
    [['token', 'revoke', '--scope', 'admin'], /unknown token command 'revoke'/],
    [['token', 'create', 'extra', '--scope', 'admin'], /takes no arguments/],
    [['token', 'create', '--scope', 'admin', '--addresses', '127.0.0.1:1', '--token', 'x', '--subject', 'me'], /--subject works in embedded mode only/],
  ] as [string[], RegExp][]) {
    const r = await run(argv);
    t.equal(r.code, EXIT_USAGE, argv.join(' '));
    t.match(r.err, message);
  }
});

t.test('remote: the server signs through admin.createToken, and the token works', async (t) => {
  let server: RunningServer | undefined;
  t.teardown(async () => { await server?.stop(); });
  server = await startServer();
  const remote = ['--addresses', server.address, '--token', server.token];
  let r = await run(['tenant', 'create', '--id', '3', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  r = await run(['token', 'create', '--scope', 'tenant:3:read', '--expires-in', '1h', '--json', ...remote]);
  t.equal(r.code, EXIT_OK, r.err);
  const created = JSON.parse(r.out) as { token: string; subject: string };
  t.equal(created.subject, 'admin', 'a remote token carries the asking token\'s subject');
  const reader = await Verity.connect({ addresses: [server.address], token: created.token });
  try {
    t.same((await reader.tenant(3).query('SHOW TABLES')).rows, [], 'the token reads its tenant');
    await t.rejects(reader.tenant(3).execute('CREATE TABLE x (id BIGINT PRIMARY KEY)'), { code: 'Forbidden' }, 'but cannot write it');
  } finally {
    await reader.close();
  }
  r = await run(['token', 'create', '--scope', 'admin', '--addresses', server.address, '--token', created.token]);
  t.equal(r.code, EXIT_FAILED, 'a tenant reader cannot mint tokens');
  t.match(r.err, /^vdb-admin: Forbidden: [^\n]*needs scope admin[^\n]*\n$/);
  r = await run(['token', 'create', '--scope', 'admin', '--addresses', server.address], { env: { VDB_TOKEN: server.token } });
  t.equal(r.code, EXIT_OK, `VDB_TOKEN is read: ${r.err}`);
});
