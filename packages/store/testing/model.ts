/**
 * A deliberately naive model of the store for property tests: per tenant, a list of
 * (position, full state) pairs; a state is each table's layout, index layouts and rows in an
 * array. Random "intents" are interpreted against the model into concrete statements that
 * satisfy the store's preconditions (the caller checks first), and the same statements are then
 * replayed against real stores.
 */
import {
  assert, canonicalJson, compareBytes, compareKeys, compareValues, Prng, tenantId, position,
  type IndexLayout, type JsonValue, type Key, type KeyBound, type KeyRange, type Row, type TableLayout,
  type TableReader, type TableWriter, type Value,
} from '@veritydb/types';
import type { Store } from '../src/index.js';

export interface ModelTable {
  readonly layout: TableLayout;
  readonly indexes: Map<string, IndexLayout>;
  rows: Row[];
}
export type ModelState = Map<string, ModelTable>;

export type Statement =
  | { readonly kind: 'createTable'; readonly table: string; readonly layout: TableLayout }
  | { readonly kind: 'dropTable'; readonly table: string }
  | { readonly kind: 'createIndex'; readonly table: string; readonly index: string; readonly layout: IndexLayout }
  | { readonly kind: 'dropIndex'; readonly table: string; readonly index: string }
  | { readonly kind: 'alter'; readonly table: string; readonly layout: TableLayout; readonly fill: Value }
  | { readonly kind: 'insert'; readonly table: string; readonly row: Row }
  | { readonly kind: 'update'; readonly table: string; readonly key: Key; readonly row: Row }
  | { readonly kind: 'delete'; readonly table: string; readonly key: Key };

export interface Batch {
  readonly tenant: number;
  readonly position: number;
  readonly statements: Statement[];
  readonly abort: boolean;
}

export interface Intent {
  readonly kind: number;
  readonly pick: number;
  readonly values: readonly number[];
  readonly flag: boolean;
}

export const TENANTS = [1, 2, 3];
export const TABLES = ['a', 'b'] as const;

const BASE_LAYOUT: Record<string, TableLayout> = {
  a: { primaryKey: [0, 1], columnCount: 4 },
  b: { primaryKey: [1], columnCount: 3 },
};
const INDEXES: Record<string, readonly [string, IndexLayout][]> = {
  a: [['a_v', { columns: [2], unique: false }], ['a_w', { columns: [3], unique: true }], ['a_vw', { columns: [2, 3], unique: false }]],
  b: [['b_c2', { columns: [2, 0], unique: false }], ['b_c0', { columns: [0], unique: true }]],
};
export const INDEX_NAMES: Record<string, readonly string[]> = { a: ['a_v', 'a_w', 'a_vw'], b: ['b_c2', 'b_c0'] };
const COLUMNS_MAX_B = 6;

const A_K1: readonly Value[] = Array.from({ length: 16 }, (_, i) => i);
const A_K2: readonly Value[] = ['x', 'y', 'z', '', 'é'];
const A_V: readonly Value[] = [null, 0, 1, 2.5, -1, 1n, -0, Number.NaN];
const A_W: readonly Value[] = ['p', 'q', 'r', null, 'é', '\u{1F600}', '\ud800'];
const B_C0: readonly Value[] = [null, new Uint8Array([]), new Uint8Array([1, 2]), { j: [1, 'x'] }, [true, null], new Uint8Array([255])];
const B_C1: readonly Value[] = [-2n, 0n, 1n, 3n, 2n ** 70n, -(2n ** 65n)];
const B_C2: readonly Value[] = [null, true, false];
const EXTRA: readonly Value[] = ['s', 't', null, 7];

/** Every value the generator can produce in a key column, for range bounds. */
export const KEY_DOMAINS: Record<string, readonly (readonly Value[])[]> = {
  a: [A_K1, A_K2, A_V, A_W],
  b: [B_C0, B_C1, B_C2, EXTRA, EXTRA, EXTRA],
};

function pick<T>(items: readonly T[], n: number): T {
  return items[n % items.length] as T;
}

function randomRow(table: string, layout: TableLayout, values: readonly number[]): Row {
  const v = (i: number): number => values[i % values.length] ?? 0;
  if (table === 'a') return [pick(A_K1, v(0)), pick(A_K2, v(1)), pick(A_V, v(2)), pick(A_W, v(3))];
  const row: Value[] = [pick(B_C0, v(0)), pick(B_C1, v(1)), pick(B_C2, v(2))];
  for (let c = 3; c < layout.columnCount; c++) row.push(pick(EXTRA, v(c)));
  return row;
}

