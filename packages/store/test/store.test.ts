import t from 'tap';
import { blake3 } from '@noble/hashes/blake3.js';
import fc from 'fast-check';
import { AssertionError, checksumHex, position, Prng, seedFrom, tenantId, type Row, type ScanOptions } from '@veritydb/types';
import { Store } from '../src/index.js';

const T1 = tenantId(1);
const T2 = tenantId(2);

function storeWithTenants(...ids: number[]): Store {
  const store = new Store();
  for (const id of ids) store.createTenant(tenantId(id));
  return store;
}

function batch(store: Store, tenant: number, at: number, body: (w: ReturnType<Store['begin']>) => void): void {
  const writer = store.begin(tenantId(tenant), position(at));
  body(writer);
  writer.commit();
}

const VISITS = { primaryKey: [0, 1], columnCount: 3 };

t.test('composite keys, prefix bounds and reverse scans', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('visits', VISITS);
    for (const patient of [1, 2, 3]) for (const day of ['2024-01-01', '2024-02-01']) w.insert('visits', [patient, day, `${patient}@${day}`]);
  });
  const r = store.latest(T1);
  const notes = (rows: Iterable<Row>): unknown[] => [...rows].map((row) => row[2]);
  t.same(notes(r.scan('visits', { range: { lower: { key: [2], inclusive: true }, upper: { key: [2], inclusive: true } } })),
    ['2@2024-01-01', '2@2024-02-01'], 'a one-column bound selects the whole prefix');
  t.same(notes(r.scan('visits', { range: { lower: { key: [1], inclusive: false } } })),
    ['2@2024-01-01', '2@2024-02-01', '3@2024-01-01', '3@2024-02-01'], 'exclusive prefix lower bound skips the prefix');
  t.same(notes(r.scan('visits', { range: { upper: { key: [2], inclusive: false } }, reverse: true })),
    ['1@2024-02-01', '1@2024-01-01'], 'exclusive prefix upper bound, reversed');
  t.same(notes(r.scan('visits', { range: { lower: { key: [2, '2024-01-15'], inclusive: true }, upper: { key: [3, '2024-01-01'], inclusive: true } } })),
    ['2@2024-02-01', '3@2024-01-01'], 'full-key bounds');
  t.same(notes(r.scan('visits', { range: { lower: { key: [3], inclusive: true }, upper: { key: [1], inclusive: true } } })), [], 'empty range');
  t.same(r.get('visits', [3, '2024-02-01']), [3, '2024-02-01', '3@2024-02-01']);
  t.equal(r.get('visits', [3, '2024-03-01']), undefined);
  t.equal(r.rowCount('visits'), 6);
  const iterator = r.scan('visits')[Symbol.iterator]();
  t.same(iterator.next().value, [1, '2024-01-01', '1@2024-01-01'], 'scans are lazy iterables');
});

t.test('history: every position reads its own versions', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => w.createTable('p', { primaryKey: [0], columnCount: 2 }));
  batch(store, 1, 2, (w) => { w.insert('p', [1, 'Ann']); w.insert('p', [2, 'Bob']); });
  batch(store, 1, 3, (w) => w.update('p', [1], [1, 'Anne']));
  batch(store, 1, 4, (w) => w.update('p', [2], [20, 'Bob']));
  batch(store, 1, 5, (w) => w.delete('p', [1]));
  const at = (p: number): unknown => [...store.snapshotAt(T1, position(p)).scan('p')];
  t.same(at(1), []);
  t.same(at(2), [[1, 'Ann'], [2, 'Bob']]);
  t.same(at(3), [[1, 'Anne'], [2, 'Bob']]);
  t.same(at(4), [[1, 'Anne'], [20, 'Bob']], 'a key change moves the row');
  t.same(at(5), [[20, 'Bob']]);
  t.same([0, 1, 2, 3, 4, 5].map((p) => store.snapshotAt(T1, position(p)).hasTable('p') && store.snapshotAt(T1, position(p)).rowCount('p')),
    [false, 0, 2, 2, 2, 1]);
});

