import { assert, type IndexLayout, type TableLayout, type TenantId } from '@veritydb/types';
import { ByteReader, DecodeError, type ByteWriter } from './codec.js';
import { TableState, type IndexState, type Lifetime } from './table.js';
import { compareTreeKeys, entryKey, NEVER, project, type Version } from './tree.js';

/** One tenant's applier state: its catalog of table incarnations. */
export interface TenantTables {
  readonly id: TenantId;
  readonly tables: Map<string, TableState[]>;
}

/**
 * The canonical encoding of every tenant's tables with their whole retained history: the body
 * of a checkpoint and the input of the state hash. Canonical means independent of tree shape,
 * of insertion order and of how writes were batched: tenants by id, names sorted, incarnations
 * oldest first, versions in key order. Index trees and row counts are derived from the versions
 * and not encoded; index catalogs are.
 *
 *   state  := varuint tenantCount, tenant*
 *   tenant := varuint id, varuint nameCount, (string name, varuint n, table{n})*
 *   table  := lifetime, varuint columnCount, columns(primaryKey),
 *             varuint indexNameCount, (string name, varuint n, index{n})*,
 *             varuint versionCount, (varuint createdAt, position deletedAt, value{columnCount})*
 *   index  := lifetime, u8 unique, columns
 *   lifetime := varuint createdAt, position droppedAt      position: varuint, 0 = never
 */
export function encodeState(writer: ByteWriter, tenants: readonly TenantTables[]): void {
  writer.varuint(tenants.length);
  for (const tenant of tenants) {
    writer.varuint(tenant.id);
    const names = sortedNonEmpty(tenant.tables);
    writer.varuint(names.length);
    for (const name of names) {
      const list = tenant.tables.get(name) as TableState[];
      writer.string(name);
      writer.varuint(list.length);
      for (const table of list) encodeTable(writer, table);
    }
  }
}

function encodeTable(writer: ByteWriter, table: TableState): void {
  encodeLifetime(writer, table);
  writer.varuint(table.layout.columnCount);
  encodeColumns(writer, table.layout.primaryKey);
  const indexNames = sortedNonEmpty(table.indexes);
  writer.varuint(indexNames.length);
  for (const name of indexNames) {
    const list = table.indexes.get(name) as IndexState[];
    writer.string(name);
    writer.varuint(list.length);
    for (const index of list) {
      encodeLifetime(writer, index);
      writer.u8(index.layout.unique ? 1 : 0);
      encodeColumns(writer, index.layout.columns);
    }
  }
  writer.varuint(table.primary.size);
  for (const [, version] of table.primary.entries()) {
    writer.varuint(version.createdAt);
    encodePosition(writer, version.deletedAt);
    assert(version.row.length === table.layout.columnCount, 'stored rows match their layout');
    for (const value of version.row) writer.value(value);
  }
}

function sortedNonEmpty<T>(map: ReadonlyMap<string, readonly T[]>): string[] {
  const names: string[] = [];
  for (const [name, list] of map) if (list.length > 0) names.push(name);
  return names.sort();
}

function encodeLifetime(writer: ByteWriter, lifetime: Lifetime): void {
  writer.varuint(lifetime.createdAt);
  encodePosition(writer, lifetime.droppedAt);
}

function encodePosition(writer: ByteWriter, position: number): void {
  writer.varuint(position === NEVER ? 0 : position);
}

function encodeColumns(writer: ByteWriter, columns: readonly number[]): void {
  writer.varuint(columns.length);
  for (const column of columns) writer.varuint(column);
}

/** Decodes what `encodeState` wrote, checking every structural invariant (DecodeError if not):
 * a checksum says the bytes are what was written, not that the writer was right. */
export function decodeState(reader: ByteReader, lastPosition: number): Map<number, Map<string, TableState[]>> {
  const tenants = new Map<number, Map<string, TableState[]>>();
  const tenantCount = reader.varuint();
  let previousId = -1;
  for (let t = 0; t < tenantCount; t++) {
    const id = reader.varuint();
    check(id > previousId, 'tenants in increasing id order');
    previousId = id;
    const tables = new Map<string, TableState[]>();
    const nameCount = reader.varuint();
    let previousName: string | undefined;
    for (let n = 0; n < nameCount; n++) {
      const name = reader.string();
      check(previousName === undefined || previousName < name, 'table names in increasing order');
      previousName = name;
      const count = reader.varuint();
      check(count >= 1, 'a listed table has an incarnation');
      const list: TableState[] = [];
      for (let i = 0; i < count; i++) {
        const table = decodeTable(reader, name, lastPosition);
        const previous = list[list.length - 1];
        check(previous === undefined || previous.droppedAt <= table.createdAt, 'table incarnations do not overlap');
        list.push(table);
      }
      tables.set(name, list);
    }
    tenants.set(id, tables);
  }
  return tenants;
}

