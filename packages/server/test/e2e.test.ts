import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  Client, ConstraintViolationError, Connection, ForbiddenError, SqlError, TenantExistsError, TenantNotFoundError, UnauthorizedError,
  type WireValue,
} from '@veritydb/client';
import { ed25519Keygen, ed25519PublicKey } from '@veritydb/crypto';
import { createToken } from '../src/index.js';
import { adminToken, runServer, startServer, tempDir } from '../testing/process.js';

const int = (value: number | bigint): WireValue => ({ kind: 'int64', value: BigInt(value) });
const text = (value: string): WireValue => ({ kind: 'text', value });
const sql = (statement: string, params: WireValue[] = []): { sql: string; params: WireValue[] } => ({ sql: statement, params });
/** Rows as plain values (bigints as numbers where safe) for readable assertions. */
const plain = (rows: readonly (readonly WireValue[])[]): unknown[][] =>
  rows.map((row) => row.map((v) => v.kind === 'null' ? null : typeof v.value === 'bigint' ? Number(v.value) : v.value));

t.test('vdb-server end to end: auth, SQL, history, events, crash, restart, SIGTERM, HTTP', async (t) => {
  const dataDir = join(await tempDir(t.teardown), 'data');
  const server = await startServer(t.teardown, dataDir);
  const created = server.logs.find((l) => l['msg'] === 'admin token created');
  t.equal(created?.['path'], join(dataDir, 'admin.token'), 'the admin token path is logged');
  t.match(server.listen, /^127\.0\.0\.1:\d+$/);
  const token = await adminToken(dataDir);

  const admin = await Connection.open({ address: server.listen, token });
  t.teardown(() => admin.close());
  t.equal(admin.hello.primary?.address, server.listen, 'a single node is its own primary');

  await t.test('bad tokens are refused at the handshake', async (t) => {
    await t.rejects(Connection.open({ address: server.listen, token: 'not-a-token' }), UnauthorizedError);
    await t.rejects(Connection.open({ address: server.listen, token: `${token.slice(0, -4)}AAAA` }), UnauthorizedError);
    const other = ed25519Keygen();
    const foreign = createToken(other.secretKey, other.publicKey, { subject: 'eve', scopes: [{ kind: 'admin' }], issuedAtSeconds: 1, expiresAtSeconds: 4_000_000_000 });
    await t.rejects(Connection.open({ address: server.listen, token: foreign }), UnauthorizedError, 'signed by another key');
    const secret = new Uint8Array(Buffer.from((await readFile(join(dataDir, 'keys', 'admin.key'), 'utf8')).trim(), 'hex'));
    const expired = createToken(secret, ed25519PublicKey(secret), { subject: 'old', scopes: [{ kind: 'admin' }], issuedAtSeconds: 1, expiresAtSeconds: 2 });
    await t.rejects(Connection.open({ address: server.listen, token: expired }), { code: 'Unauthorized', message: /expired/ });
  });

  const viaClient = await Client.connect({ addresses: ['127.0.0.1:1', server.listen], token, connectTimeoutMs: 3000 });
  t.equal(viaClient.address, server.listen, 'Client skips the dead address and settles on the primary');
  t.same(await viaClient.listTenants(), []);
  await viaClient.close();

  const tenantPosition = await admin.createTenant(1, 'clinic');
  t.equal(tenantPosition, 1);
  await t.rejects(admin.createTenant(1, 'again'), TenantExistsError);
  const ddl = await admin.execute(1, [sql('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL, born DATE, meta JSON)')]);
  const first = await admin.execute(1, [sql('INSERT INTO p (id, name, born, meta) VALUES ($1, $2, $3, $4)', [int(1), text('Ann'), { kind: 'date', value: '1990-02-03' }, { kind: 'json', value: { a: [1, 2] } }])]);
  t.equal(first.position, ddl.position + 1);
  const second = await admin.execute(1, [
    sql("UPDATE p SET name = 'Anne' WHERE id = 1"),
    sql('INSERT INTO p (id, name) VALUES (2, $1) RETURNING id, name', [text('Bob')]),
  ]);
  t.same(plain(second.statements[1]?.rows ?? []), [[2, 'Bob']], 'RETURNING rows come back');
  t.equal(second.statements[0]?.rowsAffected, 1);

  await t.test('select, AS OF POSITION, reads at a position, __events', async (t) => {
    const now = await admin.query(1, sql('SELECT id, name, born, meta FROM p ORDER BY id'));
    t.same(plain(now.rows), [[1, 'Anne', '1990-02-03', { a: [1, 2] }], [2, 'Bob', null, null]]);
    t.equal(now.position, second.position);
    const before = await admin.query(1, sql(`SELECT id, name FROM p AS OF POSITION ${first.position} ORDER BY id`));
    t.same(plain(before.rows), [[1, 'Ann']], 'AS OF POSITION sees the state after that entry');
    const atPosition = await admin.query(1, sql('SELECT count(*) AS n FROM p'), { consistency: 'atPosition', position: first.position });
    t.same(plain(atPosition.rows), [[1]]);
    t.equal(atPosition.position, first.position);
    const events = await admin.query(1, sql("SELECT position, event_type, actor FROM __events WHERE stream = 'p' ORDER BY position, index"));
    t.same(plain(events.rows), [
      [ddl.position, 'ddl', 'admin'], [first.position, 'insert', 'admin'], [second.position, 'update', 'admin'], [second.position, 'insert', 'admin'],
    ]);
  });

  await t.test('every SQL type round-trips through parameters and results', async (t) => {
    await admin.execute(1, [sql('CREATE TABLE types (id BIGINT PRIMARY KEY, i INTEGER, d DOUBLE, s TEXT, b BOOLEAN, day DATE, ts TIMESTAMP, raw BYTES, doc JSON)')]);
    const values: WireValue[] = [
      int(2n ** 62n + 1n), int(-7), { kind: 'float64', value: 2.5 }, text('ünïcødé'), { kind: 'bool', value: true },
      { kind: 'date', value: '2024-02-29' }, { kind: 'timestamp', value: 1_700_000_000_123_456n }, { kind: 'bytes', value: new Uint8Array([0, 255, 7]) },
      { kind: 'json', value: { b: [1, null, 'x'], a: true } },
    ];
    await admin.execute(1, [sql('INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', values)]);
    const back = await admin.query(1, sql('SELECT id, i, d, s, b, day, ts, raw, doc FROM types WHERE id = $1', [int(2n ** 62n + 1n)]));
    t.same(back.columns.map((c) => c.type), ['BIGINT', 'INTEGER', 'DOUBLE', 'TEXT', 'BOOLEAN', 'DATE', 'TIMESTAMP', 'BYTES', 'JSON']);
    t.same(back.rows, [values], 'the same wire values come back, microseconds and 64-bit integers included');
    const nulls = await admin.execute(1, [sql('INSERT INTO types (id, i, d, s, b, day, ts, raw, doc) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8) RETURNING i, ts, doc',
      Array.from({ length: 8 }, () => ({ kind: 'null' }) as WireValue))]);
    t.same(nulls.statements[0]?.rows, [[{ kind: 'null' }, { kind: 'null' }, { kind: 'null' }]]);
    await admin.execute(1, [sql('DROP TABLE types')]);
  });

  await t.test('bad input gets precise typed errors and the connection keeps serving', async (t) => {
    const syntax = await admin.query(1, sql('SELEC * FROM p')).catch((e: unknown) => e);
    t.ok(syntax instanceof SqlError, 'syntax error');
    t.match(syntax, { code: 'SqlError', sqlState: '42601', line: 1 });
    await t.rejects(admin.query(1, sql('SELECT * FROM nope')), { code: 'SqlError', sqlState: '42P01' });
    await t.rejects(admin.execute(1, [sql('INSERT INTO p (id, name) VALUES ($1, $2)', [text('x'), text('y')])]), { code: 'SqlError' }, 'wrong type');
    const duplicate = await admin.execute(1, [sql("INSERT INTO p (id, name) VALUES (1, 'dup')")]).catch((e: unknown) => e);
    t.ok(duplicate instanceof ConstraintViolationError);
    t.match(duplicate, { constraint: 'p_pkey', message: /logged at position \d+/ });
    await t.rejects(admin.execute(1, [sql("INSERT INTO p (id) VALUES (9)")]), ConstraintViolationError, 'NOT NULL');
    await t.rejects(admin.query(42, sql('SELECT 1')), TenantNotFoundError);
    await t.rejects(admin.execute(42, [sql('CREATE TABLE x (id BIGINT PRIMARY KEY)')]), TenantNotFoundError);
    await t.rejects(admin.query(1, sql("INSERT INTO p (id, name) VALUES (5, 'r')")), { code: 'SqlError', sqlState: '25006' }, 'writes are refused on the read path');
    const big = text('x'.repeat(1024 * 1024 - 16));
    await t.rejects(admin.execute(1, Array.from({ length: 10 }, () => sql('INSERT INTO p (id, name) VALUES (100, $1)', [big]))),
      { code: 'SqlError', sqlState: '54000', message: /at most/ }, 'a request larger than a log entry');
    const batchFails = await admin.execute(1, [sql("INSERT INTO p (id, name) VALUES (3, 'C')"), sql('INSERT INTO nope VALUES (1)')]).catch((e: unknown) => e);
    t.match(batchFails, { code: 'SqlError', message: /^statement 2: / });
    const after = await admin.query(1, sql('SELECT id FROM p WHERE id = 3'));
    t.same(after.rows, [], 'a failed batch changes nothing');
    const long = await admin.query(1, sql(`SELECT * FROM t WHERE "${'é'.repeat(20_000)}" ==`)).catch((e: unknown) => e);
    t.match(long, { code: 'SqlError' }, 'an error quoting long input still encodes');
    t.equal((await admin.query(1, sql('SELECT count(*) AS n FROM p'))).rows.length, 1, 'still serving');
  });

  await t.test('a result larger than a frame target is streamed in several frames and reassembled', async (t) => {
    await admin.execute(1, [sql('CREATE TABLE big (id BIGINT PRIMARY KEY, blob TEXT)')]);
    const chunk = 'y'.repeat(200_000);
    await admin.execute(1, Array.from({ length: 30 }, (_, i) => sql('INSERT INTO big VALUES ($1, $2)', [int(i), text(chunk)])));
    const all = await admin.query(1, sql('SELECT id, blob FROM big ORDER BY id'));
    t.equal(all.rows.length, 30);
    t.ok(all.rows.every((row, i) => (row[0] as { value: bigint }).value === BigInt(i) && (row[1] as { value: string }).value === chunk));
    const limited = await admin.query(1, sql('SELECT id FROM big'), { rowsLimit: 7 });
    t.equal(limited.rows.length, 7, 'rowsLimit caps the rows');
    const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
    t.match(metrics, /^vdb_requests_total\{kind="query"\} \d+$/m);
  });

  await t.test('scopes: a read-only token reads, cannot write or administer', async (t) => {
    const readToken = await admin.createToken(['tenant:1:read'], BigInt(Date.now() + 3_600_000) * 1000n);
    const reader = await Connection.open({ address: server.listen, token: readToken });
    t.teardown(() => reader.close());
    t.equal((await reader.query(1, sql('SELECT id FROM p WHERE id = 1'))).rows.length, 1);
    await t.rejects(reader.execute(1, [sql("INSERT INTO p (id, name) VALUES (7, 'x')")]), ForbiddenError);
    await t.rejects(reader.query(2, sql('SELECT 1')), ForbiddenError, 'another tenant');
    await t.rejects(reader.createTenant(5, 'x'), ForbiddenError);
    await t.rejects(reader.createToken(['admin'], BigInt(Date.now() + 60_000) * 1000n), ForbiddenError);
    t.equal((await reader.status()).replicas.length, 1, 'status needs no scope');
  });

  await t.test('pipelined writes and reads on one connection', async (t) => {
    const writes = Array.from({ length: 200 }, (_, i) => admin.execute(1, [sql('INSERT INTO p (id, name) VALUES ($1, $2)', [int(1000 + i), text(`n${i}`)])]));
    const reads = Array.from({ length: 50 }, () => admin.query(1, sql('SELECT count(*) AS n FROM p')));
    const results = await Promise.all(writes);
    await Promise.all(reads);
    const positions = results.map((r) => r.position);
    t.equal(new Set(positions).size, 200, 'each write has its own position');
    const count = await admin.query(1, sql('SELECT count(*) AS n FROM p WHERE id >= 1000'));
    t.same(plain(count.rows), [[200]]);
  });

  await t.test('subscribe: past events, then new ones as they commit, until aborted', async (t) => {
    const abort = new AbortController();
    const seen: unknown[][] = [];
    const iterator = admin.subscribe(1, 'p', second.position, { signal: abort.signal });
    const consumed = (async () => {
      for await (const result of iterator) {
        t.same(result.columns.map((c) => c.name), ['position', 'index', 'stream', 'event_type', 'key', 'data', 'actor', 'timestamp', 'hash']);
        for (const row of plain(result.rows)) seen.push(row);
        if (seen.some((row) => row[3] === 'delete')) abort.abort();
      }
    })();
    const removed = await admin.execute(1, [sql('DELETE FROM p WHERE id = 2')]);
    await consumed;
    t.same(seen.filter((row) => (row[0] as number) <= second.position).map((row) => [row[0], row[3]]), [[second.position, 'update'], [second.position, 'insert']], 'history from `from`');
    t.same(seen.find((row) => row[3] === 'delete')?.slice(0, 5), [removed.position, 0, 'p', 'delete', [2]], 'the new event arrives');
    t.ok(seen.every((row) => (row[0] as number) >= second.position));
    await admin.execute(1, [sql("INSERT INTO p (id, name) VALUES (2, 'Bob')")]);
    const status = await admin.status();
    t.equal(status.replicas[0]?.applied, status.replicas[0]?.commit);
  });

  await t.test('HTTP sidecar: /health, /ready, /metrics', async (t) => {
    const health = await fetch(`http://${server.http}/health`);
    t.equal(health.status, 200);
    t.same(await health.json(), { status: 'ok' });
    const ready = await fetch(`http://${server.http}/ready`);
    t.equal(ready.status, 200);
    t.match(await ready.json(), { ready: true, role: 'primary' });
    const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
    t.match(metrics, /^vdb_requests_total\{kind="execute"\} \d+$/m);
    t.match(metrics, /^vdb_request_errors_total\{code="SqlError"\} \d+$/m);
    t.match(metrics, /^vdb_connections [1-9]\d*$/m);
    t.match(metrics, /^vdb_applied_position [1-9]\d*$/m);
    t.match(metrics, /^# TYPE vdb_durable_position gauge$/m);
    t.equal((await fetch(`http://${server.http}/nope`)).status, 404);
  });

  await t.test('SIGKILL with writes in flight, restart: every acknowledged write is there', async (t) => {
    const acknowledged: number[] = [];
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      const id = 5000 + i;
      inFlight.push(admin.execute(1, [sql('INSERT INTO p (id, name) VALUES ($1, $2)', [int(id), text('k')])])
        .then(() => acknowledged.push(id), () => undefined));
    }
    while (acknowledged.length < 50) await new Promise((resolve) => setTimeout(resolve, 1));
    server.child.kill('SIGKILL');
    await Promise.all(inFlight);
    t.equal((await server.exited).signal, 'SIGKILL');
    // Group commit may acknowledge the whole burst in one sync on a fast disk, so only the lower
    // bound is certain; what matters is that every acknowledged write survives the kill.
    t.ok(acknowledged.length >= 50, `${acknowledged.length} of 400 writes were acknowledged before the kill`);

    const restarted = await startServer(t.teardown, dataDir);
    t.notOk(restarted.logs.some((l) => l['msg'] === 'admin token created'), 'the keys are reused');
    const again = await Connection.open({ address: restarted.listen, token });
    const rows = await again.query(1, sql('SELECT id FROM p WHERE id >= 5000 ORDER BY id'));
    const present = new Set(plain(rows.rows).map((r) => r[0] as number));
    const lost = acknowledged.filter((id) => !present.has(id));
    t.same(lost, [], 'no acknowledged write is lost');
    t.same(plain((await again.query(1, sql('SELECT name FROM p WHERE id = 1'))).rows), [['Anne']]);
    const history = await again.query(1, sql(`SELECT name FROM p AS OF POSITION ${first.position} WHERE id = 1`));
    t.same(plain(history.rows), [['Ann']], 'history survives the restart');
    await again.close();

    restarted.child.kill('SIGTERM');
    const exit = await restarted.exited;
    t.equal(exit.code, 0, 'SIGTERM exits 0');
    t.ok(restarted.logs.some((l) => l['msg'] === 'stopped'), 'the stop is logged');
  });
});

