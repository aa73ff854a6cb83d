import { VerityError, type SqlType } from '@veritydb/types';
import { Role as CapRole } from './generated/handshake.js';
import { Consistency as CapConsistency } from './generated/request.js';
import {
  ErrorCode as CapErrorCode, ReplicaRole as CapReplicaRole, ReplicaState as CapReplicaState, SqlType as CapSqlType,
} from './generated/response.js';
import type { Consistency, ErrorCode, ReplicaStatus, Role } from './messages.js';

/** The u128 ids (cluster, client) travel as two UInt64 halves. */
const U64_MASK = (1n << 64n) - 1n;

export function high64(value: bigint): bigint {
  return value >> 64n;
}

export function low64(value: bigint): bigint {
  return value & U64_MASK;
}

export function u128(high: bigint, low: bigint): bigint {
  return (high << 64n) | low;
}

/** Wire ordinals of each enum, taken from the generated code so a reordering cannot slip by. */
export const ROLES: readonly Role[] = ordinals<Role>({ client: CapRole.CLIENT, replica: CapRole.REPLICA });

export const CONSISTENCIES: readonly Consistency[] = ordinals<Consistency>({
  linearizable: CapConsistency.LINEARIZABLE, causal: CapConsistency.CAUSAL, eventual: CapConsistency.EVENTUAL,
  atPosition: CapConsistency.AT_POSITION,
});

export const SQL_TYPE_ORDINALS: readonly SqlType[] = ordinals<SqlType>({
  BIGINT: CapSqlType.BIGINT, INTEGER: CapSqlType.INTEGER, DOUBLE: CapSqlType.DOUBLE, TEXT: CapSqlType.TEXT,
  BOOLEAN: CapSqlType.BOOLEAN, DATE: CapSqlType.DATE, TIMESTAMP: CapSqlType.TIMESTAMP, BYTES: CapSqlType.BYTES,
  JSON: CapSqlType.JSON,
});

export const ERROR_CODE_ORDINALS: readonly ErrorCode[] = ordinals<ErrorCode>({
  NotPrimary: CapErrorCode.NOT_PRIMARY, Unauthorized: CapErrorCode.UNAUTHORIZED, Forbidden: CapErrorCode.FORBIDDEN,
  TenantNotFound: CapErrorCode.TENANT_NOT_FOUND, TenantExists: CapErrorCode.TENANT_EXISTS,
  SqlError: CapErrorCode.SQL_ERROR, ConstraintViolation: CapErrorCode.CONSTRAINT_VIOLATION,
  QuotaExceeded: CapErrorCode.QUOTA_EXCEEDED, Timeout: CapErrorCode.TIMEOUT, Indeterminate: CapErrorCode.INDETERMINATE,
  Overloaded: CapErrorCode.OVERLOADED, BadFrame: CapErrorCode.BAD_FRAME, BadRequest: CapErrorCode.BAD_REQUEST,
  UnsupportedVersion: CapErrorCode.UNSUPPORTED_VERSION, Evicted: CapErrorCode.EVICTED,
  Unavailable: CapErrorCode.UNAVAILABLE, Cancelled: CapErrorCode.CANCELLED, Internal: CapErrorCode.INTERNAL,
  NotSupported: CapErrorCode.NOT_SUPPORTED,
});

export const REPLICA_ROLE_ORDINALS: readonly ReplicaStatus['role'][] = ordinals<ReplicaStatus['role']>({
  primary: CapReplicaRole.PRIMARY, backup: CapReplicaRole.BACKUP, unknown: CapReplicaRole.UNKNOWN,
});

export const REPLICA_STATE_ORDINALS: readonly ReplicaStatus['state'][] = ordinals<ReplicaStatus['state']>({
  normal: CapReplicaState.NORMAL, viewChange: CapReplicaState.VIEW_CHANGE, recovering: CapReplicaState.RECOVERING,
  unreachable: CapReplicaState.UNREACHABLE,
});

/** Ordinal → name table from an exhaustive name → ordinal record. */
function ordinals<T extends string>(byName: Record<T, number>): T[] {
  const out: T[] = [];
  for (const [name, ordinal] of Object.entries(byName) as [T, number][]) out[ordinal] = name;
  return out;
}

export function ordinalOf<T extends string>(names: readonly T[], name: T): number {
  const ordinal = names.indexOf(name);
  if (ordinal < 0) throw new VerityError('BadRequest', `unknown enum value ${name}`);
  return ordinal;
}