t.test('DDL history: created, dropped, recreated, altered tables and indexes', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 2 }); w.insert('t', [1, 'a']); w.insert('t', [2, 'b']); });
  batch(store, 1, 2, (w) => w.createIndex('t', 'by_v', { columns: [1], unique: true }));
  batch(store, 1, 3, (w) => w.alterTable('t', { primaryKey: [0], columnCount: 3 }, (row) => [...row, row[0] === 1 ? 'x' : null]));
  batch(store, 1, 4, (w) => w.dropIndex('t', 'by_v'));
  batch(store, 1, 5, (w) => w.dropTable('t'));
  batch(store, 1, 6, (w) => { w.createTable('t', { primaryKey: [1], columnCount: 2 }); w.insert('t', ['k', 9]); });
  const r = (p: number): ReturnType<Store['snapshotAt']> => store.snapshotAt(T1, position(p));
  t.notOk(r(0).hasTable('t'), 'not yet created');
  t.same([...r(1).scan('t')], [[1, 'a'], [2, 'b']]);
  t.notOk(r(1).hasIndex('t', 'by_v'), 'index created later is invisible');
  t.throws(() => r(1).indexScan('t', 'by_v'), AssertionError);
  t.same([...r(2).indexScan('t', 'by_v', { reverse: true })], [[2, 'b'], [1, 'a']]);
  t.same([...r(3).scan('t')], [[1, 'a', 'x'], [2, 'b', null]], 'altered layout from its position on');
  t.same([...r(3).indexScan('t', 'by_v')], [[1, 'a', 'x'], [2, 'b', null]], 'indexes survive ALTER');
  t.same([...r(2).scan('t')], [[1, 'a'], [2, 'b']], 'the old layout before it');
  t.notOk(r(4).hasIndex('t', 'by_v'));
  t.same([...r(4).scan('t')], [[1, 'a', 'x'], [2, 'b', null]], 'a dropped table is visible before its drop');
  t.notOk(r(5).hasTable('t'));
  t.throws(() => r(5).scan('t'), AssertionError, 'unknown table asserts at the call');
  t.same([...r(6).scan('t')], [['k', 9]], 'the new incarnation');
  t.same(r(6).get('t', [9]), ['k', 9], 'keyed by its own primary key column');
  store.checkInvariants();
});

t.test('preconditions are asserted: the caller checks first', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 3 });
    w.createIndex('t', 'u', { columns: [1], unique: true });
    w.insert('t', [1, 'a', 0]);
    w.insert('t', [2, null, 0]);
    w.insert('t', [3, null, 0]);
  });
  const w = store.begin(T1, position(2));
  t.throws(() => w.insert('t', [1, 'z', 0]), AssertionError, 'duplicate primary key');
  t.throws(() => w.insert('t', [1n, 'z', 0]), AssertionError, 'duplicate primary key across number and bigint');
  t.throws(() => w.insert('t', [4, 'a', 0]), AssertionError, 'duplicate unique key');
  t.doesNotThrow(() => w.insert('t', [4, null, 0]), 'NULLs do not collide in a unique index');
  t.throws(() => w.update('t', [2], [2, 'a', 0]), AssertionError, 'update onto a unique key');
  t.doesNotThrow(() => w.update('t', [1], [1, 'a', 5]), 'a row keeps its own unique key');
  t.throws(() => w.update('t', [1], [2, 'a', 5]), AssertionError, 'update onto an existing primary key');
  t.throws(() => w.insert('t', [5, 'q']), AssertionError, 'wrong column count');
  t.throws(() => w.insert('nope', [5, 'q', 0]), AssertionError, 'unknown table');
  t.throws(() => w.delete('t', [99]), AssertionError, 'delete of a missing row');
  t.throws(() => w.get('t', [1, 2]), AssertionError, 'key of the wrong length');
  t.throws(() => w.createTable('t', { primaryKey: [0], columnCount: 1 }), AssertionError, 'table exists');
  t.throws(() => w.createTable('bad', { primaryKey: [3], columnCount: 2 }), AssertionError, 'key column out of range');
  t.throws(() => w.createIndex('t', 'u', { columns: [2], unique: false }), AssertionError, 'index exists');
  t.throws(() => w.createIndex('t', 'dup', { columns: [2], unique: true }), AssertionError, 'unique index over duplicates');
  t.throws(() => store.begin(T1, position(3)), AssertionError, 'one open batch at a time');
  t.throws(() => store.snapshotAt(T1, position(2)), AssertionError, 'not yet applied');
  w.commit();
  t.throws(() => w.insert('t', [9, 'q', 0]), AssertionError, 'a committed batch is closed');
  t.throws(() => store.begin(T1, position(2)), AssertionError, 'positions strictly increase');
  t.throws(() => store.begin(tenantId(9), position(3)), AssertionError, 'unknown tenant');
  t.throws(() => store.createTenant(T1), AssertionError, 'tenant exists');
  store.checkInvariants();
});

