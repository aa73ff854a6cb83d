// The normalizer and comparator of the differential test: values of each kind read from
// PostgreSQL's text and from the JavaScript forms VerityDB may return compare as intended.
import t from 'tap';
import { compareOutcomes, normalizeValue, timestampTextToMicros, valuesEqual, type Outcome } from './results.js';

t.test('numbers: exact integers, tolerant non-integers, no silent precision loss', async (t) => {
  const big = normalizeValue('9007199254740993', 'int');
  t.ok(valuesEqual(big, normalizeValue(9007199254740993n, 'int')));
  t.notOk(valuesEqual(big, normalizeValue(9007199254740992, 'int')), 'a rounded double does not match a big integer');
  t.equal(normalizeValue(9007199254740994, 'int')?.t, 'bad', 'an integer result beyond 2^53 must not be a double');
  t.equal(normalizeValue(3.5, 'int')?.t, 'bad', 'an integer result has no fraction');
  t.ok(valuesEqual(normalizeValue('-1537228672809129298.0000000000000000', 'numeric'), normalizeValue(-1537228672809129200, 'float')),
    'AVG beyond 2^53: NUMERIC vs double within tolerance');
  t.ok(valuesEqual(normalizeValue('3', 'numeric'), normalizeValue(3, 'int')));
  t.ok(valuesEqual(normalizeValue('3.0000', 'numeric'), normalizeValue(3n, 'int')));
  t.ok(valuesEqual(normalizeValue('1.5000000000000000', 'numeric'), normalizeValue(1.5, 'float')), 'AVG as NUMERIC vs double');
  t.ok(valuesEqual(normalizeValue('0.33333333333333333333', 'numeric'), normalizeValue(1 / 3, 'float')));
  t.ok(valuesEqual(normalizeValue('0.3', 'numeric'), normalizeValue(0.1 + 0.2, 'float')));
  t.notOk(valuesEqual(normalizeValue('3', 'int'), normalizeValue(3.5, 'float')), 'integer division differs from real division');
  t.notOk(valuesEqual(normalizeValue('1e-7', 'float'), normalizeValue(0, 'int')));
  t.notOk(valuesEqual(normalizeValue('5', 'int'), normalizeValue('5', 'text')), 'kinds differ');
  t.notOk(valuesEqual(normalizeValue('5', 'int'), null));
  t.same(normalizeValue('5', 'int'), normalizeValue('5', 'float'));
  t.equal(normalizeValue('abc', 'float')?.t, 'bad');
});

t.test('dates, timestamps, bytes, booleans', async (t) => {
  t.equal(timestampTextToMicros('2024-01-01 12:30:45.123456'), 1704112245123456n);
  t.equal(timestampTextToMicros('1969-12-31 23:59:59.999999'), -1n);
  t.equal(timestampTextToMicros('1970-01-01 00:00:00.5'), 500000n);
  t.equal(timestampTextToMicros('not a time'), null);
  const ts = normalizeValue('2024-01-01 12:30:45.123456', 'timestamp');
  t.ok(valuesEqual(ts, normalizeValue(1704112245123456n, 'timestamp')));
  t.ok(valuesEqual(ts, normalizeValue('2024-01-01T12:30:45.123456Z', 'timestamp')));
  const date = new Date(Date.UTC(2024, 0, 1, 12, 30, 45, 123));
  t.notOk(valuesEqual(ts, normalizeValue(date, 'timestamp')), 'a Date loses microseconds');
  t.ok(valuesEqual(ts, normalizeValue(Object.assign(date, { micros: 1704112245123456n }), 'timestamp')), 'a Date with exact micros');
  t.ok(valuesEqual(normalizeValue('2024-01-01 00:00:00', 'timestamp'), normalizeValue(new Date(Date.UTC(2024, 0, 1)), 'timestamp')));
  t.ok(valuesEqual(normalizeValue('2000-02-29', 'date'), normalizeValue(new Date(Date.UTC(2000, 1, 29)), 'date')));
  t.notOk(valuesEqual(normalizeValue('2000-02-29', 'date'), normalizeValue('2000-02-28', 'date')));
  t.equal(normalizeValue(20000, 'date')?.t, 'bad');
  t.ok(valuesEqual(normalizeValue(Uint8Array.of(1, 2), 'bytes'), normalizeValue(Buffer.from([1, 2]), 'bytes')));
  t.notOk(valuesEqual(normalizeValue(Uint8Array.of(1, 2), 'bytes'), normalizeValue(Uint8Array.of(1), 'bytes')));
  t.notOk(valuesEqual(normalizeValue(true, 'bool'), normalizeValue(1, 'bool')));
  t.notOk(valuesEqual(normalizeValue('', 'text'), null), 'empty text is not NULL');
});

t.test('outcomes: errors, rowsAffected, multisets and orders', async (t) => {
  const rows = (...values: number[][]): Outcome => ({
    ok: true, columns: null, rowsAffected: null, rows: values.map((r) => r.map((v) => normalizeValue(v, 'int'))),
  });
  const failed: Outcome = { ok: false, error: 'x' };
  t.equal(compareOutcomes(failed, { ok: false, error: 'other' }, { kind: 'none' }), null, 'any error matches any error');
  t.not(compareOutcomes(failed, rows(), { kind: 'none' }), null);
  t.not(compareOutcomes(rows(), failed, { kind: 'none' }), null);
  t.equal(compareOutcomes(rows([1], [2]), rows([2], [1]), { kind: 'none' }), null);
  t.not(compareOutcomes(rows([1], [2]), rows([2], [1]), { kind: 'total' }), null);
  t.not(compareOutcomes(rows([1], [1], [2]), rows([1], [2], [2]), { kind: 'none' }), null, 'multiplicity counts');
  const keys = { kind: 'keys', keys: [{ output: 0, descending: false }] } as const;
  t.equal(compareOutcomes(rows([1, 5], [1, 6], [2, 0]), rows([1, 6], [1, 5], [2, 0]), keys), null, 'ties in any order');
  t.not(compareOutcomes(rows([1, 5], [2, 0]), rows([2, 0], [1, 5]), keys), null);
  const affected = (n: number): Outcome => ({ ok: true, columns: null, rows: [], rowsAffected: n });
  t.not(compareOutcomes(affected(2), affected(1), { kind: 'none' }), null);
  const named = (...columns: string[]): Outcome => ({ ok: true, columns, rows: [], rowsAffected: null });
  t.not(compareOutcomes(named('a', 'b'), named('a', 'c'), { kind: 'none' }), null);
});
