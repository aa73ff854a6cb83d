import type { ClientId, ClusterId, Position, ReplicaIndex, SqlType, TenantId } from '@veritydb/types';
import type { WireValue } from './values.js';

/**
 * The typed messages of the wire protocol (PROTOCOL.md §4–§7): what encode takes and decode
 * returns. Every payload is one ClientMessage (client → server) or ServerMessage (server →
 * client); the Cap'n Proto schemas in ../schema are the byte-level truth.
 */

/** Result of every decoder: a value, or the reason the bytes were rejected. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Request ids are u64 and ≥ 1; 0 in a response means "about the connection itself". */
export type RequestId = bigint;

export type Role = 'client' | 'replica';

export interface ClientHello {
  /** Protocol versions the peer speaks (1..16, distinct, each ≥ 1). */
  readonly versions: readonly number[];
  readonly role: Role;
  readonly token: string;
  readonly clientName: string;
  /** The cluster the peer expects; 0n = any (clients only; replicas must name it). */
  readonly clusterId: ClusterId;
  /** The connecting replica's index (role 'replica'); 0 for clients. */
  readonly replicaIndex: ReplicaIndex;
}

export interface PrimaryHint {
  readonly index: ReplicaIndex;
  readonly address: string;
}

export interface ServerHello {
  readonly version: number;
  readonly clusterId: ClusterId;
  readonly replicaIndex: ReplicaIndex;
  readonly replicaCount: number;
  /** null while the primary is unknown (e.g. during a view change). */
  readonly primary: PrimaryHint | null;
}

export const CONSISTENCY_MODES = ['linearizable', 'causal', 'eventual', 'atPosition'] as const;
export type Consistency = (typeof CONSISTENCY_MODES)[number];

export interface RequestOptions {
  readonly consistency: Consistency;
  /** causal: the highest position the session has seen (0 = none); atPosition: the exact position (≥ 1). */
  readonly position: Position;
  /** 0 = the server's default. */
  readonly timeoutMs: number;
  /** Rows returned at most over all frames of the request; 0 = the server's default. */
  readonly rowsLimit: number;
}

/** The options a request has when none are sent. */
export const DEFAULT_REQUEST_OPTIONS: RequestOptions = Object.freeze({
  consistency: 'causal', position: 0 as Position, timeoutMs: 0, rowsLimit: 0,
});

export interface Statement {
  readonly sql: string;
  readonly params: readonly WireValue[];
}

export interface Session {
  /** Not zero. */
  readonly clientId: ClientId;
  /** 0 only in `register`; strictly increasing afterwards. */
  readonly requestNumber: number;
}

export type AdminOp =
  | { readonly op: 'createTenant'; readonly id: TenantId; readonly name: string }
  | { readonly op: 'dropTenant'; readonly id: TenantId }
  | { readonly op: 'listTenants' }
  | { readonly op: 'status' }
  | { readonly op: 'createToken'; readonly scopes: readonly string[]; readonly expiresAtMicros: bigint }
  /** Checks the answering server's own log: one tenant's chain, or (tenant null) every record. */
  | { readonly op: 'verify'; readonly tenant: TenantId | null }
  /** One tenant's export file (docs/EXPORT.md), streamed as `exportChunk`s. */
  | { readonly op: 'exportTenant'; readonly tenant: TenantId }
  /** A consistent copy of the answering server's data dir, streamed as `backupFile`s, then `backupDone`. */
  | { readonly op: 'backup' };

export type RequestBody =
  | {
    readonly kind: 'execute'; readonly tenant: TenantId; readonly statements: readonly Statement[];
    readonly atomic: boolean; readonly session: Session | null; readonly options: RequestOptions;
  }
  | { readonly kind: 'query'; readonly tenant: TenantId; readonly statement: Statement; readonly options: RequestOptions }
  | { readonly kind: 'subscribe'; readonly tenant: TenantId; readonly stream: string; readonly from: Position }
  | { readonly kind: 'admin'; readonly admin: AdminOp }
  | { readonly kind: 'cancel'; readonly target: RequestId }
  | { readonly kind: 'register'; readonly session: Session };

export interface Request {
  readonly id: RequestId;
  readonly body: RequestBody;
}

export interface Column {
  readonly name: string;
  readonly type: SqlType;
}

/**
 * One frame's worth of a statement's result. A large result is streamed as several Results with
 * the same request id; only the request's last frame has `final: true`.
 */
export interface Result {
  readonly statementIndex: number;
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly WireValue[])[];
  readonly rowsAffected: number;
  readonly position: Position;
  readonly final: boolean;
}

