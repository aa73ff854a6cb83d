import t from 'tap';
import fc from 'fast-check';
import { checksumHex, position, Prng, seedFrom, tenantId, type Row, type TableWriter } from '@veritydb/types';
import { Store, type WriteBatch } from '../src/index.js';
import {
  applyBatch, applyStatement, compareWithModel, History, sameRows, TENANTS, type Batch, type Intent, type ModelState,
  type Statement,
} from '../testing/model.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
t.comment(`SEED=${seed}`);

const intentArbitrary: fc.Arbitrary<Intent> = fc.record({
  kind: fc.nat(99), pick: fc.nat(), values: fc.array(fc.nat(1000), { minLength: 6, maxLength: 6 }), flag: fc.boolean(),
});
const historyArbitrary = fc.record({
  batches: fc.array(fc.record({
    tenant: fc.nat(), abort: fc.nat(9).map((n) => n === 0), intents: fc.array(intentArbitrary, { minLength: 1, maxLength: 12, size: 'medium' }),
  }), { minLength: 1, maxLength: 80, size: 'medium' }),
  noiseSeed: fc.nat(),
});

function newStore(): Store {
  const store = new Store();
  for (const tenant of TENANTS) store.createTenant(tenantId(tenant));
  return store;
}

const TEMP_A_ROW: Row = [99, 'temp', 1, null];

/** Writes that cancel out within the batch: a row inserted and deleted, a table created and
 * dropped. */
function cancellingWrites(writer: TableWriter, before: ModelState): void {
  if (before.has('a')) {
    writer.insert('a', TEMP_A_ROW);
    writer.update('a', [99, 'temp'], [99, 'temp', 2, 'temp-unique']);
    writer.delete('a', [99, 'temp']);
  }
  writer.createTable('zz_tmp', { primaryKey: [0], columnCount: 2 });
  writer.insert('zz_tmp', [1, 'gone']);
  writer.createIndex('zz_tmp', 'zz_by_value', { columns: [1], unique: true });
  writer.dropTable('zz_tmp');
}

/** The same statement, reached through extra writes that leave no trace. */
function roundabout(writer: WriteBatch, statement: Statement, rng: Prng): void {
  switch (statement.kind) {
    case 'insert':
      applyStatement(writer, statement);
      if (rng.chance(0.5)) {
        const key = statement.table === 'a' ? [statement.row[0], statement.row[1]] : [statement.row[1]];
        writer.update(statement.table, key as Row, statement.row);
      }
      return;
    case 'update':
    case 'delete': {
      const current = writer.get(statement.table, statement.key);
      if (current !== undefined && rng.chance(0.5)) writer.update(statement.table, statement.key, current);
      return applyStatement(writer, statement);
    }
    case 'createIndex':
      if (rng.chance(0.5)) {
        applyStatement(writer, statement);
        writer.dropIndex(statement.table, statement.index);
      }
      return applyStatement(writer, statement);
    default:
      return applyStatement(writer, statement);
  }
}

function applyNoisy(store: Store, batch: Batch, before: ModelState, rng: Prng): void {
  const at = position(batch.position);
  const tenant = tenantId(batch.tenant);
  if (rng.chance(0.5)) {
    // A batch that fails and is rolled back, after doing everything and more.
    const doomed = store.begin(tenant, at);
    for (const statement of batch.statements) applyStatement(doomed, statement);
    if (doomed.hasTable('b')) doomed.dropTable('b');
    if (doomed.hasTable('a')) doomed.insert('a', [98, 'doomed', 0, 'doomed-unique']);
    doomed.abort();
  }
  const writer = store.begin(tenant, at);
  if (rng.chance(0.5)) cancellingWrites(writer, before);
  if (batch.abort) {
    // Store A rolls this batch back; committing nothing at all is the same history.
    writer.abort();
    const empty = store.begin(tenant, at);
    if (rng.chance(0.5)) cancellingWrites(empty, before);
    empty.commit();
    return;
  }
  for (const statement of batch.statements) roundabout(writer, statement, rng);
  writer.commit();
}

t.test('semantically identical batchings give the same state hash', async (t) => {
  fc.assert(fc.property(historyArbitrary, ({ batches, noiseSeed }) => {
    const history = new History(batches);
    const plain = newStore();
    const noisy = newStore();
    const rng = new Prng(noiseSeed);
    for (const batch of history.batches) {
      applyBatch(plain, batch);
      applyNoisy(noisy, batch, history.stateAt(batch.tenant, batch.position - 1), rng);
    }
    noisy.checkInvariants();
    if (checksumHex(plain.stateHash()) !== checksumHex(noisy.stateHash())) throw new Error('hashes differ');
    const at = rng.int(history.lastPosition + 1);
    for (const tenant of TENANTS) {
      compareWithModel(noisy.snapshotAt(tenantId(tenant), position(at)), history.stateAt(tenant, at), rng, `noisy ${tenant} at ${at}`);
    }
  }), { seed, numRuns: 60 });
  t.pass('noise leaves no trace in the hash');
});