t.test('abort leaves no trace, DDL included', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 2 });
    w.createIndex('t', 'v', { columns: [1], unique: false });
    for (let i = 0; i < 300; i++) w.insert('t', [i, `v${i % 7}`]);
  });
  const before = checksumHex(store.stateHash());
  const w = store.begin(T1, position(2));
  for (let i = 0; i < 300; i += 2) w.delete('t', [i]);
  for (let i = 1; i < 300; i += 2) w.update('t', [i], [i + 1000, 'moved']);
  w.dropIndex('t', 'v');
  w.createIndex('t', 'v', { columns: [1], unique: false });
  w.alterTable('t', { primaryKey: [0], columnCount: 3 }, (row) => [...row, 0]);
  w.createTable('other', { primaryKey: [0], columnCount: 1 });
  w.dropTable('t');
  t.notOk(w.hasTable('t'), 'the batch sees its own drop');
  w.abort();
  t.equal(checksumHex(store.stateHash()), before, 'same state hash as before the batch');
  t.equal(store.lastPosition, 1, 'an aborted batch does not advance the store');
  t.equal(store.latest(T1).rowCount('t'), 300);
  store.checkInvariants();
  batch(store, 1, 2, (w2) => w2.delete('t', [0]));
  t.equal(store.latest(T1).rowCount('t'), 299, 'the position can be used again');
});

t.test('snapshots stay valid while later batches commit', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 2 }); for (let i = 0; i < 1000; i++) w.insert('t', [i, 'old']); });
  const snapshot = store.latest(T1);
  const iterator = snapshot.scan('t')[Symbol.iterator]();
  t.same(iterator.next().value, [0, 'old']);
  for (let p = 2; p < 12; p++) {
    batch(store, 1, p, (w) => {
      for (let i = 0; i < 1000; i += 3) if (w.get('t', [i]) !== undefined) w.delete('t', [i]);
      for (let i = 0; i < 200; i++) w.insert('t', [100_000 * p + i, 'new']);
    });
  }
  batch(store, 1, 12, (w) => w.dropTable('t'));
  let seen = 1;
  for (let step = iterator.next(); step.done !== true; step = iterator.next()) {
    t.equal(step.value[1], 'old');
    seen += 1;
  }
  t.equal(seen, 1000, 'the snapshot iterated exactly its own rows');
  t.equal(snapshot.rowCount('t'), 1000);
  t.notOk(store.latest(T1).hasTable('t'));
});

t.test('readers never see an open batch; advance makes positions without writes readable', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 1 }); w.insert('t', [1]); });
  const open = store.begin(T1, position(2));
  open.insert('t', [2]);
  open.dropTable('t');
  t.same([...store.latest(T1).scan('t')], [[1]], 'a snapshot during the batch reads committed state');
  open.commit();
  t.notOk(store.latest(T1).hasTable('t'));
  t.throws(() => store.snapshotAt(T1, position(5)), AssertionError);
  store.advance(position(5));
  t.equal(store.lastPosition, 5);
  t.notOk(store.snapshotAt(T1, position(5)).hasTable('t'));
  t.same([...store.snapshotAt(T1, position(1)).scan('t')], [[1]]);
  t.throws(() => store.begin(T1, position(5)), AssertionError, 'advanced positions are used up');
  t.throws(() => store.advance(position(4)), AssertionError, 'advance never goes back');
  store.checkInvariants();
});