export const ERROR_CODES = [
  'NotPrimary', 'Unauthorized', 'Forbidden', 'TenantNotFound', 'TenantExists', 'SqlError', 'ConstraintViolation',
  'QuotaExceeded', 'Timeout', 'Indeterminate', 'Overloaded', 'BadFrame', 'BadRequest', 'UnsupportedVersion',
  'Evicted', 'Unavailable', 'Cancelled', 'Internal', 'NotSupported',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Codes whose error carries no detail beyond its message. */
export type PlainErrorCode = Exclude<ErrorCode, 'NotPrimary' | 'SqlError' | 'ConstraintViolation' | 'QuotaExceeded' | 'Overloaded'>;

/** A typed error. The code decides which detail fields exist. */
export type WireError =
  | { readonly code: 'NotPrimary'; readonly message: string; readonly primary: PrimaryHint }
  | {
    readonly code: 'SqlError'; readonly message: string; readonly sqlState: string;
    /** 1-based; 0 = unknown. */
    readonly line: number;
    /** 1-based; 0 = unknown. */
    readonly column: number;
  }
  | { readonly code: 'ConstraintViolation'; readonly message: string; readonly constraint: string }
  | { readonly code: 'QuotaExceeded' | 'Overloaded'; readonly message: string; readonly retryAfterMs: number }
  | { readonly code: PlainErrorCode; readonly message: string };

export interface TenantInfo {
  readonly id: TenantId;
  readonly name: string;
}

export const REPLICA_ROLES = ['primary', 'backup', 'unknown'] as const;
export const REPLICA_STATES = ['normal', 'viewChange', 'recovering', 'unreachable'] as const;

export interface ReplicaStatus {
  readonly index: ReplicaIndex;
  readonly address: string;
  readonly role: (typeof REPLICA_ROLES)[number];
  readonly state: (typeof REPLICA_STATES)[number];
  readonly view: number;
  readonly commit: Position;
  readonly applied: Position;
}

export interface ClusterStatus {
  readonly clusterId: ClusterId;
  readonly view: number;
  readonly replicas: readonly ReplicaStatus[];
}

/** How a verify went so far (`progress`: more reports follow) or ended. */
export type VerifyOutcome =
  | { readonly kind: 'progress' }
  | { readonly kind: 'ok' }
  | {
    readonly kind: 'broken';
    /** The first broken position. */
    readonly position: Position;
    /** A short code: `crc`, `chain`, `tenant-chain`, `index`, `faulty`, `missing`, … (storage's `VerifyReason`). */
    readonly reason: string;
    readonly detail: string;
    /** The server's file that holds the defect. */
    readonly file: string;
  };

/** One frame of a verify answer; the request's last has an outcome other than `progress`. */
export interface VerifyReport {
  readonly checked: number;
  /** Records to check; for a tenant's chain (whose length is known only at its end) = checked. */
  readonly total: number;
  /** The last position the verify covers: the log head when it began. */
  readonly head: Position;
  readonly outcome: VerifyOutcome;
}

/** The next bytes of an export file (at most `wireLimits.exportChunkBytesMax`); `final` on the last. */
export interface ExportChunk {
  readonly data: Uint8Array;
  readonly final: boolean;
}

/**
 * The next bytes of one file of a backup (PROTOCOL.md §5): files come one after the other, each
 * one's chunks in order from offset 0; the last chunk of a file carries its BLAKE3-256.
 */
export interface BackupFileChunk {
  /** Relative to the data dir, '/'-separated: never absolute, never with a `..` or `.` part. */
  readonly path: string;
  /** Permission bits (0..0o777). */
  readonly mode: number;
  /** The whole file's size. */
  readonly bytes: number;
  /** Where `data` goes in the file. */
  readonly offset: number;
  /** At most `wireLimits.backupChunkBytesMax`; empty only for an empty file. */
  readonly data: Uint8Array;
  /** On the file's last chunk (`offset + data.length === bytes`): BLAKE3-256 of the whole file; null on the others. */
  readonly blake3: Uint8Array | null;
}

/** The end of a backup: what the copy holds. */
export interface BackupDone {
  readonly clusterId: ClusterId;
  /** The last position in the copy: opened, it is at this position… */
  readonly position: Position;
  /** …with this state hash (BLAKE3-256, 32 bytes). */
  readonly stateHash: Uint8Array;
  /** Files sent. */
  readonly files: number;
  /** Bytes of all files together. */
  readonly bytes: number;
}

export type ResponseBody =
  | { readonly kind: 'result'; readonly result: Result }
  | { readonly kind: 'error'; readonly error: WireError }
  | { readonly kind: 'tenants'; readonly tenants: readonly TenantInfo[] }
  | { readonly kind: 'status'; readonly status: ClusterStatus }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'verify'; readonly verify: VerifyReport }
  | { readonly kind: 'exportChunk'; readonly chunk: ExportChunk }
  | { readonly kind: 'backupFile'; readonly file: BackupFileChunk }
  | { readonly kind: 'backupDone'; readonly done: BackupDone };

export interface Response {
  readonly requestId: RequestId;
  readonly body: ResponseBody;
}

export type ClientMessage =
  | { readonly kind: 'hello'; readonly hello: ClientHello }
  | { readonly kind: 'request'; readonly request: Request };

export type ServerMessage =
  | { readonly kind: 'hello'; readonly hello: ServerHello }
  | { readonly kind: 'response'; readonly response: Response };

/** Whether this response ends its request (no more frames with its id follow). */
export function isFinalResponse(response: Response): boolean {
  const body = response.body;
  switch (body.kind) {
    case 'result': return body.result.final;
    case 'verify': return body.verify.outcome.kind !== 'progress';
    case 'exportChunk': return body.chunk.final;
    case 'backupFile': return false;
    default: return true;
  }
}
