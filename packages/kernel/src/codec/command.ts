import { clientId, limits, tenantId, U128_MAX, type ClientId, type TenantId } from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeFailure } from './bytes.js';
import { readValue, writeValue, type Param } from './value.js';

/**
 * What a log entry asks the kernel to do. The entry header (storage) carries position,
 * timestamp and tenant; the body is an `Envelope`: the actor who asked, and one command.
 *
 * @example
 *   const body = encodeEnvelope({ tenant: tenantId(1), actor: 'ann', command: { kind: 'sql', statements: [{ sql: 'SELECT 1', params: [] }] } });
 *   const decoded = decodeEnvelope(body); // { ok: true, value: { tenant: 1, actor: 'ann', command: … } }
 */
export type Command =
  | TenantCreateCommand
  | TenantDropCommand
  | SqlBatchCommand
  | NoopCommand
  | ClientRegisterCommand;

export interface TenantCreateCommand {
  readonly kind: 'tenant_create';
  readonly id: TenantId;
  readonly name: string;
}

export interface TenantDropCommand {
  readonly kind: 'tenant_drop';
  readonly id: TenantId;
}

/** An atomic batch of statements for the entry's tenant: all apply or none do. */
export interface SqlBatchCommand {
  readonly kind: 'sql';
  readonly statements: readonly Statement[];
}

export interface Statement {
  readonly sql: string;
  readonly params: readonly Param[];
}

/** Does nothing; a new primary commits one to learn its view's commit point. */
export interface NoopCommand {
  readonly kind: 'noop';
}

/** Opens a client session (exactly-once request numbering, DESIGN §5.3). */
export interface ClientRegisterCommand {
  readonly kind: 'client_register';
  readonly client: ClientId;
}

export interface Envelope {
  /** The tenant the entry belongs to (0, the system tenant, for control entries). The body
   * carries it so that any driver can apply the entry from its bytes alone; the log header's
   * tenant (the per-tenant chain) must agree. */
  readonly tenant: TenantId;
  /** Who asked (a token subject, or a local name in embedded mode). Recorded in `__events`. */
  readonly actor: string;
  readonly command: Command;
}

export type CommandKind = Command['kind'];

/** The codec version written into every entry body; bump it on any change to the layout. */
export const COMMAND_FORMAT_VERSION = 1;

/** Operation codes, also written into the log record header's `operation` byte. */
export const OPERATION: Readonly<Record<CommandKind, number>> = Object.freeze({
  noop: 1,
  client_register: 2,
  tenant_create: 3,
  tenant_drop: 4,
  sql: 5,
});

const KIND_BY_OPERATION: ReadonlyMap<number, CommandKind> = new Map(
  (Object.keys(OPERATION) as CommandKind[]).map((kind) => [OPERATION[kind], kind]),
);

export const ACTOR_BYTES_MAX = 256;
export const TENANT_NAME_BYTES_MAX = 256;
export const PARAMS_PER_STATEMENT_MAX = 65_535;

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const writer = new ByteWriter(64);
  writer.u8(COMMAND_FORMAT_VERSION);
  writer.u8(OPERATION[envelope.command.kind]);
  writer.varuint(envelope.tenant);
  writer.string(envelope.actor);
  writeCommand(writer, envelope.command);
  return writer.finish();
}

function writeCommand(writer: ByteWriter, command: Command): void {
  switch (command.kind) {
    case 'tenant_create':
      writer.varuint(command.id).string(command.name);
      return;
    case 'tenant_drop':
      writer.varuint(command.id);
      return;
    case 'sql':
      writer.varuint(command.statements.length);
      for (const statement of command.statements) {
        writer.string(statement.sql);
        writer.varuint(statement.params.length);
        for (const param of statement.params) writeValue(writer, param);
      }
      return;
    case 'noop':
      return;
    case 'client_register':
      writer.bigint(command.client);
      return;
  }
}

