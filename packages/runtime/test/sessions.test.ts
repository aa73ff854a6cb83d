import { copyFile, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { encodeReply, type Envelope } from '@veritydb/kernel';
import { Log } from '@veritydb/storage';
import { clusterId, limits, position, Prng, seedFrom, tenantId } from '@veritydb/types';
import { CHECKPOINT_FILE, InvalidArgument, SingleNodeEngine, type SessionWriteOutcome } from '../src/index.js';
import { rewriteCheckpoint } from './checkpoint-bytes.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

async function tempDir(teardown: (fn: () => Promise<void>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vdb-sessions-'));
  teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const create = (id: number): Envelope => ({ tenant: tenantId(id), actor: 'tester', command: { kind: 'tenant_create', id: tenantId(id), name: `t${id}` } });
const sql = (id: number, text: string, params: readonly (bigint | string)[] = []): Envelope => ({
  tenant: tenantId(id), actor: 'tester', command: { kind: 'sql', statements: [{ sql: text, params }] },
});
const insert = (value: number): Envelope => sql(1, 'INSERT INTO t (id, note) VALUES ($1, $2) RETURNING id, note', [BigInt(value), `row ${value}`]);

/** A data dir with tenant 1 and table t(id, note). */
async function prepared(dir: string, options: { checkpointIntervalEntries?: number } = {}): Promise<SingleNodeEngine> {
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null, ...options });
  await engine.submit(create(1));
  await engine.submit(sql(1, 'CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT)'));
  return engine;
}

async function count(engine: SingleNodeEngine): Promise<bigint> {
  const read = engine.kernel.read(tenantId(1), 'SELECT count(*) FROM t', [], engine.head);
  if (!read.ok) throw new Error(read.error.message);
  return read.rows[0]?.[0] as bigint;
}

function ok(outcome: SessionWriteOutcome): Extract<SessionWriteOutcome, { kind: 'ok' }> {
  if (outcome.kind !== 'ok') throw new Error(`expected ok, got ${outcome.kind}`);
  return outcome;
}

/** Every session the engine holds for `clients`, as comparable values (reply bytes as hex). */
function table(engine: SingleNodeEngine, clients: readonly bigint[]): unknown[] {
  return clients.map((client) => {
    const s = engine.session(client);
    return s === null ? null : { session: s.session, request: s.request, op: s.op, reply: Buffer.from(s.reply).toString('hex') };
  });
}

t.test('register: logged once, identified by its position, repeated while unused', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  const [a, b] = await Promise.all([engine.register(7n), engine.register(7n)]);
  t.same(a, { kind: 'ok', session: 3 }, 'the session is the registration position');
  t.same(b, a, 'a registration retried while in flight gets the same answer');
  t.equal(engine.logHead, 3, 'logged once');
  t.same(await engine.register(7n), { kind: 'ok', session: 3 }, 'registered and unused: the registration again, not logged');
  t.equal(engine.logHead, 3);
  ok(await engine.submitInSession(7n, 1, insert(1)));
  t.same(await engine.register(7n), { kind: 'stale' }, 'a client id that has written registers no more');
  t.throws(() => engine.register(0n), InvalidArgument, 'client 0 marks writes outside sessions');
  t.throws(() => engine.submitInSession(7n, 0, insert(2)), InvalidArgument, 'request 0 is the registration');
  const cluster = clusterId(engine.clusterId);
  await engine.close();
  const log = await Log.open(dir, { cluster });
  t.teardown(() => log.close());
  t.match(await log.read(position(2)), { client: 0n, request: 0 }, 'a write outside sessions names no client');
  t.match(await log.read(position(3)), { client: 7n, request: 0, tenant: 0 }, 'a registration: the client, request 0, the system tenant');
  t.match(await log.read(position(4)), { client: 7n, request: 1, tenant: 1 }, 'a request of the session: its numbers');
});

