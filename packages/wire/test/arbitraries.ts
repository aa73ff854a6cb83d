import fc from 'fast-check';
import { SQL_TYPES, type ClientId, type ClusterId, type JsonValue, type Position, type ReplicaIndex, type SqlType, type TenantId } from '@veritydb/types';
import {
  CONSISTENCY_MODES, ERROR_CODES, REPLICA_ROLES, REPLICA_STATES, dateFromDays, type AdminOp, type ClientHello,
  type ClientMessage, type Column, type ErrorCode, type Request, type RequestBody, type RequestOptions, type Response,
  type ResponseBody, type ServerHello, type ServerMessage, type Session, type Statement, type VerifyOutcome, type WireError,
  type WireValue,
} from '../src/index.js';

/** fast-check arbitraries for every message kind, within the protocol's limits. */

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Well-formed Unicode text without NUL (Cap'n Proto Text cannot carry NUL here). */
export function text(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: 'binary', minLength, maxLength }).map((s) => s.replaceAll('\u0000', '0'));
}

const safeUint = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const tenant = safeUint.map((n) => n as TenantId);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const identifier = text(1, 15);
const address = fc.tuple(fc.constantFrom('127.0.0.1', 'db-1.example', '[::1]'), fc.integer({ min: 1, max: 65535 }))
  .map(([host, port]) => `${host}:${port}`);

/** JSON that survives a text round trip unchanged (no -0). */
export const jsonValue: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 4 })
  .map((value) => JSON.parse(JSON.stringify(value)) as JsonValue);

const DATE_DAYS_MIN = -719_528;
const DATE_DAYS_MAX = 2_932_896;

const valueByKind: Record<Exclude<WireValue['kind'], 'null'>, fc.Arbitrary<WireValue>> = {
  bool: fc.boolean().map((value) => ({ kind: 'bool', value })),
  int64: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map((value) => ({ kind: 'int64', value })),
  float64: fc.double().map((value) => ({ kind: 'float64', value })),
  text: fc.string({ unit: 'binary', maxLength: 40 }).map((value) => ({ kind: 'text', value })),
  bytes: fc.uint8Array({ maxLength: 40 }).map((value) => ({ kind: 'bytes', value })),
  date: fc.integer({ min: DATE_DAYS_MIN, max: DATE_DAYS_MAX }).map((days) => ({ kind: 'date', value: dateFromDays(days) })),
  timestamp: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map((value) => ({ kind: 'timestamp', value })),
  json: jsonValue.map((value) => ({ kind: 'json', value })),
};

export const wireValue: fc.Arbitrary<WireValue> = fc.oneof(
  fc.constant<WireValue>({ kind: 'null' }), ...Object.values(valueByKind),
);

/** A value that fits a column of the given type (NULL sometimes). */
export function valueOfType(type: SqlType): fc.Arbitrary<WireValue> {
  const nonNull: fc.Arbitrary<WireValue> = {
    BIGINT: valueByKind.int64,
    INTEGER: fc.integer().map((n): WireValue => ({ kind: 'int64', value: BigInt(n) })),
    DOUBLE: valueByKind.float64,
    TEXT: valueByKind.text,
    BOOLEAN: valueByKind.bool,
    DATE: valueByKind.date,
    TIMESTAMP: valueByKind.timestamp,
    BYTES: valueByKind.bytes,
    JSON: valueByKind.json,
  }[type];
  return fc.oneof({ arbitrary: fc.constant<WireValue>({ kind: 'null' }), weight: 1 }, { arbitrary: nonNull, weight: 5 });
}

const statement: fc.Arbitrary<Statement> = fc.record({
  sql: text(1, 60),
  params: fc.array(wireValue, { maxLength: 6 }),
});

const clientId = fc.bigInt({ min: 1n, max: U128_MAX }).map((n) => n as ClientId);
const session = (requestNumber: fc.Arbitrary<number>): fc.Arbitrary<Session> =>
  fc.record({ clientId, requestNumber });

export const requestOptions: fc.Arbitrary<RequestOptions> = fc.constantFrom(...CONSISTENCY_MODES).chain((consistency) =>
  fc.record({
    consistency: fc.constant(consistency),
    position: (consistency === 'atPosition' ? positive : consistency === 'causal' ? safeUint : fc.constant(0))
      .map((n) => n as Position),
    timeoutMs: u32,
    rowsLimit: fc.integer({ min: 0, max: 1_000_000 }),
  }));