t.test('a snapshot taken while a batch is open never shows that batch, even once it aborts', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 1 }); w.insert('t', [1]); w.insert('t', [2]); });
  const open = store.begin(T1, position(2));
  open.insert('t', [3]);
  open.delete('t', [1]);
  open.createTable('new', { primaryKey: [0], columnCount: 1 });
  const during = store.latest(T1);
  t.same([...during.scan('t')], [[1], [2]]);
  open.insert('t', [4]);
  open.abort();
  store.advance(position(2));
  const after = store.snapshotAt(T1, position(2));
  t.same([...after.scan('t')], [[1], [2]], 'the aborted writes are not visible at their position');
  t.notOk(after.hasTable('new'));
  t.equal(after.rowCount('t'), 2);
  t.same([...during.scan('t')], [[1], [2]], 'the earlier snapshot is unchanged');
  batch(store, 1, 3, (w) => w.insert('t', [5]));
  t.same([...store.latest(T1).scan('t')], [[1], [2], [5]]);
  store.checkInvariants();
});

t.test('a batch may write while it scans', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 2 }); for (let i = 0; i < 500; i++) w.insert('t', [i, 0]); });
  const w = store.begin(T1, position(2));
  let visited = 0;
  for (const row of w.scan('t')) {
    w.update('t', [row[0] as number], [(row[0] as number) + 10_000, 1]);
    w.insert('t', [-1 - visited, 2]);
    visited += 1;
  }
  t.equal(visited, 500, 'the scan saw the rows as of its start');
  t.equal(w.rowCount('t'), 1000);
  w.commit();
  const counts = [0, 0, 0];
  for (const row of store.latest(T1).scan('t')) counts[row[1] as number]! += 1;
  t.same(counts, [0, 500, 500]);
  store.checkInvariants();
});

t.test('suspended scans of a batch read the trees as of their start while the batch writes', async (t) => {
  const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
  t.comment(`SEED=${seed}`);
  const rng = new Prng(seed);
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 2 });
    w.createIndex('t', 'by_v', { columns: [1], unique: false });
    for (let i = 0; i < 200; i++) w.insert('t', [i, rng.int(20)]);
  });
  for (let at = 2; at < 12; at++) {
    const w = store.begin(T1, position(at));
    const open: { rows: Iterator<Row>; expected: Row[]; seen: number }[] = [];
    for (let step = 0; step < 300; step++) {
      const roll = rng.int(4);
      if (roll === 0 && open.length < 4) {
        const bound = rng.int(20);
        const options: ScanOptions = { reverse: rng.chance(0.5), ...(rng.chance(0.5) ? { range: { lower: { key: [bound], inclusive: rng.chance(0.5) } } } : {}) };
        const index = rng.chance(0.5);
        const scan = (): Iterable<Row> => (index ? w.indexScan('t', 'by_v', options) : w.scan('t', options));
        open.push({ rows: scan()[Symbol.iterator](), expected: [...scan()], seen: 0 });
      } else if (roll === 1 && open.length > 0) {
        const i = rng.int(open.length);
        const scan = open[i]!;
        const next = scan.rows.next();
        if (next.done === true) {
          t.equal(scan.seen, scan.expected.length, `scan ended after all its rows (position ${at}, step ${step})`);
          open.splice(i, 1);
        } else {
          t.same(next.value, scan.expected[scan.seen], `row ${scan.seen} of a suspended scan (position ${at}, step ${step})`);
          scan.seen += 1;
        }
      } else {
        const key = rng.int(300);
        const exists = w.get('t', [key]) !== undefined;
        if (!exists) w.insert('t', [key, rng.int(20)]);
        else if (rng.chance(0.5)) w.delete('t', [key]);
        else w.update('t', [key], [key, rng.int(20)]);
      }
    }
    for (const scan of open) {
      const rest = [...{ [Symbol.iterator]: () => scan.rows }];
      t.same(rest, scan.expected.slice(scan.seen), `the rest of a suspended scan (position ${at})`);
    }
    if (rng.chance(0.3)) w.abort();
    else w.commit();
    store.checkInvariants();
  }
});

