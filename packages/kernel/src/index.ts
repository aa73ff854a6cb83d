export {
  type Command, type TenantCreateCommand, type TenantDropCommand, type SqlBatchCommand, type Statement,
  type NoopCommand, type ClientRegisterCommand, type Envelope, type CommandKind, type Decoded,
  COMMAND_FORMAT_VERSION, OPERATION, ACTOR_BYTES_MAX, TENANT_NAME_BYTES_MAX, PARAMS_PER_STATEMENT_MAX,
  encodeEnvelope, decodeEnvelope, validateCommand,
} from './codec/command.js';
export { isParam, type Param } from './codec/value.js';
export { TimestampIndex } from './timestamps.js';
export { EVENTS_TABLE, EVENT_COLUMNS, EVENT_TYPES, TENANT_STREAM, type EventType, type PendingEvent, valueToJson } from './events.js';
export { KernelState, type TenantRecord, type CatalogVersion, type SessionRecord, STATE_FORMAT_VERSION } from './state.js';
export {
  Kernel, SYSTEM_TENANT, type ApplyContext, type ApplyResult, type KernelError, type KernelOptions, type Reply, type Restored,
} from './kernel.js';
export type { StatementOutcome, ReadOutcome } from './sql.js';
export { encodeReply, decodeReply, REPLY_FORMAT_VERSION } from './codec/reply.js';