export function project(row: Row, columns: readonly number[]): Key {
  return columns.map((c) => row[c] as Value);
}

export function cloneState(state: ModelState): ModelState {
  const out: ModelState = new Map();
  for (const [name, table] of state) out.set(name, { layout: table.layout, indexes: new Map(table.indexes), rows: [...table.rows] });
  return out;
}

function findRow(table: ModelTable, key: Key): number {
  return table.rows.findIndex((row) => compareKeys(project(row, table.layout.primaryKey), key) === 0);
}

function uniqueOk(table: ModelTable, row: Row, except: Key | undefined): boolean {
  for (const index of table.indexes.values()) {
    if (!index.unique) continue;
    const key = project(row, index.columns);
    if (key.some((value) => value === null)) continue;
    for (const other of table.rows) {
      if (except !== undefined && compareKeys(project(other, table.layout.primaryKey), except) === 0) continue;
      if (compareKeys(project(other, index.columns), key) === 0) return false;
    }
  }
  return true;
}

/** Applies a statement to a model state (which the caller has copied). */
export function applyToModel(state: ModelState, statement: Statement): void {
  switch (statement.kind) {
    case 'createTable':
      state.set(statement.table, { layout: statement.layout, indexes: new Map(), rows: [] });
      return;
    case 'dropTable':
      state.delete(statement.table);
      return;
    case 'createIndex':
      (state.get(statement.table) as ModelTable).indexes.set(statement.index, statement.layout);
      return;
    case 'dropIndex':
      (state.get(statement.table) as ModelTable).indexes.delete(statement.index);
      return;
    case 'alter': {
      const table = state.get(statement.table) as ModelTable;
      state.set(statement.table, {
        layout: statement.layout, indexes: new Map(table.indexes), rows: table.rows.map((row) => [...row, statement.fill]),
      });
      return;
    }
    case 'insert':
      (state.get(statement.table) as ModelTable).rows.push(statement.row);
      return;
    case 'update': {
      const table = state.get(statement.table) as ModelTable;
      const at = findRow(table, statement.key);
      assert(at >= 0, 'model update of a present row');
      table.rows[at] = statement.row;
      return;
    }
    case 'delete': {
      const table = state.get(statement.table) as ModelTable;
      const at = findRow(table, statement.key);
      assert(at >= 0, 'model delete of a present row');
      table.rows.splice(at, 1);
      return;
    }
  }
}

/** Turns an intent into a statement valid against `state`, or undefined when it does not fit. */
export function interpret(state: ModelState, intent: Intent): Statement | undefined {
  const name = pick(TABLES, intent.pick);
  const table = state.get(name);
  if (intent.kind < 8) {
    if (table === undefined) return { kind: 'createTable', table: name, layout: BASE_LAYOUT[name] as TableLayout };
    if (intent.kind < 2) return { kind: 'dropTable', table: name };
    if (intent.kind < 4 && name === 'b' && table.layout.columnCount < COLUMNS_MAX_B) {
      return {
        kind: 'alter', table: name, layout: { primaryKey: table.layout.primaryKey, columnCount: table.layout.columnCount + 1 },
        fill: pick(EXTRA, intent.values[0] ?? 0),
      };
    }
    const [index, layout] = pick(INDEXES[name] as readonly [string, IndexLayout][], intent.values[1] ?? 0);
    if (table.indexes.has(index)) return { kind: 'dropIndex', table: name, index };
    const probe: ModelTable = { layout: table.layout, indexes: new Map(), rows: [] };
    probe.indexes.set(index, layout);
    for (const row of table.rows) {
      if (!uniqueOk(probe, row, undefined)) return undefined;
      probe.rows.push(row);
    }
    return { kind: 'createIndex', table: name, index, layout };
  }
  if (table === undefined) return undefined;
  if (intent.kind < 50 || table.rows.length === 0) {
    const row = randomRow(name, table.layout, intent.values);
    if (findRow(table, project(row, table.layout.primaryKey)) >= 0 || !uniqueOk(table, row, undefined)) return undefined;
    return { kind: 'insert', table: name, row };
  }
  const old = pick(table.rows, intent.values[5] ?? 0);
  const key = project(old, table.layout.primaryKey);
  if (intent.kind >= 85) return { kind: 'delete', table: name, key };
  const fresh = randomRow(name, table.layout, intent.values);
  const row = intent.flag ? fresh.map((value, c) => (table.layout.primaryKey.includes(c) ? old[c] as Value : value)) : fresh;
  const newKey = project(row, table.layout.primaryKey);
  if (compareKeys(newKey, key) !== 0 && findRow(table, newKey) >= 0) return undefined;
  if (!uniqueOk(table, row, key)) return undefined;
  return { kind: 'update', table: name, key, row };
}

