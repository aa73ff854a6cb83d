import { assert, assertNever, canonicalJson, limits, SQL_TYPES, type JsonValue, type SqlType, type TableLayout, type IndexLayout, type Value } from '@veritydb/types';
import { sqlError, type Result } from './errors.js';
import { valueHasType } from './values.js';

/**
 * One tenant's schema. Immutable: DDL produces a `CatalogChange` value, the caller applies it
 * with `applyCatalogChange` (the kernel does so at apply time, in log order) and checkpoints
 * the catalog with `encodeCatalog`, whose output is canonical (equal catalogs, equal bytes).
 *
 * Every table has a PRIMARY KEY: VerityDB addresses each row's history by it, and a hidden
 * rowid would make that history depend on insertion order. CREATE TABLE without one is refused.
 * UNIQUE constraints are unique indexes (named as PostgreSQL names them: `<table>_<cols>_key`).
 * Index names are unique per tenant, like PostgreSQL's per-schema relation names.
 *
 * @example
 *   let catalog = emptyCatalog();
 *   const r = execute(prepare('CREATE TABLE p (id BIGINT PRIMARY KEY)'), [], { catalog, writer });
 *   if (r.ok && r.result.catalogChange) catalog = applyCatalogChange(catalog, r.result.catalogChange);
 */
export interface ColumnDef {
  readonly name: string;
  readonly type: SqlType;
  readonly notNull: boolean;
  /** The constant default (evaluated when the table was created), or null for none (NULL). */
  readonly default: Value | null;
}

export interface IndexDef {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
}

export interface TableDef {
  readonly name: string;
  readonly columns: readonly ColumnDef[];
  readonly primaryKey: readonly string[];
  /** Sorted by name. */
  readonly indexes: readonly IndexDef[];
}

/** A projection (DESIGN §8): its rows live in the table of the same name in `tables` (so it is
 * read like a table); this records how it is derived. `sql` is the CREATE PROJECTION text. */
export interface ProjectionDef {
  readonly name: string;
  readonly sql: string;
  /** The base tables it reads, in FROM order. */
  readonly tables: readonly string[];
}

export interface Catalog {
  /** Sorted by name. */
  readonly tables: readonly TableDef[];
  /** Sorted by name; absent when there are none (so older catalogs encode unchanged). */
  readonly projections?: readonly ProjectionDef[];
}

export type CatalogChange =
  | { readonly kind: 'createTable'; readonly table: TableDef }
  | { readonly kind: 'dropTable'; readonly name: string }
  | { readonly kind: 'createIndex'; readonly table: string; readonly index: IndexDef }
  | { readonly kind: 'dropIndex'; readonly table: string; readonly name: string }
  | { readonly kind: 'addColumn'; readonly table: string; readonly column: ColumnDef }
  | { readonly kind: 'dropColumn'; readonly table: string; readonly name: string }
  | { readonly kind: 'createProjection'; readonly table: TableDef; readonly projection: ProjectionDef }
  | { readonly kind: 'dropProjection'; readonly name: string };

export function emptyCatalog(): Catalog {
  return { tables: [] };
}

export function findTable(catalog: Catalog, name: string): TableDef | undefined {
  return catalog.tables.find((t) => t.name === name);
}

export function findIndex(catalog: Catalog, name: string): { table: TableDef; index: IndexDef } | undefined {
  for (const table of catalog.tables) {
    const index = table.indexes.find((i) => i.name === name);
    if (index !== undefined) return { table, index };
  }
  return undefined;
}

export function findProjection(catalog: Catalog, name: string): ProjectionDef | undefined {
  return catalog.projections?.find((p) => p.name === name);
}

/** Projections that read `table`, in name order. */
export function projectionsOn(catalog: Catalog, table: string): readonly ProjectionDef[] {
  return catalog.projections?.filter((p) => p.tables.includes(table)) ?? [];
}

function withProjections(tables: readonly TableDef[], projections: readonly ProjectionDef[]): Catalog {
  return projections.length === 0 ? { tables } : { tables, projections };
}

export function columnIndex(table: TableDef, name: string): number {
  return table.columns.findIndex((c) => c.name === name);
}

/** The store layout of a table (column positions of the primary key). */
export function tableLayout(table: TableDef): TableLayout {
  return { primaryKey: table.primaryKey.map((c) => positionOf(table, c)), columnCount: table.columns.length };
}

export function indexLayout(table: TableDef, index: IndexDef): IndexLayout {
  return { columns: index.columns.map((c) => positionOf(table, c)), unique: index.unique };
}

function positionOf(table: TableDef, column: string): number {
  const i = columnIndex(table, column);
  assert(i >= 0, `column ${column} of ${table.name} exists`);
  return i;
}