t.test('indexCount counts the visible entries of an index prefix up to a limit', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 2 });
    w.createIndex('t', 'by_v', { columns: [1], unique: false });
    for (let i = 0; i < 9; i++) w.insert('t', [i, i % 3]);
  });
  const w = store.begin(T1, position(2));
  w.delete('t', [0]);
  w.insert('t', [10, 5]);
  t.same([0, 1, 2, 5, 7].map((v) => w.indexCount('t', 'by_v', [v], 10)), [2, 3, 3, 1, 0], 'the batch counts its own writes');
  t.equal(w.indexCount('t', 'by_v', [1], 2), 2, 'stops at the limit');
  w.commit();
  t.same([0, 5].map((v) => store.snapshotAt(T1, position(1)).indexCount('t', 'by_v', [v], 10)), [3, 0], 'a snapshot counts as of its position');
});

t.test('indexCount in a batch (read from the leaf the last insert wrote, when it can) counts as a snapshot of the same rows does', async (t) => {
  const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
  t.comment(`SEED=${seed}`);
  const opArbitrary = fc.record({ key: fc.nat(300), value: fc.nat(12), remove: fc.nat(4).map((n) => n === 0), probe: fc.nat(13), limit: fc.integer({ min: 1, max: 5 }) });
  let checks = 0;
  fc.assert(fc.property(fc.array(fc.array(opArbitrary, { minLength: 1, maxLength: 80 }), { minLength: 1, maxLength: 12 }), (batches) => {
    const store = storeWithTenants(1);
    batch(store, 1, 1, (w) => {
      w.createTable('t', { primaryKey: [0], columnCount: 3 });
      w.createIndex('t', 'by_v', { columns: [1], unique: false });
      w.createIndex('t', 'by_w', { columns: [2, 1], unique: false });
    });
    const model = new Map<number, number>();
    batches.forEach((ops, b) => {
      const w = store.begin(T1, position(b + 2));
      for (const op of ops) {
        if (model.has(op.key)) {
          if (op.remove) {
            w.delete('t', [op.key]);
            model.delete(op.key);
          } else {
            w.update('t', [op.key], [op.key, op.value, op.value % 3]);
            model.set(op.key, op.value);
          }
        } else {
          w.insert('t', [op.key, op.value, op.value % 3]);
          model.set(op.key, op.value);
        }
        const values = [...model.values()];
        for (const [index, prefix, matches] of [
          ['by_v', [op.value], (v: number) => v === op.value],
          ['by_v', [op.probe], (v: number) => v === op.probe],
          ['by_w', [op.value % 3], (v: number) => v % 3 === op.value % 3],
          ['by_w', [op.value % 3, op.value], (v: number) => v === op.value],
        ] as const) {
          const expected = Math.min(values.filter(matches).length, op.limit);
          const counted = w.indexCount('t', index, prefix, op.limit);
          if (counted !== expected) t.fail(`batch ${b}, ${index} ${JSON.stringify(prefix)} limit ${op.limit}: ${counted}, expected ${expected}`);
        }
      }
      w.commit();
    });
    store.checkInvariants();
    checks += 1;
  }), { seed, numRuns: 40 });
  t.ok(checks > 0);
});