/** A whole history: batches with positions 1, 2, … and the model state after each. */
export class History {
  readonly batches: Batch[] = [];
  /** Per tenant: [position, state] after each commit, starting with the empty state at 0. */
  readonly states = new Map<number, [number, ModelState][]>(TENANTS.map((t) => [t, [[0, new Map()]]]));

  constructor(batches: readonly { tenant: number; abort: boolean; intents: readonly Intent[] }[]) {
    let at = 0;
    for (const spec of batches) {
      at += 1;
      const tenant = pick(TENANTS, spec.tenant);
      const list = this.states.get(tenant) as [number, ModelState][];
      const state = cloneState((list[list.length - 1] as [number, ModelState])[1]);
      const statements: Statement[] = [];
      for (const intent of spec.intents) {
        const statement = interpret(state, intent);
        if (statement === undefined) continue;
        applyToModel(state, statement);
        statements.push(statement);
      }
      this.batches.push({ tenant, position: at, statements, abort: spec.abort });
      if (!spec.abort) list.push([at, state]);
    }
  }

  get lastPosition(): number {
    return this.batches.length;
  }

  stateAt(tenant: number, at: number): ModelState {
    const list = this.states.get(tenant) as [number, ModelState][];
    let found = (list[0] as [number, ModelState])[1];
    for (const [p, state] of list) if (p <= at) found = state;
    return found;
  }
}

export function applyStatement(writer: TableWriter, statement: Statement): void {
  switch (statement.kind) {
    case 'createTable': return writer.createTable(statement.table, statement.layout);
    case 'dropTable': return writer.dropTable(statement.table);
    case 'createIndex': return writer.createIndex(statement.table, statement.index, statement.layout);
    case 'dropIndex': return writer.dropIndex(statement.table, statement.index);
    case 'alter': return writer.alterTable(statement.table, statement.layout, (row) => [...row, statement.fill]);
    case 'insert': return writer.insert(statement.table, statement.row);
    case 'update': return writer.update(statement.table, statement.key, statement.row);
    case 'delete': return writer.delete(statement.table, statement.key);
  }
}

/** Applies one batch plainly: begin, statements, commit or abort (then advance past it). */
export function applyBatch(store: Store, batch: Batch): void {
  const writer = store.begin(tenantId(batch.tenant), position(batch.position));
  for (const statement of batch.statements) applyStatement(writer, statement);
  if (batch.abort) {
    writer.abort();
    store.advance(position(batch.position));
  } else {
    writer.commit();
  }
}

// ---- comparing a reader with a model state ----

export function sameValue(a: Value, b: Value): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && compareBytes(a, b) === 0;
  }
  if (typeof a === 'object') return canonicalJson(a as JsonValue) === canonicalJson(b as JsonValue);
  return compareValues(a, b) === 0;
}

export function sameRows(actual: readonly Row[], expected: readonly Row[]): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as Row;
    const e = expected[i] as Row;
    if (a.length !== e.length) return false;
    for (let c = 0; c < a.length; c++) if (!sameValue(a[c] as Value, e[c] as Value)) return false;
  }
  return true;
}