const adminOp: fc.Arbitrary<AdminOp> = fc.oneof(
  fc.record({ op: fc.constant('createTenant' as const), id: positive.map((n) => n as TenantId), name: identifier }),
  fc.record({ op: fc.constant('dropTenant' as const), id: positive.map((n) => n as TenantId) }),
  fc.constant({ op: 'listTenants' as const }),
  fc.constant({ op: 'status' as const }),
  fc.record({
    op: fc.constant('createToken' as const),
    scopes: fc.array(fc.oneof(fc.constant('admin'), positive.map((n) => `tenant:${n}:read`), fc.stringMatching(/^[!-~]{1,20}$/)), { minLength: 1, maxLength: 5 }),
    expiresAtMicros: fc.bigInt({ min: 0n, max: U64_MAX }),
  }),
  fc.record({ op: fc.constant('verify' as const), tenant: fc.option(positive.map((n) => n as TenantId), { nil: null }) }),
  fc.record({ op: fc.constant('exportTenant' as const), tenant: positive.map((n) => n as TenantId) }),
  fc.constant<AdminOp>({ op: 'backup' }),
);

const requestId = fc.bigInt({ min: 1n, max: U64_MAX });

export const requestBody: fc.Arbitrary<RequestBody> = fc.oneof(
  fc.record({
    kind: fc.constant('execute' as const), tenant, statements: fc.array(statement, { minLength: 1, maxLength: 4 }),
    atomic: fc.boolean(), session: fc.option(session(fc.integer({ min: 1, max: 0xffff_ffff })), { nil: null }),
    options: requestOptions,
  }),
  fc.record({ kind: fc.constant('query' as const), tenant, statement, options: requestOptions }),
  fc.record({ kind: fc.constant('subscribe' as const), tenant, stream: identifier, from: positive.map((n) => n as Position) }),
  fc.record({ kind: fc.constant('admin' as const), admin: adminOp }),
  fc.record({ kind: fc.constant('cancel' as const), target: requestId }),
  fc.record({ kind: fc.constant('register' as const), session: session(fc.constant(0)) }),
);

export const request: fc.Arbitrary<Request> = fc.record({ id: requestId, body: requestBody });

export const clientHello: fc.Arbitrary<ClientHello> = fc.constantFrom('client' as const, 'replica' as const).chain((role) =>
  fc.record({
    versions: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 16 }),
    role: fc.constant(role),
    token: text(1, 80),
    clientName: text(0, 16),
    clusterId: (role === 'client' ? fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: U128_MAX })) : fc.bigInt({ min: 1n, max: U128_MAX }))
      .map((n) => n as ClusterId),
    replicaIndex: (role === 'client' ? fc.constant(0) : fc.integer({ min: 0, max: 4 })).map((n) => n as ReplicaIndex),
  }));

export const serverHello: fc.Arbitrary<ServerHello> = fc.integer({ min: 1, max: 5 }).chain((replicaCount) =>
  fc.record({
    version: fc.integer({ min: 1, max: 65535 }),
    clusterId: fc.bigInt({ min: 0n, max: U128_MAX }).map((n) => n as ClusterId),
    replicaIndex: fc.integer({ min: 0, max: replicaCount - 1 }).map((n) => n as ReplicaIndex),
    replicaCount: fc.constant(replicaCount),
    primary: fc.option(fc.record({
      index: fc.integer({ min: 0, max: replicaCount - 1 }).map((n) => n as ReplicaIndex), address,
    }), { nil: null }),
  }));

export const column: fc.Arbitrary<Column> = fc.record({ name: text(1, 20), type: fc.constantFrom(...SQL_TYPES) });

export const resultBody: fc.Arbitrary<ResponseBody> = fc.array(column, { maxLength: 5 }).chain((columns) =>
  fc.record({
    statementIndex: fc.integer({ min: 0, max: 1023 }),
    columns: fc.constant(columns),
    rows: columns.length === 0 ? fc.constant([]) : fc.array(fc.tuple(...columns.map((c) => valueOfType(c.type))), { maxLength: 6 }),
    rowsAffected: safeUint,
    position: safeUint.map((n) => n as Position),
    final: fc.boolean(),
  })).map((result): ResponseBody => ({ kind: 'result', result }));

const plainCodes = ERROR_CODES.filter((code) =>
  !['NotPrimary', 'SqlError', 'ConstraintViolation', 'QuotaExceeded', 'Overloaded'].includes(code)) as Exclude<
  ErrorCode, 'NotPrimary' | 'SqlError' | 'ConstraintViolation' | 'QuotaExceeded' | 'Overloaded'>[];

export const wireError: fc.Arbitrary<WireError> = fc.oneof(
  fc.record({
    code: fc.constant('NotPrimary' as const), message: text(0, 40),
    primary: fc.record({ index: fc.integer({ min: 0, max: 4 }).map((n) => n as ReplicaIndex), address }),
  }),
  fc.record({
    code: fc.constant('SqlError' as const), message: text(0, 40), sqlState: fc.stringMatching(/^[0-9A-Z]{5}$/),
    line: u32, column: u32,
  }),
  fc.record({ code: fc.constant('ConstraintViolation' as const), message: text(0, 40), constraint: identifier }),
  fc.record({ code: fc.constantFrom('QuotaExceeded' as const, 'Overloaded' as const), message: text(0, 40), retryAfterMs: u32 }),
  fc.record({ code: fc.constantFrom(...plainCodes), message: text(0, 40) }),
);