t.test('a write right after a get of the same key is checked like any other', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 2 });
    w.createTable('u', { primaryKey: [0], columnCount: 2 });
    w.insert('t', [1, 'a']);
    w.insert('t', [5, 'e']);
    w.insert('u', [1, 'x']);
  });
  const w = store.begin(T1, position(2));
  const key = [9];
  t.equal(w.get('t', key), undefined);
  key[0] = 1;
  t.throws(() => w.insert('t', [1, 'z']), AssertionError, 'a miss remembers the key it looked up, not the caller\'s array');
  t.equal(w.get('t', [2]), undefined);
  w.insert('t', [2, 'b']);
  t.throws(() => w.insert('t', [2, 'again']), AssertionError, 'a write to the table ends the remembered miss');
  t.same(w.get('t', [1]), [1, 'a']);
  w.update('t', [1], [1, 'a2']);
  t.same(w.get('t', [1]), [1, 'a2'], 'an update after a get');
  t.same(w.get('u', [1]), [1, 'x']);
  w.update('t', [1], [1, 'a3']);
  t.same(w.get('t', [1]), [1, 'a3'], 'a get of another table in between');
  t.same(w.get('t', [5]), [5, 'e']);
  w.delete('t', [5]);
  t.throws(() => w.update('t', [5], [5, 'f']), AssertionError, 'a row deleted after the get is gone');
  t.same(w.get('t', [2]), [2, 'b']);
  t.throws(() => w.update('t', [3], [3, 'c']), AssertionError, 'a remembered row answers only for its own key');
  t.same(w.get('t', [6]), undefined);
  t.doesNotThrow(() => w.insert('t', [7, 'g']), 'an append after the last key');
  w.commit();
  t.same([...store.latest(T1).scan('t')], [[1, 'a3'], [2, 'b'], [7, 'g']]);
  t.same([...store.snapshotAt(T1, position(1)).scan('t')], [[1, 'a'], [5, 'e']]);
  store.checkInvariants();
});

t.test('index DDL in a batch changes which indexes later writes maintain, and abort restores them', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 2 });
    w.createIndex('t', 'old', { columns: [1], unique: false });
    w.insert('t', [1, 'a']);
  });
  const aborted = store.begin(T1, position(2));
  aborted.dropIndex('t', 'old');
  aborted.createIndex('t', 'new', { columns: [1], unique: true });
  aborted.insert('t', [2, 'b']);
  t.same([...aborted.indexScan('t', 'new')], [[1, 'a'], [2, 'b']]);
  aborted.abort();
  batch(store, 1, 2, (w) => {
    w.insert('t', [3, 'c']);
    t.same([...w.indexScan('t', 'old')], [[1, 'a'], [3, 'c']], 'the dropped index is live again after the abort');
    t.notOk(w.hasIndex('t', 'new'));
    w.createIndex('t', 'new', { columns: [1], unique: true });
    w.insert('t', [4, 'd']);
    t.throws(() => w.insert('t', [5, 'd']), AssertionError, 'the index created in this batch is checked');
  });
  t.same([...store.latest(T1).indexScan('t', 'new')], [[1, 'a'], [3, 'c'], [4, 'd']]);
  store.checkInvariants();
});

t.test('tenants are isolated', async (t) => {
  const store = storeWithTenants(2, 1);
  t.same(store.tenants(), [1, 2], 'sorted');
  batch(store, 1, 1, (w) => { w.createTable('p', { primaryKey: [0], columnCount: 2 }); w.insert('p', [1, 'tenant one']); });
  batch(store, 2, 2, (w) => { w.createTable('p', { primaryKey: [0], columnCount: 2 }); w.insert('p', [2, 'tenant two']); });
  batch(store, 1, 3, (w) => w.insert('p', [3, 'tenant one']));
  t.same([...store.latest(T1).scan('p')], [[1, 'tenant one'], [3, 'tenant one']]);
  t.same([...store.latest(T2).scan('p')], [[2, 'tenant two']]);
  t.notOk(store.snapshotAt(T2, position(1)).hasTable('p'), 'tenant 2 had no table at 1');
  t.equal(store.latest(T2).get('p', [1]), undefined);
  const held = store.latest(T1);
  store.dropTenant(T1);
  t.same(store.tenants(), [2]);
  t.throws(() => store.latest(T1), AssertionError, 'a dropped tenant has no snapshots');
  t.same([...held.scan('p')].length, 2, 'a snapshot taken before the drop keeps working');
  t.same([...store.latest(T2).scan('p')], [[2, 'tenant two']]);
  store.createTenant(T1);
  t.notOk(store.latest(T1).hasTable('p'), 'a re-created tenant starts empty');
});

