import { assertNever, clientId, SQL_TYPES, tenantId, U128_MAX, type Row, type SqlType, type Value } from '@veritydb/types';
import type { ColumnInfo } from '@veritydb/query';
import type { KernelError, Reply } from '../kernel.js';
import type { StatementOutcome } from '../sql.js';
import { ByteReader, ByteWriter, DecodeFailure } from './bytes.js';
import type { Decoded } from './command.js';
import { readValue, writeValue } from './value.js';

/**
 * Canonical bytes of a `Reply`: what a replica sends back to the client and what the VSR
 * session table caches for duplicate requests. Deterministic (the same reply gives the same
 * bytes on every replica), versioned, and decoded without trusting its input.
 *
 *   version u8 | kind u8 | payload
 *   sql:       count, then per statement: rowsAffected, columns (name, type u8), rows (values)
 *   rejected:  code, sqlState (empty = none), message, statement + 1 (0 = none), line, column (0 = none)
 *
 * @example decodeReply(encodeReply({ kind: 'noop' })) // { ok: true, value: { kind: 'noop' } }
 */
export const REPLY_FORMAT_VERSION = 1;

const KINDS = ['sql', 'tenant_created', 'tenant_dropped', 'noop', 'registered', 'rejected'] as const;
type ReplyKind = (typeof KINDS)[number];

export function encodeReply(reply: Reply): Uint8Array {
  const writer = new ByteWriter(64);
  writer.u8(REPLY_FORMAT_VERSION).u8(KINDS.indexOf(reply.kind));
  switch (reply.kind) {
    case 'sql':
      writer.varuint(reply.statements.length);
      for (const statement of reply.statements) writeStatement(writer, statement);
      break;
    case 'tenant_created':
    case 'tenant_dropped':
      writer.varuint(reply.tenant);
      break;
    case 'noop':
      break;
    case 'registered':
      writer.bigint(reply.client).u8(reply.evicted === null ? 0 : 1);
      if (reply.evicted !== null) writer.bigint(reply.evicted);
      break;
    case 'rejected': {
      const e = reply.error;
      writer.string(e.code).string(e.sqlState ?? '').string(e.message);
      writer.varuint(e.statement === null ? 0 : e.statement + 1).varuint(e.line ?? 0).varuint(e.column ?? 0);
      break;
    }
    default: assertNever(reply);
  }
  return writer.finish();
}

function writeStatement(writer: ByteWriter, statement: StatementOutcome): void {
  writer.varuint(statement.rowsAffected).varuint(statement.columns.length);
  for (const column of statement.columns) writer.string(column.name).u8(SQL_TYPES.indexOf(column.type));
  writer.varuint(statement.rows.length);
  for (const row of statement.rows) for (const value of row) writeValue(writer, value);
}

export function decodeReply(bytes: Uint8Array): Decoded<Reply> {
  try {
    const reader = new ByteReader(bytes);
    const version = reader.u8();
    if (version !== REPLY_FORMAT_VERSION) throw new DecodeFailure(`unknown reply format version ${version}`);
    const kind = KINDS[reader.u8()];
    if (kind === undefined) throw new DecodeFailure('unknown reply kind');
    const reply = readReply(reader, kind);
    reader.end();
    return { ok: true, value: reply };
  } catch (error) {
    if (error instanceof DecodeFailure) return { ok: false, reason: error.message };
    throw error;
  }
}

function readReply(reader: ByteReader, kind: ReplyKind): Reply {
  switch (kind) {
    case 'sql': {
      const count = reader.varuint();
      const statements: StatementOutcome[] = [];
      for (let i = 0; i < count; i++) statements.push(readStatement(reader));
      return { kind, statements };
    }
    case 'tenant_created':
    case 'tenant_dropped':
      return { kind, tenant: tenantId(reader.varuint()) };
    case 'noop':
      return { kind };
    case 'registered': {
      const client = readU128(reader);
      const hasEvicted = reader.u8();
      if (hasEvicted > 1) throw new DecodeFailure('bad evicted flag');
      return { kind, client, evicted: hasEvicted === 1 ? readU128(reader) : null };
    }
    case 'rejected': {
      const code = reader.string();
      const sqlState = reader.string();
      const message = reader.string();
      const statement = reader.varuint();
      const line = reader.varuint();
      const column = reader.varuint();
      const base: KernelError = { code, sqlState: sqlState === '' ? null : sqlState, message, statement: statement === 0 ? null : statement - 1 };
      return { kind, error: line === 0 || column === 0 ? base : { ...base, line, column } };
    }
  }
}

function readStatement(reader: ByteReader): StatementOutcome {
  const rowsAffected = reader.varuint();
  const columnCount = reader.varuint();
  const columns: ColumnInfo[] = [];
  for (let i = 0; i < columnCount; i++) {
    const name = reader.string();
    const type: SqlType | undefined = SQL_TYPES[reader.u8()];
    if (type === undefined) throw new DecodeFailure('unknown column type');
    columns.push({ name, type });
  }
  const rowCount = reader.varuint();
  if (columnCount === 0 && rowCount > 0) throw new DecodeFailure('rows without columns');
  const rows: Row[] = [];
  for (let r = 0; r < rowCount; r++) {
    const row: Value[] = [];
    for (let c = 0; c < columnCount; c++) {
      const value = readValue(reader);
      if (value instanceof Date) throw new DecodeFailure('a Date is a parameter, never a stored value');
      row.push(value);
    }
    rows.push(row);
  }
  return { rowsAffected, columns, rows };
}

function readU128(reader: ByteReader): ReturnType<typeof clientId> {
  const value = reader.bigint();
  if (value < 0n || value > U128_MAX) throw new DecodeFailure('client id is not a u128');
  return clientId(value);
}