export const verifyOutcome: fc.Arbitrary<VerifyOutcome> = fc.oneof(
  fc.constant<VerifyOutcome>({ kind: 'progress' }),
  fc.constant<VerifyOutcome>({ kind: 'ok' }),
  fc.record({
    kind: fc.constant('broken' as const), position: positive.map((n) => n as Position),
    reason: fc.constantFrom('crc', 'chain', 'tenant-chain', 'index', 'faulty', 'missing'), detail: text(0, 60), file: text(0, 40),
  }),
);

export const verifyBody: fc.Arbitrary<ResponseBody> = fc.record({
  checked: safeUint, total: safeUint, head: safeUint.map((n) => n as Position), outcome: verifyOutcome,
}).map((verify): ResponseBody => ({ kind: 'verify', verify }));

/** Export chunks, small (the fuzz corpus frames must fit 64 KiB; messages.test.ts sends a 1 MiB one). */
export const exportChunkBody: fc.Arbitrary<ResponseBody> = fc.record({
  data: fc.uint8Array({ maxLength: 200 }),
  final: fc.boolean(),
}).map((chunk): ResponseBody => ({ kind: 'exportChunk', chunk }));

/** Paths inside a data dir: 1..4 parts, none empty, `.` or `..`. */
const backupPath = fc.array(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/).filter((part) => part !== '.' && part !== '..'), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join('/'));

/** A chunk of a backup file, anywhere in it (small: the fuzz corpus frames must fit 64 KiB). */
export const backupFileBody: fc.Arbitrary<ResponseBody> = fc.record({
  path: backupPath, mode: fc.integer({ min: 0, max: 0o777 }), data: fc.uint8Array({ maxLength: 200 }),
  before: fc.nat({ max: 1_000_000 }), after: fc.nat({ max: 1_000_000 }), hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
}).map(({ path, mode, data, before, after, hash }): ResponseBody => {
  // An empty chunk is a whole empty file.
  const offset = data.length === 0 ? 0 : before;
  const bytes = data.length === 0 ? 0 : before + data.length + after;
  return { kind: 'backupFile', file: { path, mode, bytes, offset, data, blake3: offset + data.length === bytes ? hash : null } };
});

export const backupDoneBody: fc.Arbitrary<ResponseBody> = fc.record({
  clusterId: fc.bigInt({ min: 0n, max: U128_MAX }).map((n) => n as ClusterId), position: safeUint.map((n) => n as Position),
  stateHash: fc.uint8Array({ minLength: 32, maxLength: 32 }), files: fc.integer({ min: 0, max: 1_000_000 }), bytes: safeUint,
}).map((done): ResponseBody => ({ kind: 'backupDone', done }));

export const responseBody: fc.Arbitrary<ResponseBody> = fc.oneof(
  resultBody,
  wireError.map((error): ResponseBody => ({ kind: 'error', error })),
  fc.array(fc.record({ id: tenant, name: identifier }), { maxLength: 5 }).map((tenants): ResponseBody => ({ kind: 'tenants', tenants })),
  fc.record({
    clusterId: fc.bigInt({ min: 0n, max: U128_MAX }).map((n) => n as ClusterId),
    view: u32,
    replicas: fc.array(fc.record({
      index: fc.integer({ min: 0, max: 4 }).map((n) => n as ReplicaIndex), address,
      role: fc.constantFrom(...REPLICA_ROLES), state: fc.constantFrom(...REPLICA_STATES), view: u32,
      commit: safeUint.map((n) => n as Position), applied: safeUint.map((n) => n as Position),
    }), { minLength: 1, maxLength: 5 }),
  }).map((status): ResponseBody => ({ kind: 'status', status })),
  text(1, 80).map((token): ResponseBody => ({ kind: 'token', token })),
  verifyBody,
  exportChunkBody,
  backupFileBody,
  backupDoneBody,
);

export const response: fc.Arbitrary<Response> = responseBody.chain((body) =>
  fc.record({ requestId: body.kind === 'error' ? fc.bigInt({ min: 0n, max: U64_MAX }) : requestId, body: fc.constant(body) }));

export const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  clientHello.map((hello): ClientMessage => ({ kind: 'hello', hello })),
  request.map((req): ClientMessage => ({ kind: 'request', request: req })),
);

export const serverMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  serverHello.map((hello): ServerMessage => ({ kind: 'hello', hello })),
  response.map((res): ServerMessage => ({ kind: 'response', response: res })),
);

/** A stable text form for deep comparison: bigints, bytes, -0 and NaN stay distinct; keys sorted. */
export function canon(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value instanceof Uint8Array) return `0x${Buffer.from(value).toString('hex')}`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(canon).join(',')}]`;
  const object = value as Record<string, unknown>;
  return `{${Object.keys(object).sort().map((key) => `${JSON.stringify(key)}:${canon(object[key])}`).join(',')}}`;
}

/** The seed for this file's randomized tests (`SEED=… ` replays). */
export function freshSeed(): number {
  return Math.floor(Math.random() * 0x7fff_ffff);
}