t.test('prune drops old history and refuses reads before the horizon', async (t) => {
  const store = storeWithTenants(1);
  batch(store, 1, 1, (w) => { w.createTable('t', { primaryKey: [0], columnCount: 1 }); w.createTable('gone', { primaryKey: [0], columnCount: 1 }); });
  for (let p = 2; p <= 20; p++) batch(store, 1, p, (w) => { if (p > 2) w.delete('t', [p - 1]); w.insert('t', [p]); });
  batch(store, 1, 21, (w) => w.dropTable('gone'));
  const sizeBefore = store.checkpoint().length;
  store.prune(position(21));
  t.ok(store.checkpoint().length < sizeBefore, 'history is smaller');
  t.throws(() => store.snapshotAt(T1, position(20)), AssertionError);
  t.same([...store.latest(T1).scan('t')], [[20]]);
  t.notOk(store.latest(T1).hasTable('gone'));
  t.throws(() => store.prune(position(10)), AssertionError, 'the horizon never moves back');
  store.checkInvariants();
});

function withChecksum(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 32);
  out.set(body);
  out.set(blake3(body), body.length);
  return out;
}

t.test('corrupt, truncated or foreign checkpoints are refused', async (t) => {
  const store = storeWithTenants(1, 2);
  batch(store, 1, 1, (w) => {
    w.createTable('t', { primaryKey: [0], columnCount: 3 });
    w.createIndex('t', 'i', { columns: [1, 2], unique: false });
    w.insert('t', [1, 'a', 1n]);
    w.insert('t', [2, new Uint8Array([1, 2]), { x: [1] }]);
  });
  batch(store, 2, 2, (w) => { w.createTable('u', { primaryKey: [0], columnCount: 1 }); w.insert('u', [true]); });
  batch(store, 1, 3, (w) => w.update('t', [1], [1, 'b', null]));
  const bytes = store.checkpoint(new Uint8Array([7, 7, 7]));
  let rejected = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const corrupt = bytes.slice();
      corrupt[i] = (corrupt[i] as number) ^ flip;
      if (!Store.restore(corrupt).ok) rejected += 1;
    }
  }
  t.equal(rejected, bytes.length * 2, `every one of ${bytes.length * 2} single-bit corruptions is rejected`);
  for (const length of [0, 10, bytes.length - 1]) t.notOk(Store.restore(bytes.subarray(0, length)).ok, `truncated to ${length}`);
  const body = bytes.slice(0, bytes.length - 32);
  const futureVersion = body.slice();
  futureVersion[11] = 2;
  const result = Store.restore(withChecksum(futureVersion));
  t.same(result.ok ? 'accepted' : result.reason, 'unknown checkpoint version 2');
  const notStore = body.slice();
  notStore[0] = 0x58;
  t.notOk(Store.restore(withChecksum(notStore)).ok, 'wrong magic with a valid checksum');
  const positionTooHigh = body.slice();
  positionTooHigh[12] = 1; // lastPosition 3 -> 1: versions from the future
  const future = Store.restore(withChecksum(positionTooHigh));
  t.match(future.ok ? 'accepted' : future.reason, /checkpoint state/, 'structural checks run after the checksum');
  const good = Store.restore(bytes);
  t.ok(good.ok);
  if (good.ok) {
    t.same([...good.extra], [7, 7, 7]);
    t.same([...good.store.snapshotAt(T1, position(2)).scan('t')], [...store.snapshotAt(T1, position(2)).scan('t')]);
    t.same(good.store.tenants(), [1, 2]);
  }
});