t.test('vdb-server refuses bad configurations with a one-line reason', async (t) => {
  const dir = await tempDir(t.teardown);
  const cluster = await runServer(['--data-dir', dir, '--cluster-id', '7', '--replica-index', '0', '--peers', '127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603']);
  t.equal(cluster.code, 2);
  t.match(cluster.stderr, /^vdb-server: --peers: a cluster of 3 replicas needs --admin-key FILE/);
  const flag = await runServer(['--listen', 'nowhere']);
  t.equal(flag.code, 2);
  t.equal(flag.stderr, 'vdb-server: --listen: "nowhere" is not HOST:PORT (a port is required)\n');
  const help = await runServer(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: vdb-server/);
});

t.test('a data dir in use by a live server is refused; env configures the server', async (t) => {
  const dataDir = await tempDir(t.teardown);
  const server = await startServer(t.teardown, dataDir, [], { VDB_LOG_LEVEL: 'info' });
  const second = await runServer(['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  t.equal(second.code, 1);
  t.match(second.stderr, /is in use by process \d+/);
  server.child.kill('SIGTERM');
  t.equal((await server.exited).code, 0);

  const wrongCluster = await startServer(t.teardown, dataDir);
  await t.rejects(Connection.open({ address: wrongCluster.listen, token: await adminToken(dataDir), clusterId: 12345n as never }), ForbiddenError, 'a client naming another cluster');
  wrongCluster.child.kill('SIGTERM');
  t.equal((await wrongCluster.exited).code, 0);

  const viaEnv = await startServer(t.teardown, dataDir, [], { VDB_DATA_DIR: '/nonexistent-should-be-overridden' });
  t.ok(viaEnv.logs.some((l) => l['msg'] === 'log replayed' && l['dataDir'] === dataDir), 'the flag beats VDB_DATA_DIR');
  viaEnv.child.kill('SIGTERM');
  t.equal((await viaEnv.exited).code, 0);
});

t.test('SIGTERM with writes in flight: each is acknowledged or refused as Unavailable, never lost', async (t) => {
  const dataDir = await tempDir(t.teardown);
  const server = await startServer(t.teardown, dataDir);
  const token = await adminToken(dataDir);
  const connection = await Connection.open({ address: server.listen, token });
  await connection.createTenant(1, 'drain');
  await connection.execute(1, [sql('CREATE TABLE d (id BIGINT PRIMARY KEY)')]);
  const acknowledged: number[] = [];
  const outcomes = new Map<string, number>();
  const writes = Array.from({ length: 300 }, (_, i) => connection.execute(1, [sql('INSERT INTO d VALUES ($1)', [int(i)])]).then(
    () => { acknowledged.push(i); outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1); },
    (error: { code: string }) => { outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1); },
  ));
  while (acknowledged.length < 20) await new Promise((resolve) => setTimeout(resolve, 1));
  server.child.kill('SIGTERM');
  await Promise.all(writes);
  t.equal((await server.exited).code, 0, 'exit 0 after draining');
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  const allowed = new Set(['ok', 'Unavailable', 'Indeterminate']);
  t.ok([...outcomes.keys()].every((code) => allowed.has(code)), 'only acknowledged, Unavailable or (after the close) Indeterminate');
  const restarted = await startServer(t.teardown, dataDir);
  const again = await Connection.open({ address: restarted.listen, token });
  const rows = await again.query(1, sql('SELECT id FROM d'));
  const present = new Set(plain(rows.rows).map((r) => r[0] as number));
  t.same(acknowledged.filter((id) => !present.has(id)), [], 'every acknowledged write survived the stop');
  await again.close();
  restarted.child.kill('SIGTERM');
  t.equal((await restarted.exited).code, 0);
});