t.test('requests: new applies once, the last is answered from the table, older and unknown are refused', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  t.teardown(() => engine.close());
  await engine.register(7n);
  t.same(await engine.submitInSession(8n, 1, insert(1)), { kind: 'evicted' }, 'an unknown session');
  const first = ok(await engine.submitInSession(7n, 1, insert(1)));
  t.equal(first.duplicate, false);
  t.equal(first.result.position, 4);
  t.match(first.result.reply, { kind: 'sql', statements: [{ rowsAffected: 1, rows: [[1n, 'row 1']] }] });
  const again = ok(await engine.submitInSession(7n, 1, insert(1)));
  t.equal(again.duplicate, true, 'a retry is a duplicate');
  t.equal(again.result.position, first.result.position, 'at the original position');
  t.same(again.result.reply, first.result.reply, 'with the original reply (RETURNING rows included)');
  t.equal(engine.logHead, 4, 'the retry is not logged');
  t.equal(await count(engine), 1n, 'applied once');

  const second = ok(await engine.submitInSession(7n, 2, insert(2)));
  t.equal(second.result.position, 5, 'a newer request applies');
  t.match(engine.session(7n), { session: 3, request: 2, op: 5 }, 'the table holds the newest request');
  t.same(Buffer.from(engine.session(7n)?.reply ?? []), Buffer.from(encodeReply(second.result.reply)), 'and its encoded reply');
  t.same(await engine.submitInSession(7n, 1, insert(1)), { kind: 'stale', lastRequest: 2 }, 'an older request is refused');
  t.same(await engine.submitInSession(7n, 9, insert(9)).then((o) => o.kind), 'ok', 'numbers may skip ahead');

  const rejected = ok(await engine.submitInSession(7n, 10, insert(1)));
  t.match(rejected.result.reply, { kind: 'rejected', error: { sqlState: '23505' } }, 'a rejection is a committed reply');
  const rejectedAgain = ok(await engine.submitInSession(7n, 10, insert(1)));
  t.same(rejectedAgain.result, { ...rejected.result, actor: '', events: [] }, 'and is cached like any other');
  t.same(await engine.submitInSession(7n, 11, sql(2, 'SELECT 1'), () => false), { kind: 'not_admitted' }, 'admit can refuse a new request');
  t.equal(engine.logHead, 7, 'without logging it');
});

t.test('one request per session in flight: the same request shares the answer, another is busy', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  t.teardown(() => engine.close());
  await engine.register(7n);
  const first = engine.submitInSession(7n, 1, insert(1));
  const retry = engine.submitInSession(7n, 1, insert(1));
  const other = engine.submitInSession(7n, 2, insert(2));
  t.same(await other, { kind: 'busy' });
  const [a, b] = await Promise.all([first, retry]);
  t.same(b, a, 'the retry waited for the first and got its answer');
  t.equal(engine.logHead, 4, 'logged once');
  t.equal(await count(engine), 1n);
});

t.test('the table is bounded: a registration evicts the session committed least recently', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  let open: SingleNodeEngine = engine;
  t.teardown(() => open.close());
  const clients = Array.from({ length: limits.clientSessionsMax }, (_, i) => BigInt(i + 1));
  for (let i = 0; i < clients.length; i += 512) await Promise.all(clients.slice(i, i + 512).map((c) => engine.register(c)));
  t.equal(engine.sessionCount, limits.clientSessionsMax, 'full');
  ok(await engine.submitInSession(1n, 1, insert(1)));  // client 1 committed last now; client 2 is the oldest
  t.same(await engine.register(100_000n), { kind: 'ok', session: engine.logHead }, 'one more registration');
  t.equal(engine.sessionCount, limits.clientSessionsMax, 'still at the bound');
  t.equal(engine.session(2n), null, 'the session whose last commit is oldest is gone');
  t.not(engine.session(1n), null, 'a session used since its registration stays');
  t.same(await engine.submitInSession(2n, 1, insert(2)), { kind: 'evicted' }, 'its requests are refused');

  // Admitted, then evicted before it applies: the registration logged before it wins, the write is a no-op.
  const third = engine.register(100_001n);                 // evicts client 3, the oldest now
  const write = engine.submitInSession(3n, 1, insert(3));   // admitted: client 3 is still in the table
  t.same(await third, { kind: 'ok', session: engine.logHead - 1 });
  t.same(await write, { kind: 'evicted' }, 'its session was evicted before it applied');
  t.equal(await count(engine), 1n, 'and it changed nothing');
  const before = { hash: engine.kernel.stateHash(), table: table(engine, [1n, 2n, 3n, 4n, 100_000n, 100_001n]), head: engine.head };
  await engine.close();

  await unlink(join(dir, CHECKPOINT_FILE)); // replay the whole log
  open = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.same({ hash: open.kernel.stateHash(), table: table(open, [1n, 2n, 3n, 4n, 100_000n, 100_001n]), head: open.head }, before,
    'replaying the log evicts the same sessions and skips the same write');
  t.equal(open.sessionCount, limits.clientSessionsMax);
});

t.test('restart: the cached reply survives close + reopen, a checkpoint + replay and a full replay byte for byte', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  let open: SingleNodeEngine = engine;
  t.teardown(() => open.close());
  const clients = [7n, 8n, 9n];
  for (const c of clients) await engine.register(c);
  const early = ok(await engine.submitInSession(7n, 1, insert(1)));
  await engine.checkpoint();
  await copyFile(join(dir, CHECKPOINT_FILE), join(dir, 'checkpoint.early'));
  const late = ok(await engine.submitInSession(8n, 1, insert(2)));
  const lateRejected = ok(await engine.submitInSession(9n, 1, insert(2)));
  const before = { hash: engine.kernel.stateHash(), table: table(engine, clients) };
  await engine.close();

  const reopenAndCheck = async (how: string): Promise<void> => {
    open = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
    t.same({ hash: open.kernel.stateHash(), table: table(open, clients) }, before, `${how}: the same state and session table (reply bytes included)`);
    for (const [client, original] of [[7n, early], [8n, late], [9n, lateRejected]] as const) {
      const retry = ok(await open.submitInSession(client, 1, insert(0)));
      t.same({ position: retry.result.position, reply: retry.result.reply }, { position: original.result.position, reply: original.result.reply },
        `${how}: a retry of client ${client}'s request gets the original reply`);
    }
    t.equal(await count(open), 2n, `${how}: nothing applied twice`);
    await open.close();
  };
  await reopenAndCheck('close + reopen (checkpoint at the head)');
  await copyFile(join(dir, 'checkpoint.early'), join(dir, CHECKPOINT_FILE));
  await reopenAndCheck('an earlier checkpoint + replay of the tail');
  await unlink(join(dir, CHECKPOINT_FILE));
  await reopenAndCheck('no checkpoint: replay of the whole log');
});