function decodeTable(reader: ByteReader, name: string, lastPosition: number): TableState {
  const lifetime = decodeLifetime(reader, lastPosition);
  const columnCount = reader.varuint();
  check(columnCount >= 1, 'a table has columns');
  const primaryKey = decodeColumns(reader, columnCount);
  const layout: TableLayout = Object.freeze({ primaryKey, columnCount });
  const indexes = new Map<string, (Lifetime & { readonly layout: IndexLayout })[]>();
  const indexNameCount = reader.varuint();
  let previousName: string | undefined;
  for (let n = 0; n < indexNameCount; n++) {
    const indexName = reader.string();
    check(previousName === undefined || previousName < indexName, 'index names in increasing order');
    previousName = indexName;
    const count = reader.varuint();
    check(count >= 1, 'a listed index has an incarnation');
    const list: (Lifetime & { readonly layout: IndexLayout })[] = [];
    for (let i = 0; i < count; i++) {
      const indexLifetime = decodeLifetime(reader, lastPosition);
      check(indexLifetime.createdAt >= lifetime.createdAt && indexLifetime.createdAt < lifetime.droppedAt, 'an index lives within its table');
      const unique = reader.u8();
      check(unique <= 1, 'unique flag is a boolean');
      const columns = decodeColumns(reader, columnCount);
      const previous = list[list.length - 1];
      check(previous === undefined || previous.droppedAt <= indexLifetime.createdAt, 'index incarnations do not overlap');
      list.push({ ...indexLifetime, layout: Object.freeze({ columns, unique: unique === 1 }) });
    }
    indexes.set(indexName, list);
  }
  const versions = decodeVersions(reader, layout, lifetime, lastPosition);
  return TableState.fromVersions(name, layout, lifetime, versions, indexes);
}

function decodeVersions(reader: ByteReader, layout: TableLayout, lifetime: Lifetime, lastPosition: number): Version[] {
  const count = reader.varuint();
  check(count <= reader.remaining, 'version count fits the input');
  const versions: Version[] = [];
  let previous: { key: ReturnType<typeof entryKey>; version: Version } | undefined;
  for (let i = 0; i < count; i++) {
    const createdAt = reader.varuint();
    const deletedAt = decodePosition(reader);
    check(createdAt >= lifetime.createdAt && createdAt < deletedAt && createdAt < lifetime.droppedAt &&
      (deletedAt === NEVER || deletedAt < lifetime.droppedAt), 'version within its table');
    check(createdAt <= lastPosition && (deletedAt === NEVER || deletedAt <= lastPosition), 'version not after the last position');
    const row = [];
    for (let c = 0; c < layout.columnCount; c++) row.push(reader.value());
    const version: Version = Object.freeze({ createdAt, deletedAt, row: Object.freeze(row) });
    const key = entryKey(project(version.row, layout.primaryKey), createdAt);
    if (previous !== undefined) {
      check(compareTreeKeys(previous.key, key) < 0, 'versions in key order');
      const sameRow = compareTreeKeys({ ...previous.key, createdAt: 0 }, { ...key, createdAt: 0 }) === 0;
      check(!sameRow || previous.version.deletedAt <= createdAt, 'versions of one row do not overlap');
    }
    previous = { key, version };
    versions.push(version);
  }
  return versions;
}

function decodeLifetime(reader: ByteReader, lastPosition: number): Lifetime {
  const createdAt = reader.varuint();
  const droppedAt = decodePosition(reader);
  check(createdAt >= 1 && createdAt <= lastPosition && createdAt < droppedAt, 'lifetime within the log');
  check(droppedAt === NEVER || droppedAt <= lastPosition, 'dropped no later than the last position');
  return { createdAt, droppedAt };
}

function decodePosition(reader: ByteReader): number {
  const value = reader.varuint();
  return value === 0 ? NEVER : value;
}

function decodeColumns(reader: ByteReader, columnCount: number): readonly number[] {
  const length = reader.varuint();
  check(length >= 1 && length <= columnCount, 'key columns count');
  const columns: number[] = [];
  for (let i = 0; i < length; i++) {
    const column = reader.varuint();
    check(column < columnCount && !columns.includes(column), 'key column in range and distinct');
    columns.push(column);
  }
  return Object.freeze(columns);
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new DecodeError(`checkpoint state: ${what}`);
}
