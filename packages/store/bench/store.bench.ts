/**
 * Micro-benchmark of the store alone, one JSON line per measurement:
 *   node packages/store/dist/bench/store.bench.js [rows]
 * Rows are [bigint id, text name, number score] with a non-unique index on score; writes go in
 * batches of BATCH_ROWS, one commit (one position) each, as the applier would.
 */
import { position, tenantId, type Row } from '@veritydb/types';
import btree from 'sorted-btree';
import { Store } from '../src/index.js';

const ROWS = Number(process.argv[2] ?? 200_000);
const BATCH_ROWS = 64;
const TENANT = tenantId(1);

function report(name: string, operations: number, milliseconds: number, extra: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({
    bench: `store.${name}`, operations, cpuMs: Math.round(milliseconds), perSecond: Math.round(operations / (milliseconds / 1000)), ...extra,
  }));
}

/** CPU milliseconds (user + system) of `body`: on a shared, loaded machine wall time mostly
 * measures the neighbours. */
function timed(body: () => void): number {
  const start = process.cpuUsage();
  body();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

// Calibration on this machine right now (TOOLCHAIN.md measured ~800k/s when idle): a bare
// sorted-btree with number keys, so store numbers can be read as a ratio under load.
{
  const keys = Array.from({ length: ROWS }, (_, i) => (i * 7919) % ROWS);
  const tree = new (btree.default)<number, number>();
  report('calibration.bareBtreeSet', ROWS, timed(() => {
    for (const key of keys) tree.set(key, key);
  }));
}

const store = new Store();
store.createTenant(TENANT);
let at = 0;
const setup = store.begin(TENANT, position(++at));
setup.createTable('people', { primaryKey: [0], columnCount: 3 });
setup.createIndex('people', 'by_score', { columns: [2], unique: false });
setup.commit();

const row = (i: number, generation: number): Row => [BigInt((i * 7919) % ROWS), `name ${i}`, (i * 31 + generation) % 1000];

report('insert', ROWS, timed(() => {
  for (let i = 0; i < ROWS; i += BATCH_ROWS) {
    const batch = store.begin(TENANT, position(++at));
    for (let j = i; j < Math.min(i + BATCH_ROWS, ROWS); j++) batch.insert('people', row(j, 0));
    batch.commit();
  }
}), { batchRows: BATCH_ROWS });

report('update', ROWS, timed(() => {
  for (let i = 0; i < ROWS; i += BATCH_ROWS) {
    const batch = store.begin(TENANT, position(++at));
    for (let j = i; j < Math.min(i + BATCH_ROWS, ROWS); j++) {
      const next = row(j, 1);
      batch.update('people', [next[0] ?? null], next);
    }
    batch.commit();
  }
}), { batchRows: BATCH_ROWS, versionsPerRow: 2 });

const latest = store.latest(TENANT);
let found = 0;
report('get', ROWS, timed(() => {
  for (let i = 0; i < ROWS; i++) if (latest.get('people', [BigInt(i)]) !== undefined) found += 1;
}), { found });

const old = store.snapshotAt(TENANT, position(Math.floor(ROWS / BATCH_ROWS)));
report('getAsOf', ROWS, timed(() => {
  for (let i = 0; i < ROWS; i++) old.get('people', [BigInt(i)]);
}));

let scanned = 0;
report('scan', ROWS, timed(() => {
  for (const _row of latest.scan('people')) scanned += 1;
}), { scanned });

let indexed = 0;
report('indexRange', ROWS, timed(() => {
  for (let score = 0; score < 1000; score += 10) {
    for (const _row of latest.indexScan('people', 'by_score', { range: { lower: { key: [score], inclusive: true }, upper: { key: [score], inclusive: true } } })) indexed += 1;
  }
}), { indexed });

let hash: Uint8Array = new Uint8Array(0);
report('stateHash', 2 * ROWS, timed(() => {
  hash = store.stateHash();
}), { unit: 'versions', digestBytes: hash.length });

let bytes: Uint8Array = new Uint8Array(0);
report('checkpoint', 2 * ROWS, timed(() => {
  bytes = store.checkpoint();
}), { unit: 'versions', bytes: bytes.length });

let restoredOk = false;
report('restore', 2 * ROWS, timed(() => {
  restoredOk = Store.restore(bytes).ok;
}), { unit: 'versions', ok: restoredOk });