function byName<T extends { readonly name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function replaceTable(catalog: Catalog, table: TableDef): Catalog {
  return withProjections(catalog.tables.map((t) => (t.name === table.name ? table : t)), catalog.projections ?? []);
}

function mustTable(catalog: Catalog, name: string): TableDef {
  const table = findTable(catalog, name);
  assert(table !== undefined, `catalog change names an existing table ${name}`);
  return table;
}

/** Applies a change produced by `execute`. Changes are checked when produced; here a change
 * that does not fit the catalog is a caller bug (applied out of order) and asserts. */
export function applyCatalogChange(catalog: Catalog, change: CatalogChange): Catalog {
  switch (change.kind) {
    case 'createTable': {
      assert(findTable(catalog, change.table.name) === undefined, `table ${change.table.name} is new`);
      assert(catalog.tables.length < limits.tenantTablesMax, 'table count within limit');
      checkTableDef(change.table);
      return withProjections([...catalog.tables, change.table].sort(byName), catalog.projections ?? []);
    }
    case 'dropTable': {
      mustTable(catalog, change.name);
      assert(findProjection(catalog, change.name) === undefined && (catalog.projections ?? []).every((p) => !p.tables.includes(change.name)), `no projection depends on ${change.name}`);
      return withProjections(catalog.tables.filter((t) => t.name !== change.name), catalog.projections ?? []);
    }
    case 'createIndex': {
      const table = mustTable(catalog, change.table);
      assert(findIndex(catalog, change.index.name) === undefined, `index ${change.index.name} is new`);
      const next = { ...table, indexes: [...table.indexes, change.index].sort(byName) };
      checkTableDef(next, findProjection(catalog, table.name) !== undefined);
      return replaceTable(catalog, next);
    }
    case 'dropIndex': {
      const table = mustTable(catalog, change.table);
      assert(table.indexes.some((i) => i.name === change.name), `index ${change.name} exists`);
      return replaceTable(catalog, { ...table, indexes: table.indexes.filter((i) => i.name !== change.name) });
    }
    case 'addColumn': {
      const table = mustTable(catalog, change.table);
      const next = { ...table, columns: [...table.columns, change.column] };
      checkTableDef(next);
      return replaceTable(catalog, next);
    }
    case 'dropColumn': {
      const table = mustTable(catalog, change.table);
      assert(!table.primaryKey.includes(change.name), 'a primary-key column is never dropped');
      const next = {
        ...table,
        columns: table.columns.filter((c) => c.name !== change.name),
        indexes: table.indexes.filter((i) => !i.columns.includes(change.name)),
      };
      assert(next.columns.length === table.columns.length - 1, `column ${change.name} exists`);
      checkTableDef(next);
      return replaceTable(catalog, next);
    }
    case 'createProjection': {
      assert(findTable(catalog, change.table.name) === undefined && change.projection.name === change.table.name, `projection ${change.table.name} is new`);
      for (const t of change.projection.tables) mustTable(catalog, t);
      checkTableDef(change.table, true);
      return withProjections([...catalog.tables, change.table].sort(byName), [...(catalog.projections ?? []), change.projection].sort(byName));
    }
    case 'dropProjection': {
      mustTable(catalog, change.name);
      assert(findProjection(catalog, change.name) !== undefined, `projection ${change.name} exists`);
      return withProjections(catalog.tables.filter((t) => t.name !== change.name), (catalog.projections ?? []).filter((p) => p.name !== change.name));
    }
    default: return assertNever(change);
  }
}

/** `projection`: the table of a projection, which has no primary-key column when it is an
 * aggregate without GROUP BY (one row, keyed in the store by a hidden column). */
function checkTableDef(table: TableDef, projection = false): void {
  assert(table.columns.length >= 1 && table.columns.length <= limits.tableColumnsMax, 'column count within limit');
  assert(new Set(table.columns.map((c) => c.name)).size === table.columns.length, 'column names unique');
  assert(table.primaryKey.length >= 1 || projection, 'a primary key');
  for (const c of table.primaryKey) assert(columnIndex(table, c) >= 0, `primary-key column ${c} exists`);
  for (const index of table.indexes) {
    for (const c of index.columns) assert(columnIndex(table, c) >= 0, `index column ${c} exists`);
  }
  for (const c of table.columns) {
    assert((SQL_TYPES as readonly string[]).includes(c.type), `known type ${c.type}`);
    assert(c.default === null || valueHasType(c.default, c.type), `default of ${c.name} has type ${c.type}`);
  }
}

type EncodedValue = JsonValue;

function encodeValue(value: Value): EncodedValue {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('') };
  if (value !== null && typeof value === 'object') return { $json: value as JsonValue };
  return value;
}

