export {
  type Command, type TenantCreateCommand, type TenantDropCommand, type SqlBatchCommand, type Statement,
  type NoopCommand, type ClientRegisterCommand, type Envelope, type CommandKind, type Decoded,
  COMMAND_FORMAT_VERSION, OPERATION, ACTOR_BYTES_MAX, TENANT_NAME_BYTES_MAX, PARAMS_PER_STATEMENT_MAX,
  encodeEnvelope, decodeEnvelope, validateCommand,
} from './codec/command.js';
export { isParam, type Param } from './codec/value.js';
export { TimestampIndex } from './timestamps.js';
export {
  EVENTS_TABLE, EVENT_COLUMNS, EVENT_COLUMN_TYPES, EVENT_TYPES, type EventType, valueToJson,
} from './events.js';
