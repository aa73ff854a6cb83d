import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import type { Envelope } from '@veritydb/kernel';
import { Log } from '@veritydb/storage';
import { clusterId, position, Prng, seedFrom, tenantId } from '@veritydb/types';
import { CHECKPOINT_FILE, CLUSTER_ID_FILE, SingleNodeEngine } from '../src/index.js';

/**
 * `SingleNodeEngine.backupCut`: the files it names, copied while the engine keeps writing
 * (periodic checkpoints replacing the checkpoint file, segments rolling and growing), form a
 * data dir whose log opens with nothing to recover and whose engine opens at exactly the cut's
 * position and state hash.
 */
const seed = seedFrom(process.env, () => Math.floor(Math.random() * 2 ** 31));
t.comment(`SEED=${seed}`);

async function tempDir(teardown: (fn: () => Promise<void>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vdb-backup-cut-'));
  teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const create = (id: number): Envelope => ({ tenant: tenantId(id), actor: 'tester', command: { kind: 'tenant_create', id: tenantId(id), name: `t${id}` } });
const sql = (id: number, text: string, params: readonly (bigint | string)[] = []): Envelope => ({
  tenant: tenantId(id), actor: 'tester', command: { kind: 'sql', statements: [{ sql: text, params }] },
});

t.test('a cut copied while the engine writes opens at its position and state hash, with no torn tail', async (t) => {
  const prng = new Prng(seed);
  const dir = await tempDir(t.teardown);
  const copies = await tempDir(t.teardown);
  // Small segments so the log spans many and rolls during the copy; frequent checkpoints so the
  // checkpoint file is replaced during the copy.
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null, segmentBytes: 16 * 1024, checkpointIntervalEntries: 5 });
  t.teardown(() => engine.close());
  await engine.submit(create(1));
  await engine.submit(sql(1, 'CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT)'));
  let next = 0;
  const write = (): Promise<unknown> => engine.submit(sql(1, 'INSERT INTO t VALUES ($1, $2)', [BigInt(next++), 'x'.repeat(prng.range(10, 3000))]));
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < prng.range(20, 80); i++) await write();
    const cut = await engine.backupCut();
    const expected = { position: cut.position, stateHash: Buffer.from(cut.stateHash).toString('hex') };
    t.equal(cut.position, engine.head, `round ${round}: the cut is at the applied head when taken`);
    const copy = join(copies, `round-${round}`);
    let writesDuring = 0;
    try {
      for (const file of cut.files) {
        const parts: Uint8Array[] = [];
        for await (const chunk of file.chunks(prng.range(1, 8) * 4096)) {
          parts.push(chunk);
          // Keep writing (concurrently, some in flight while the next chunk is read).
          const burst = prng.range(0, 3);
          for (let i = 0; i < burst; i++) void write();
          writesDuring += burst;
          if (prng.chance(0.5)) await write();
        }
        const bytes = Buffer.concat(parts);
        t.equal(bytes.length, file.bytes, `${file.path}: the bytes the cut names`);
        await mkdir(dirname(join(copy, file.path)), { recursive: true });
        await writeFile(join(copy, file.path), bytes);
        await chmod(join(copy, file.path), file.mode);
      }
    } finally {
      await cut.release();
    }
    await engine.submit(sql(1, 'SELECT 1'));
    t.ok(writesDuring > 0 && engine.head > cut.position, `round ${round}: ${writesDuring} writes during the copy, head ${engine.head} > cut ${cut.position}`);

    const paths = cut.files.map((f) => f.path);
    t.ok(paths.includes(CHECKPOINT_FILE) && paths.includes(CLUSTER_ID_FILE), 'the checkpoint and the cluster id are in the cut');
    t.notOk(paths.some((p) => /(^|\/)LOCK$|\.tmp/.test(p)), 'no lock or temp file is');
    const segments = paths.filter((p) => p.endsWith('.segment'));
    t.ok(segments.length >= 2, `the log spans ${segments.length} segments`);
    t.same(paths, [...paths].sort(), 'sorted by path');
    t.equal((await stat(join(copy, 'log', '00000000.segment'))).mode & 0o777, (await stat(join(dir, 'log', '00000000.segment'))).mode & 0o777, 'modes are kept');

    const log = await Log.open(copy, { cluster: clusterId(engine.clusterId) });
    t.same(log.recovery, { truncated: undefined, indexSlotsRebuilt: 0, indexRepairs: [], indexHeadersRebuilt: [], faulty: [] }, 'the copied log has nothing to recover');
    t.equal(log.head().position, cut.position, 'and ends at the cut');
    await log.close();
    const opened = await SingleNodeEngine.open({ dataDir: copy, clusterId: null });
    t.same({ position: opened.head, stateHash: Buffer.from(opened.kernel.stateHash()).toString('hex') }, expected, 'the copy opens at the cut\'s position and state hash');
    const rows = opened.kernel.read(tenantId(1), 'SELECT count(*) FROM t', [], position(opened.head));
    t.match(rows, { ok: true }, 'and reads');
    await opened.close();
  }
  const checkpoint = await readFile(join(dir, CHECKPOINT_FILE));
  t.ok(checkpoint.length > 0, 'the source dir still has its checkpoint');
});

t.test('a cut of an empty engine is a data dir at position 0', async (t) => {
  const dir = await tempDir(t.teardown);
  const copy = await tempDir(t.teardown);
  const engine = await SingleNodeEngine.open({ dataDir: dir, clusterId: null });
  t.teardown(() => engine.close());
  const cut = await engine.backupCut();
  for (const file of cut.files) {
    const parts: Uint8Array[] = [];
    for await (const chunk of file.chunks(1024)) parts.push(chunk);
    await mkdir(dirname(join(copy, file.path)), { recursive: true });
    await writeFile(join(copy, file.path), Buffer.concat(parts));
  }
  await cut.release();
  await cut.release();
  t.equal(cut.position, 0);
  t.ok(cut.files.some((f) => f.path === 'log/00000000.segment' && f.bytes === 0), 'the first segment, empty');
  const opened = await SingleNodeEngine.open({ dataDir: copy, clusterId: null });
  t.equal(opened.head, 0);
  t.same(opened.kernel.stateHash(), cut.stateHash, 'the same (empty) state');
  await opened.close();
});