t.test('writes right after a get of their key (done in place where the tree allows) leave the same store as plain writes', async (t) => {
  const seed = seedFrom(process.env, () => Date.now() % 1_000_000_000);
  t.comment(`SEED=${seed}`);
  const opArbitrary = fc.record({
    key: fc.nat(400),
    value: fc.nat(50),
    remove: fc.nat(5).map((n) => n === 0),
    allKey: fc.boolean(),
    snapshot: fc.nat(30).map((n) => n === 0),
    scan: fc.nat(30).map((n) => n === 0),
  });
  const batchesArbitrary = fc.array(fc.record({
    abort: fc.nat(8).map((n) => n === 0),
    ops: fc.array(opArbitrary, { minLength: 1, maxLength: 60, size: 'max' }),
  }), { minLength: 1, maxLength: 40, size: 'max' });
  let checks = 0;
  fc.assert(fc.property(batchesArbitrary, (batches) => {
    const plain = storeWithTenants(1);
    const read = storeWithTenants(1);
    for (const store of [plain, read]) {
      batch(store, 1, 1, (w) => {
        w.createTable('t', { primaryKey: [0], columnCount: 2 });
        w.createIndex('t', 'by_value', { columns: [1], unique: false });
        w.createTable('k', { primaryKey: [0, 1], columnCount: 2 });
      });
    }
    let model = new Map<number, number>();
    const held: { reader: ReturnType<Store['latest']>; rows: Row[] }[] = [];
    batches.forEach(({ abort, ops }, b) => {
      const at = position(b + 2);
      const p = plain.begin(T1, at);
      const r = read.begin(T1, at);
      const pending = new Map(model);
      const scans: { rows: Iterator<Row>; expected: Row[]; seen: Row[] }[] = [];
      for (const op of ops) {
        if (op.snapshot) {
          const reader = read.latest(T1);
          held.push({ reader, rows: [...reader.scan('t')] });
        }
        if (op.scan) {
          const rows = r.scan('t')[Symbol.iterator]();
          const first = rows.next();
          const expected = [...pending].sort((x, y) => x[0] - y[0]).map(([k, v]): Row => [k, v]);
          scans.push({ rows, expected, seen: first.done === true ? [] : [first.value] });
        }
        if (op.allKey) {
          // A table whose rows are all key: inserts and deletes only.
          const key = [op.key, op.value];
          const live = r.get('k', key) !== undefined;
          if (live) {
            p.delete('k', key);
            r.delete('k', key);
          } else {
            p.insert('k', key);
            r.insert('k', key);
          }
          continue;
        }
        const current = pending.get(op.key);
        const got = r.get('t', [op.key]);
        if ((got === undefined) !== (current === undefined) || (got !== undefined && got[1] !== current)) t.fail(`get of ${op.key} at ${at}`);
        if (current === undefined) {
          p.insert('t', [op.key, op.value]);
          r.insert('t', [op.key, op.value]);
          pending.set(op.key, op.value);
        } else if (op.remove) {
          p.delete('t', [op.key]);
          r.delete('t', [op.key]);
          pending.delete(op.key);
        } else {
          p.update('t', [op.key], [op.key, op.value]);
          r.update('t', [op.key], [op.key, op.value]);
          pending.set(op.key, op.value);
        }
      }
      for (const scan of scans) {
        for (let next = scan.rows.next(); next.done !== true; next = scan.rows.next()) scan.seen.push(next.value);
        t.same(scan.seen, scan.expected, 'a scan suspended across in-place writes reads the table as of its start');
      }
      if (abort) {
        p.abort();
        r.abort();
        plain.advance(at);
        read.advance(at);
      } else {
        p.commit();
        r.commit();
        model = pending;
      }
    });
    t.equal(checksumHex(read.stateHash()), checksumHex(plain.stateHash()), 'same state hash');
    read.checkInvariants();
    plain.checkInvariants();
    for (const { reader, rows } of held) t.same([...reader.scan('t')], rows, 'a snapshot taken during a batch keeps its rows');
    checks += 1;
  }), { seed, numRuns: 30 });
  t.ok(checks > 0);
});
