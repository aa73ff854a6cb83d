import {
  assert, checksumHex, type IndexLayout, type JsonValue, type Key, type Position, type Row, type TableLayout,
  type SqlType, type TableWriter, type Value,
} from '@veritydb/types';
import { EVENTS_TABLE as EVENTS_TABLE_DEF, indexLayout, tableLayout, timestampText, type IndexDef } from '@veritydb/query';

/**
 * Derived events (DESIGN §3, §8): every committed entry yields the events it caused, kept in
 * the store itself as a system table per tenant, `__events`, so history gets MVCC, `AS OF`,
 * checkpoints and the state hash like any table. Columns, in order:
 *
 *   position BIGINT, index INTEGER, stream TEXT, event_type TEXT, key JSON, data JSON,
 *   actor TEXT, timestamp TIMESTAMP, hash TEXT        primary key (position, index)
 *
 * `key` is the primary-key tuple as a JSON array; `data` is the row image as an object keyed by
 * column name (after the change for insert/update, before it for delete), the DDL text for
 * `ddl`, and `{code, message, statement}` for `rejected`. `hash` is the entry's hash in hex.
 */
export const EVENTS_TABLE = EVENTS_TABLE_DEF.name;
/** Column names in row order; the SQL layer's `EVENTS_TABLE` definition is the one source. */
export const EVENT_COLUMNS: readonly string[] = EVENTS_TABLE_DEF.columns.map((c) => c.name);
const EVENTS_LAYOUT: TableLayout = tableLayout(EVENTS_TABLE_DEF);
/** `WHERE stream = 't'` is the common audit query: an index keeps it from scanning every event. */
const EVENTS_STREAM_INDEX: IndexDef = EVENTS_TABLE_DEF.indexes[0] as IndexDef;
const EVENTS_STREAM_LAYOUT: IndexLayout = indexLayout(EVENTS_TABLE_DEF, EVENTS_STREAM_INDEX);
assert(EVENT_COLUMNS.join() === 'position,index,stream,event_type,key,data,actor,timestamp,hash', 'eventRow writes this column order');
/** Stream of events about the tenant itself (creation), which belong to no table. */
export const TENANT_STREAM = '';

export const EVENT_TYPES = ['insert', 'update', 'delete', 'ddl', 'rejected'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Events one entry may derive; an entry that would exceed it is rejected (a named limit). */
export const EVENTS_PER_ENTRY_MAX = 1_000_000;

export interface PendingEvent {
  readonly stream: string;
  readonly eventType: EventType;
  readonly key: JsonValue;
  readonly data: JsonValue;
}

/** Context every event of one entry shares. */
export interface EventStamp {
  readonly position: Position;
  readonly actor: string;
  readonly timestampMicros: number;
  readonly hash: Uint8Array;
}

export function eventRow(stamp: EventStamp, index: number, event: PendingEvent): Row {
  return stampedRow(stampFields(stamp), index, event);
}

/** The columns every event of one entry shares, computed once per entry. */
interface StampFields {
  readonly position: bigint;
  readonly actor: string;
  readonly timestamp: bigint;
  readonly hash: string;
}

function stampFields(stamp: EventStamp): StampFields {
  return { position: BigInt(stamp.position), actor: stamp.actor, timestamp: BigInt(stamp.timestampMicros), hash: checksumHex(stamp.hash) };
}

function stampedRow(fields: StampFields, index: number, event: PendingEvent): Row {
  return [fields.position, index, event.stream, event.eventType, event.key, event.data, fields.actor, fields.timestamp, fields.hash];
}

/** Appends the entry's events to `__events` (the table must exist in this batch's tenant). */
export function writeEvents(writer: TableWriter, stamp: EventStamp, events: readonly PendingEvent[]): void {
  if (events.length > EVENTS_PER_ENTRY_MAX) assert(false, `too many events in one entry: ${events.length}`);
  if (events.length === 0) return;
  const fields = stampFields(stamp);
  // Frozen, the store keeps the row rather than a copy.
  for (let index = 0; index < events.length; index++) writer.insert(EVENTS_TABLE, Object.freeze(stampedRow(fields, index, events[index] as PendingEvent)));
}

export function createEventsTable(writer: TableWriter): void {
  writer.createTable(EVENTS_TABLE, EVENTS_LAYOUT);
  writer.createIndex(EVENTS_TABLE, EVENTS_STREAM_INDEX.name, EVENTS_STREAM_LAYOUT);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/**
 * A value as JSON for `key`/`data`: bigints become numbers when safe (else decimal text),
 * timestamps PostgreSQL's text form, bytes PostgreSQL's `\x…` hex text, non-finite doubles
 * their names.
 */
export function valueToJson(value: Value, type: SqlType): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'bigint':
      if (type === 'TIMESTAMP') return timestampText(value);
      // A safe integer's range, compared as bigints: no bigint made for the round trip.
      return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
    case 'number': return Number.isFinite(value) ? value : String(value);
    case 'boolean':
    case 'string': return value;
    default: return value instanceof Uint8Array ? `\\x${checksumHex(value)}` : value;
  }
}

export function keyToJson(shape: TableShape, key: Key): JsonValue {
  const out = new Array<JsonValue>(key.length);
  for (let i = 0; i < key.length; i++) out[i] = valueToJson(key[i] as Value, shape.types[shape.primaryKey[i] as number] as SqlType);
  return out;
}