/** Decodes an entry body. Never throws on bad input: the body may come from disk or a peer. */
export function decodeEnvelope(body: Uint8Array): Decoded<Envelope> {
  try {
    const reader = new ByteReader(body);
    const version = reader.u8();
    if (version !== COMMAND_FORMAT_VERSION) throw new DecodeFailure(`unknown command format version ${version}`);
    const operation = reader.u8();
    const kind = KIND_BY_OPERATION.get(operation);
    if (kind === undefined) throw new DecodeFailure(`unknown operation ${operation}`);
    const tenant = tenantId(reader.varuint());
    const actor = reader.string();
    if (utf8Length(actor) > ACTOR_BYTES_MAX) throw new DecodeFailure('actor too long');
    const command = readCommand(reader, kind);
    reader.end();
    return { ok: true, value: { tenant, actor, command } };
  } catch (error) {
    if (error instanceof DecodeFailure) return { ok: false, reason: error.message };
    throw error;
  }
}

function readCommand(reader: ByteReader, kind: CommandKind): Command {
  switch (kind) {
    case 'tenant_create': {
      const id = tenantId(reader.varuint());
      const name = reader.string();
      if (utf8Length(name) > TENANT_NAME_BYTES_MAX) throw new DecodeFailure('tenant name too long');
      return { kind, id, name };
    }
    case 'tenant_drop':
      return { kind, id: tenantId(reader.varuint()) };
    case 'sql':
      return { kind, statements: readStatements(reader) };
    case 'noop':
      return { kind };
    case 'client_register': {
      const client = reader.bigint();
      if (client < 0n || client > U128_MAX) throw new DecodeFailure('client id is not a u128');
      return { kind, client: clientId(client) };
    }
  }
}

function readStatements(reader: ByteReader): Statement[] {
  const count = reader.varuint();
  if (count === 0 || count > limits.batchStatementsMax) throw new DecodeFailure(`batch of ${count} statements`);
  const statements: Statement[] = [];
  for (let i = 0; i < count; i++) {
    const sql = reader.string();
    const paramCount = reader.varuint();
    if (paramCount > PARAMS_PER_STATEMENT_MAX) throw new DecodeFailure(`${paramCount} parameters`);
    const params: Param[] = [];
    for (let p = 0; p < paramCount; p++) params.push(readValue(reader));
    statements.push({ sql, params });
  }
  return statements;
}

const UTF8 = new TextEncoder();

function utf8Length(text: string): number {
  return UTF8.encode(text).length;
}

/** Checks a command a caller is about to log; the reason is a message for a person. */
export function validateCommand(envelope: Envelope): string | undefined {
  if (!Number.isSafeInteger(envelope.tenant) || envelope.tenant < 0) return 'tenant id must be a non-negative safe integer';
  if (utf8Length(envelope.actor) > ACTOR_BYTES_MAX) return `actor longer than ${ACTOR_BYTES_MAX} bytes`;
  const command = envelope.command;
  switch (command.kind) {
    case 'tenant_create':
      if (!Number.isSafeInteger(command.id) || command.id < 1) return 'tenant id must be a positive safe integer';
      if (utf8Length(command.name) > TENANT_NAME_BYTES_MAX) return `tenant name longer than ${TENANT_NAME_BYTES_MAX} bytes`;
      return undefined;
    case 'tenant_drop':
      if (!Number.isSafeInteger(command.id) || command.id < 1) return 'tenant id must be a positive safe integer';
      return undefined;
    case 'sql':
      if (command.statements.length === 0) return 'a batch needs at least one statement';
      if (command.statements.length > limits.batchStatementsMax) return `a batch holds at most ${limits.batchStatementsMax} statements`;
      for (const statement of command.statements) {
        if (utf8Length(statement.sql) > limits.sqlTextBytesMax) return `statement longer than ${limits.sqlTextBytesMax} bytes`;
        if (statement.params.length > PARAMS_PER_STATEMENT_MAX) return `more than ${PARAMS_PER_STATEMENT_MAX} parameters`;
      }
      return undefined;
    case 'noop':
    case 'client_register':
      return undefined;
  }
}