export function describeRows(rows: readonly Row[]): string {
  return JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `bytes:${[...v]}` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

function expectRows(actual: readonly Row[], expected: readonly Row[], what: string): void {
  if (!sameRows(actual, expected)) {
    throw new Error(`${what}: got ${describeRows(actual)}, expected ${describeRows(expected)}`);
  }
}

function prefixCompare(key: Key, bound: Key): number {
  return compareKeys(key.slice(0, bound.length), bound);
}

function inRange(key: Key, range: KeyRange): boolean {
  if (range.lower !== undefined) {
    const c = prefixCompare(key, range.lower.key);
    if (c < 0 || (c === 0 && !range.lower.inclusive)) return false;
  }
  if (range.upper !== undefined) {
    const c = prefixCompare(key, range.upper.key);
    if (c > 0 || (c === 0 && !range.upper.inclusive)) return false;
  }
  return true;
}

function randomBound(rng: Prng, domains: readonly (readonly Value[])[], columns: readonly number[]): KeyBound {
  const length = rng.range(1, columns.length);
  const key = columns.slice(0, length).map((c) => rng.pick(domains[c] as readonly Value[]));
  return { key, inclusive: rng.chance(0.5) };
}

function randomRange(rng: Prng, table: string, columns: readonly number[]): KeyRange | undefined {
  const domains = KEY_DOMAINS[table] as readonly (readonly Value[])[];
  const choice = rng.int(4);
  if (choice === 0) return undefined;
  const lower = choice !== 2 ? randomBound(rng, domains, columns) : undefined;
  const upper = choice !== 1 ? randomBound(rng, domains, columns) : undefined;
  return { ...(lower === undefined ? {} : { lower }), ...(upper === undefined ? {} : { upper }) };
}

function sortBy(rows: readonly Row[], columns: readonly number[]): Row[] {
  return [...rows].sort((x, y) => compareKeys(project(x, columns), project(y, columns)));
}

/** Compares every read of `reader` with `state`, with random ranges drawn from `rng`. */
export function compareWithModel(reader: TableReader & { hasIndex(table: string, index: string): boolean },
  state: ModelState, rng: Prng, what: string): void {
  for (const name of TABLES) {
    const table = state.get(name);
    if (reader.hasTable(name) !== (table !== undefined)) throw new Error(`${what}: hasTable(${name})`);
    if (table === undefined) continue;
    const pk = table.layout.primaryKey;
    const ordered = sortBy(table.rows, pk);
    if (reader.rowCount(name) !== table.rows.length) throw new Error(`${what}: rowCount(${name}) ${reader.rowCount(name)} vs ${table.rows.length}`);
    expectRows([...reader.scan(name)], ordered, `${what}: scan ${name}`);
    expectRows([...reader.scan(name, { reverse: true })], [...ordered].reverse(), `${what}: reverse scan ${name}`);
    for (let i = 0; i < 3; i++) {
      const range = randomRange(rng, name, pk);
      const reverse = rng.chance(0.5);
      const expected = ordered.filter((row) => range === undefined || inRange(project(row, pk), range));
      const options = { ...(range === undefined ? {} : { range }), reverse };
      expectRows([...reader.scan(name, options)], reverse ? expected.reverse() : expected,
        `${what}: scan ${name} ${describeRows([range as unknown as Row ?? []])} reverse=${reverse}`);
    }
    for (const row of table.rows.slice(0, 4)) {
      const got = reader.get(name, project(row, pk));
      if (got === undefined || !sameRows([got], [row])) throw new Error(`${what}: get ${name} ${describeRows([row])}`);
    }
    const domains = KEY_DOMAINS[name] as readonly (readonly Value[])[];
    const probeKey = pk.map((c) => rng.pick(domains[c] as readonly Value[]));
    const probeExpected = table.rows.find((row) => compareKeys(project(row, pk), probeKey) === 0);
    const probeGot = reader.get(name, probeKey);
    if ((probeGot === undefined) !== (probeExpected === undefined) ||
      (probeGot !== undefined && !sameRows([probeGot], [probeExpected as Row]))) {
      throw new Error(`${what}: get probe ${name} ${describeRows([probeKey])}`);
    }
    for (const index of INDEX_NAMES[name] as readonly string[]) {
      const layout = table.indexes.get(index);
      if (reader.hasIndex(name, index) !== (layout !== undefined)) throw new Error(`${what}: hasIndex(${name}, ${index})`);
      if (layout === undefined) continue;
      const byIndex = sortBy(table.rows, [...layout.columns, ...pk]);
      expectRows([...reader.indexScan(name, index)], byIndex, `${what}: indexScan ${name}.${index}`);
      const range = randomRange(rng, name, layout.columns);
      const reverse = rng.chance(0.5);
      const expected = byIndex.filter((row) => range === undefined || inRange(project(row, layout.columns), range));
      const options = { ...(range === undefined ? {} : { range }), reverse };
      expectRows([...reader.indexScan(name, index, options)], reverse ? expected.reverse() : expected,
        `${what}: indexScan ${name}.${index} range reverse=${reverse}`);
    }
  }
}