function decodeValue(encoded: unknown): Value {
  if (encoded === null || typeof encoded !== 'object') return encoded as Value;
  const o = encoded as Record<string, unknown>;
  if (typeof o['$bigint'] === 'string') return BigInt(o['$bigint']);
  if (typeof o['$bytes'] === 'string') {
    const hex = o['$bytes'];
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  return o['$json'] as JsonValue;
}

/** Format 4 marks catalogs with projections whose state is laid out as this version keeps it
 * (join-column indexes on the base tables, not tables of their own; one extremes row per
 * MIN/MAX input, except where a base-table index on the group's columns and the argument
 * orders the inputs). Catalogs with projections in formats 1 to 3 are refused, as their state
 * would be misread. */
const CATALOG_FORMAT = 4;
const CATALOG_FORMAT_WITHOUT_PROJECTIONS = 1;
const CATALOG_FORMATS_OLD_PROJECTIONS: readonly unknown[] = [2, 3];

/** Canonical JSON text of a catalog (object keys sorted): equal catalogs give equal text. */
export function encodeCatalog(catalog: Catalog): string {
  const projections = catalog.projections !== undefined && catalog.projections.length > 0;
  return canonicalJson({
    format: projections ? CATALOG_FORMAT : CATALOG_FORMAT_WITHOUT_PROJECTIONS,
    tables: catalog.tables.map((t) => ({
      name: t.name,
      columns: t.columns.map((c) => ({ name: c.name, type: c.type, notNull: c.notNull, default: encodeValue(c.default) })),
      primaryKey: [...t.primaryKey],
      indexes: t.indexes.map((i) => ({ name: i.name, columns: [...i.columns], unique: i.unique })),
    })),
    ...(catalog.projections === undefined || catalog.projections.length === 0 ? {} : {
      projections: catalog.projections.map((p) => ({ name: p.name, sql: p.sql, tables: [...p.tables] })),
    }),
  });
}

/** Parses `encodeCatalog` output, checking its shape before trusting any field. */
export function decodeCatalog(text: string): Result<Catalog> {
  const bad = (why: string): Result<Catalog> => ({ ok: false, error: sqlError('InvalidCatalog', `invalid catalog: ${why}`) });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (raw === null || typeof raw !== 'object') return bad('not an object');
  const root = raw as Record<string, unknown>;
  const older = CATALOG_FORMATS_OLD_PROJECTIONS.includes(root['format']);
  if (root['format'] !== CATALOG_FORMAT && root['format'] !== CATALOG_FORMAT_WITHOUT_PROJECTIONS && !older) return bad(`unknown format ${String(root['format'])}`);
  if ((root['format'] === CATALOG_FORMAT_WITHOUT_PROJECTIONS || older) && root['projections'] !== undefined) {
    return bad('projections saved by an older version keep their state in a layout this version does not read: rebuild the state from the log');
  }
  if (root['format'] !== CATALOG_FORMAT_WITHOUT_PROJECTIONS && root['projections'] === undefined) return bad(`format ${String(root['format'])} without projections`);
  if (!Array.isArray(root['tables'])) return bad('tables missing');
  const tables: TableDef[] = [];
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  for (const t of root['tables'] as unknown[]) {
    const o = t as Record<string, unknown>;
    if (typeof o['name'] !== 'string' || !Array.isArray(o['columns']) || !isStrings(o['primaryKey']) || !Array.isArray(o['indexes'])) {
      return bad('malformed table');
    }
    const columns: ColumnDef[] = [];
    for (const c of o['columns'] as unknown[]) {
      const co = c as Record<string, unknown>;
      const type = co['type'];
      if (typeof co['name'] !== 'string' || typeof type !== 'string' || !(SQL_TYPES as readonly string[]).includes(type) ||
        typeof co['notNull'] !== 'boolean') return bad('malformed column');
      const value = decodeValue(co['default']);
      if (!valueHasType(value, type as SqlType)) return bad(`default of ${co['name']} does not match its type`);
      columns.push({ name: co['name'], type: type as SqlType, notNull: co['notNull'], default: value });
    }
    const indexes: IndexDef[] = [];
    for (const i of o['indexes'] as unknown[]) {
      const io = i as Record<string, unknown>;
      if (typeof io['name'] !== 'string' || !isStrings(io['columns']) || typeof io['unique'] !== 'boolean') return bad('malformed index');
      indexes.push({ name: io['name'], columns: io['columns'], unique: io['unique'] });
    }
    const table: TableDef = { name: o['name'], columns, primaryKey: o['primaryKey'], indexes };
    const names = new Set(columns.map((c) => c.name));
    // Only a projection may have no primary-key column (checked below, once projections are read).
    if (names.size !== columns.length || ![...table.primaryKey, ...indexes.flatMap((i) => i.columns)].every((c) => names.has(c))) {
      return bad(`table ${table.name} is inconsistent`);
    }
    tables.push(table);
  }
  const projections: ProjectionDef[] = [];
  if (root['projections'] !== undefined) {
    if (!Array.isArray(root['projections'])) return bad('projections malformed');
    for (const p of root['projections'] as unknown[]) {
      const o = p as Record<string, unknown>;
      if (typeof o['name'] !== 'string' || typeof o['sql'] !== 'string' || !isStrings(o['tables'])) return bad('malformed projection');
      if (!tables.some((t) => t.name === o['name']) || !o['tables'].every((n) => tables.some((t) => t.name === n))) return bad(`projection ${o['name']} is inconsistent`);
      projections.push({ name: o['name'], sql: o['sql'], tables: o['tables'] });
    }
  }
  const keyless = tables.find((t) => t.primaryKey.length === 0 && !projections.some((p) => p.name === t.name));
  if (keyless !== undefined) return bad(`table ${keyless.name} is inconsistent`);
  return { ok: true, value: withProjections(tables.sort(byName), projections.sort(byName)) };
}
