import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFrom } from '@veritydb/types';
import { ConstraintViolation, Verity } from '../src/index.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

type Op =
  | { readonly kind: 'put'; readonly id: number; readonly v: string }
  | { readonly kind: 'delete'; readonly id: number }
  | { readonly kind: 'failingBatch'; readonly id: number }
  | { readonly kind: 'reopen'; readonly interval: number }
  | { readonly kind: 'checkpoint' };

const id = fc.integer({ min: 0, max: 7 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), id, v: fc.string({ maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), id }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('failingBatch' as const), id }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reopen' as const), interval: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'checkpoint' as const }) },
);

async function table(db: Verity): Promise<[number, string][]> {
  const r = await db.tenant(1).query('SELECT id, v FROM kv ORDER BY id');
  return r.rows.map((row) => [row['id'] as number, row['v'] as string]);
}

t.test('random writes, failed batches, checkpoints and reopens: the state is always every acknowledged write', async (t) => {
  let reopens = 0;
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
    const dir = await mkdtemp(join(tmpdir(), 'verity-restart-'));
    let db = await Verity.open(dir, { checkpointIntervalEntries: 3 });
    try {
      await db.createTenant({ id: 1, name: 'kv' });
      await db.tenant(1).execute('CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      const model = new Map<number, string>();
      const history: { position: number; rows: [number, string][] }[] = [];
      for (const o of ops) {
        const tn = db.tenant(1);
        switch (o.kind) {
          case 'put': {
            const w = await tn.execute('INSERT INTO kv (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v', [o.id, o.v]);
            model.set(o.id, o.v);
            history.push({ position: w.position, rows: [...model].sort((a, b) => a[0] - b[0]) });
            break;
          }
          case 'delete':
            await tn.execute('DELETE FROM kv WHERE id = ?', [o.id]);
            model.delete(o.id);
            break;
          case 'failingBatch': {
            const failed = await tn.batch([
              { sql: 'DELETE FROM kv WHERE id >= 0' },
              { sql: "INSERT INTO kv (id, v) VALUES (?, 'a'), (?, 'b')", params: [o.id, o.id] },
            ]).catch((e: unknown) => e);
            if (!(failed instanceof ConstraintViolation)) return false;
            break;
          }
          case 'reopen':
            await db.close();
            db = await Verity.open(dir, { checkpointIntervalEntries: o.interval });
            reopens++;
            break;
          case 'checkpoint':
            await db.checkpoint();
            break;
        }
        if (JSON.stringify(await table(db)) !== JSON.stringify([...model].sort((a, b) => a[0] - b[0]))) return false;
      }
      for (const h of history) {
        const past = await db.tenant(1).queryAt('SELECT id, v FROM kv ORDER BY id', h.position);
        if (JSON.stringify(past.rows.map((r) => [r['id'], r['v']])) !== JSON.stringify(h.rows)) return false;
      }
      const hash = db.stateHash();
      await db.close();
      await rm(join(dir, 'checkpoint'));
      db = await Verity.open(dir);
      return db.stateHash() === hash;
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  }), { seed, numRuns: 25 });
  t.ok(reopens > 0, `${reopens} reopens`);
});
