import { writeSync } from 'node:fs';
import { Verity } from '../src/index.js';

/**
 * A writer process for the crash test: opens `argv[2]`, then inserts rows with several writes
 * in flight, printing `ack <id>` (synchronously, so a SIGKILL cannot lose the line) only after
 * a write is acknowledged. The parent kills it mid-load and checks every acknowledged row.
 */
const dir = process.argv[2];
const concurrency = Number(process.argv[3] ?? '8');
const firstId = Number(process.argv[4] ?? '0');
if (dir === undefined) throw new Error('usage: load-child DIR [CONCURRENCY] [FIRST_ID]');

const db = await Verity.open(dir, { checkpointIntervalEntries: 32 });
await db.createTenant({ id: 1, name: 'load' }).catch((error: { code?: string }) => {
  if (error.code !== 'TenantExists') throw error;
});
const t = db.tenant(1);
await t.execute('CREATE TABLE IF NOT EXISTS r (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)');
writeSync(1, 'ready\n');
let next = firstId;
async function worker(): Promise<void> {
  for (;;) {
    const id = next++;
    await t.execute('INSERT INTO r (id, payload) VALUES ($1, $2)', [id, `row-${id}`.padEnd(40, '.')]);
    writeSync(1, `ack ${id}\n`);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