t.test('one changed value changes the state hash', async (t) => {
  let tried = 0;
  fc.assert(fc.property(historyArbitrary, ({ batches, noiseSeed }) => {
    const history = new History(batches);
    // An insert into `a` whose row is still there when its batch commits.
    const candidates: [number, number][] = [];
    history.batches.forEach((batch, b) => {
      if (batch.abort) return;
      const after = history.stateAt(batch.tenant, batch.position).get('a')?.rows ?? [];
      batch.statements.forEach((statement, s) => {
        // The batch's last write to `a`: an earlier one can be overwritten within the batch, and a
        // batch commits only its final versions (SEED=312792991 changed a row deleted and re-inserted later in its batch).
        const lastWrite = !batch.statements.slice(s + 1).some((later) => 'table' in later && later.table === 'a');
        if (statement.kind === 'insert' && statement.table === 'a' && lastWrite && after.some((row) => sameRows([row], [statement.row]))) {
          candidates.push([b, s]);
        }
      });
    });
    if (candidates.length === 0) return;
    tried += 1;
    const [b, s] = new Prng(noiseSeed).pick(candidates);
    const changed = history.batches.map((batch, i) => (i !== b ? batch : {
      ...batch,
      statements: batch.statements.map((statement, j) => (j !== s || statement.kind !== 'insert' ? statement
        : { ...statement, row: [statement.row[0], statement.row[1], 12345.5, statement.row[3]] as Row })),
    }));
    const original = newStore();
    const altered = newStore();
    for (const batch of history.batches) applyBatch(original, batch);
    for (const batch of changed) applyBatch(altered, batch as Batch);
    if (checksumHex(original.stateHash()) === checksumHex(altered.stateHash())) throw new Error('hash ignores a changed value');
  }), { seed, numRuns: 60 });
  t.ok(tried > 0, `${tried} histories with a value changed`);
});

function storeWith(rows: readonly Row[], order: (rows: Row[]) => Row[]): Store {
  const store = new Store();
  store.createTenant(tenantId(7));
  const batch = store.begin(tenantId(7), position(1));
  batch.createTable('t', { primaryKey: [0], columnCount: 2 });
  batch.createIndex('t', 'by_value', { columns: [1], unique: false });
  for (const row of order([...rows])) batch.insert('t', row);
  batch.commit();
  return store;
}

t.test('the hash depends on contents, not on insertion order or tree shape', async (t) => {
  const rows: Row[] = Array.from({ length: 2000 }, (_, i) => [i, `v${i % 37}`]);
  const rng = new Prng(seed);
  const sorted = storeWith(rows, (r) => r);
  const reversed = storeWith(rows, (r) => r.reverse());
  const shuffled = storeWith(rows, (r) => rng.shuffle(r));
  t.equal(checksumHex(sorted.stateHash()), checksumHex(reversed.stateHash()));
  t.equal(checksumHex(sorted.stateHash()), checksumHex(shuffled.stateHash()));
  t.equal(sorted.stateHash().length, 32, 'a 32-byte BLAKE3 digest');
});

t.test('values that compare equal but differ are told apart by the hash', async (t) => {
  const pairs: [Row, Row][] = [
    [[1, 1n], [1, 1]],
    [[1, 0], [1, -0]],
    [[1, Number.NaN], [1, null]],
    [[1, 'a'], [1, new Uint8Array([0x61])]],
    [[1, { a: 1 }], [1, '{"a":1}']],
    [[1, 2n ** 64n], [1, 2n ** 64n + 1n]],
    [[1, '\ud800'], [1, '\ufffd']],
  ];
  for (const [a, b] of pairs) {
    const one = storeWith([a], (r) => r);
    const other = storeWith([b], (r) => r);
    t.not(checksumHex(one.stateHash()), checksumHex(other.stateHash()), `distinct: ${String(a[1])} / ${String(b[1])}`);
  }
  const withJson = storeWith([[1, { b: [1, 2], a: null }]], (r) => r);
  const reordered = storeWith([[1, { a: null, b: [1, 2] }]], (r) => r);
  t.equal(checksumHex(withJson.stateHash()), checksumHex(reordered.stateHash()), 'JSON key order does not matter');
});

t.test('history is part of the hash: the same final rows reached at different positions differ', async (t) => {
  const direct = storeWith([[1, 'x']], (r) => r);
  const later = storeWith([], (r) => r);
  const batch = later.begin(tenantId(7), position(2));
  batch.insert('t', [1, 'x']);
  batch.commit();
  direct.advance(position(2));
  t.same([...direct.latest(tenantId(7)).scan('t')], [...later.latest(tenantId(7)).scan('t')], 'same rows now');
  t.not(checksumHex(direct.stateHash()), checksumHex(later.stateHash()), 'different history');
});