t.test('checkpoint versions: 2 (before sessions) is read with an empty table, an unknown one is refused by number', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  await engine.close();
  const current = await readFile(join(dir, CHECKPOINT_FILE));
  t.equal(new DataView(current.buffer, current.byteOffset).getUint32(4, true), 3, 'written as version 3');
  await writeFile(join(dir, CHECKPOINT_FILE), await rewriteCheckpoint(current, 2));
  const reopened = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.equal(reopened.head, 2);
  t.equal(reopened.sessionCount, 0);
  t.same(reopened.listTenants(), [{ id: 1, name: 't1' }]);
  await reopened.close();
  await writeFile(join(dir, CHECKPOINT_FILE), await rewriteCheckpoint(await readFile(join(dir, CHECKPOINT_FILE)), 4));
  await t.rejects(SingleNodeEngine.open({ dataDir: dir, clusterId: null }), {
    code: 'CorruptCheckpoint', message: /unknown format version 4 \(this build reads versions 1 to 3/,
  });
});

t.test('a session table in a checkpoint that does not decode is refused', async (t) => {
  const dir = await tempDir(t.teardown);
  const engine = await prepared(dir);
  await engine.register(7n);
  await engine.close();
  const file = await readFile(join(dir, CHECKPOINT_FILE));
  // The entry's reply length (after client u128, session u64, request u32, op u64) claims more than the table holds.
  const body = 88;
  const view = new DataView(file.buffer, file.byteOffset);
  const sessionsAt = body + 4 + view.getUint32(body, true);
  t.equal(view.getUint32(sessionsAt, true), 16 + 8 + 4 + 8 + 4, 'one session, no reply bytes');
  view.setUint32(sessionsAt + 4 + 36, 0xffff_ffff, true);
  await writeFile(join(dir, CHECKPOINT_FILE), await rewriteCheckpoint(file, 3));
  await t.rejects(SingleNodeEngine.open({ dataDir: dir, clusterId: null }), { code: 'CheckpointMismatch', message: /session table/ });
});

t.test(`randomized: retries, older requests and restarts never apply a request twice (SEED=${seed})`, async (t) => {
  const rng = new Prng(seed);
  const dir = await tempDir(t.teardown);
  let engine = await prepared(dir, { checkpointIntervalEntries: rng.range(1, 20) });
  t.teardown(() => engine.close());
  const clients = [11n, 12n, 13n];
  for (const c of clients) await engine.register(c);
  /** Per client: its last request number and the position and reply each request got. */
  const model = new Map(clients.map((c) => [c, { last: 0, replies: new Map<number, { position: number; reply: unknown }>() }]));
  let rows = 0;
  for (let step = 0; step < 150; step++) {
    const client = rng.pick(clients);
    const state = model.get(client)!;
    const roll = rng.int(10);
    if (roll === 0) {
      await engine.close();
      if (rng.chance(0.5)) await unlink(join(dir, CHECKPOINT_FILE));
      engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null, checkpointIntervalEntries: rng.range(1, 20) });
    } else if (roll <= 2 && state.last > 0) {
      const outcome = ok(await engine.submitInSession(client, state.last, insert(10_000 + step)));
      t.same({ position: outcome.result.position, reply: outcome.result.reply }, state.replies.get(state.last), `step ${step}: duplicate of ${client}/${state.last}`);
    } else if (roll === 3 && state.last > 1) {
      const older = rng.range(1, state.last - 1);
      t.same(await engine.submitInSession(client, older, insert(20_000 + step)), { kind: 'stale', lastRequest: state.last }, `step ${step}: older`);
    } else {
      const request = state.last + rng.range(1, 3);
      const outcome = ok(await engine.submitInSession(client, request, insert(step)));
      t.equal(outcome.duplicate, false, `step ${step}: ${client}/${request} is new`);
      state.last = request;
      state.replies.set(request, { position: outcome.result.position, reply: outcome.result.reply });
      rows += 1;
    }
  }
  t.equal(await count(engine), BigInt(rows), 'one row per new request, none per retry');
});