/** Like `keyToJson`, but takes `key` over (the caller made it for this event and never
 * changes it): when its values are their own JSON (the common integer and text keys) it is
 * the event's key itself, and no second array is kept for good in the event row. */
export function ownedKeyToJson(shape: TableShape, key: Key): JsonValue {
  return isOwnJson(key) ? key as readonly JsonValue[] as JsonValue : keyToJson(shape, key);
}

function isOwnJson(key: Key): boolean {
  for (let i = 0; i < key.length; i++) {
    const value = key[i] as Value;
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue;
    if (typeof value === 'number' && Number.isFinite(value)) continue;
    return false;
  }
  return true;
}

/** `row` as an object keyed by column name; `length` (default: all) reads only its first
 * columns (a projection's stored row, whose visible columns come first). */
export function rowToJson(shape: TableShape, row: Row, length: number = row.length): JsonValue {
  if (shape.columns.length !== length || row.length < length) assert(false, `row has ${length} values for ${shape.columns.length} columns`);
  const object: Record<string, JsonValue> = {};
  for (let i = 0; i < length; i++) object[shape.columns[i] as string] = valueToJson(row[i] as Value, shape.types[i] as SqlType);
  return object;
}

/** What the recorder needs to know about a table to describe its rows. */
export interface TableShape {
  readonly columns: readonly string[];
  readonly types: readonly SqlType[];
  readonly primaryKey: readonly number[];
}

/**
 * A `TableWriter` that forwards to the store's write batch and records the row events it
 * causes. DDL calls are noted per table so the kernel can emit one `ddl` event per table a
 * statement changed. `shapeOf` must describe tables as they are *before* the current call.
 */
export class RecordingWriter implements TableWriter {
  readonly #inner: TableWriter;
  readonly #shapeOf: (table: string) => TableShape | undefined;
  readonly #events: PendingEvent[] = [];
  #ddlTables: string[] = [];

  constructor(inner: TableWriter, shapeOf: (table: string) => TableShape | undefined) {
    this.#inner = inner;
    this.#shapeOf = shapeOf;
  }

  /** Row events so far, in the order the writes happened. */
  get events(): readonly PendingEvent[] {
    return this.#events;
  }

  /** Appends an event the kernel derived itself (ddl, tenant). */
  record(event: PendingEvent): void {
    this.#events.push(event);
  }

  /** Tables touched by DDL since the last call, in first-touch order; resets the list. */
  takeDdlTables(): readonly string[] {
    const tables = this.#ddlTables;
    this.#ddlTables = [];
    return tables;
  }

  hasTable(table: string): boolean {
    return this.#inner.hasTable(table);
  }
  scan(table: string, options?: Parameters<TableWriter['scan']>[1]): Iterable<Row> {
    return this.#inner.scan(table, options);
  }
  get(table: string, key: Key): Row | undefined {
    return this.#inner.get(table, key);
  }
  indexScan(table: string, index: string, options?: Parameters<TableWriter['indexScan']>[2]): Iterable<Row> {
    return this.#inner.indexScan(table, index, options);
  }
  rowCount(table: string): number {
    return this.#inner.rowCount(table);
  }

  createTable(table: string, layout: TableLayout): void {
    this.#inner.createTable(table, layout);
    this.#noteDdl(table);
  }
  dropTable(table: string): void {
    this.#inner.dropTable(table);
    this.#noteDdl(table);
  }
  createIndex(table: string, index: string, layout: IndexLayout): void {
    this.#inner.createIndex(table, index, layout);
    this.#noteDdl(table);
  }
  dropIndex(table: string, index: string): void {
    this.#inner.dropIndex(table, index);
    this.#noteDdl(table);
  }
  alterTable(table: string, layout: TableLayout, migrate: (row: Row) => Row): void {
    this.#inner.alterTable(table, layout, migrate);
    this.#noteDdl(table);
  }

  insert(table: string, row: Row): void {
    const shape = this.#shape(table);
    this.#inner.insert(table, row);
    this.#events.push({ stream: table, eventType: 'insert', key: ownedKeyToJson(shape, keyOf(shape, row)), data: rowToJson(shape, row) });
  }
  update(table: string, key: Key, row: Row): void {
    const shape = this.#shape(table);
    this.#inner.update(table, key, row);
    this.#events.push({ stream: table, eventType: 'update', key: ownedKeyToJson(shape, keyOf(shape, row)), data: rowToJson(shape, row) });
  }
  delete(table: string, key: Key): void {
    const shape = this.#shape(table);
    const before = this.#inner.get(table, key);
    if (before === undefined) assert(false, `delete of a missing row in ${table}`);
    this.#inner.delete(table, key);
    this.#events.push({ stream: table, eventType: 'delete', key: keyToJson(shape, key), data: rowToJson(shape, before) });
  }

  #shape(table: string): TableShape {
    const shape = this.#shapeOf(table);
    // Every row write passes here: the message is built only on failure.
    if (shape === undefined) assert(false, `no catalog entry for table ${table} being written`);
    return shape;
  }

  #noteDdl(table: string): void {
    if (!this.#ddlTables.includes(table)) this.#ddlTables.push(table);
  }
}

function keyOf(shape: TableShape, row: Row): Key {
  return shape.primaryKey.map((i) => row[i] as Value);
}
