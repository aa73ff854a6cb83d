import { AssertionError, limits, VerityError, type ClientId, type ClusterId, type Position, type ReplicaIndex, type SqlType, type TenantId } from '@veritydb/types';
import * as capnp from 'capnp-es';
import { ClientMessage as CapClientMessage, ServerMessage as CapServerMessage } from './generated/envelope.js';
import { Role as CapRole, type ClientHello as CapClientHello, type ServerHello as CapServerHello } from './generated/handshake.js';
import {
  Admin_Which, Consistency as CapConsistency, Request_Which, type Execute as CapExecute, type Options as CapOptions,
  type Request as CapRequest, type Session as CapSession, type Statement as CapStatement,
} from './generated/request.js';
import {
  Error_Detail_Which, ErrorCode as CapErrorCode, ReplicaRole as CapReplicaRole, ReplicaState as CapReplicaState,
  Response_Which, SqlType as CapSqlType, type ClusterStatus as CapClusterStatus, type Error as CapError,
  type Response as CapResponse, type Result as CapResult,
} from './generated/response.js';
import { ClientMessage_Which, ServerMessage_Which } from './generated/envelope.js';
import type { FrameError } from './frame-decoder.js';
import { wireLimits } from './limits.js';
import {
  DEFAULT_REQUEST_OPTIONS, type AdminOp, type ClientHello, type ClientMessage, type ClusterStatus, type Consistency,
  type Decoded, type ErrorCode, type Request, type RequestBody, type RequestOptions, type Response, type ResponseBody,
  type Result, type Role, type ServerHello, type ServerMessage, type Session, type Statement, type WireError,
  type ReplicaStatus,
} from './messages.js';
import { validateClientMessage, validateServerMessage } from './validate.js';
import { decodeRowBlock, decodeValueList, encodeRowBlock, encodeValueList } from './values.js';

/**
 * Typed messages ⇄ frame payloads (unpacked Cap'n Proto, one segment when we write it).
 *
 * Encoders validate first and throw VerityError('BadRequest', reason) for a message the peer
 * would reject; decoders never throw on input: any defect, including exceptions from capnp-es
 * on corrupt pointers, becomes `{ ok: false, reason }`.
 *
 * @example
 *   const payload = encodeClientMessage({ kind: 'request', request });
 *   const decoded = decodeClientMessage(payload);
 *   if (decoded.ok) handle(decoded.value); else closeWith('BadRequest', decoded.reason);
 */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  rejectInvalid(validateClientMessage(message));
  const capMessage = new capnp.Message();
  const root = capMessage.initRoot(CapClientMessage);
  switch (message.kind) {
    case 'hello': writeClientHello(root._initHello(), message.hello); break;
    case 'request': writeRequest(root._initRequest(), message.request); break;
  }
  return new Uint8Array(capMessage.toArrayBuffer());
}

export function decodeClientMessage(payload: Uint8Array): Decoded<ClientMessage> {
  return decodeWith(payload, () => {
    const root = new capnp.Message(payload, false).getRoot(CapClientMessage);
    let message: ClientMessage;
    switch (root.which()) {
      case ClientMessage_Which.HELLO: message = { kind: 'hello', hello: readClientHello(root.hello) }; break;
      case ClientMessage_Which.REQUEST: message = { kind: 'request', request: readRequest(root.request) }; break;
      default: return malformed('message: unknown kind');
    }
    return checked(message, validateClientMessage(message));
  });
}

export function encodeServerMessage(message: ServerMessage): Uint8Array {
  rejectInvalid(validateServerMessage(message));
  const capMessage = new capnp.Message();
  const root = capMessage.initRoot(CapServerMessage);
  switch (message.kind) {
    case 'hello': writeServerHello(root._initHello(), message.hello); break;
    case 'response': writeResponse(root._initResponse(), message.response); break;
  }
  return new Uint8Array(capMessage.toArrayBuffer());
}

export function decodeServerMessage(payload: Uint8Array): Decoded<ServerMessage> {
  return decodeWith(payload, () => {
    const root = new capnp.Message(payload, false).getRoot(CapServerMessage);
    let message: ServerMessage;
    switch (root.which()) {
      case ServerMessage_Which.HELLO: message = { kind: 'hello', hello: readServerHello(root.hello) }; break;
      case ServerMessage_Which.RESPONSE: message = { kind: 'response', response: readResponse(root.response) }; break;
      default: return malformed('message: unknown kind');
    }
    return checked(message, validateServerMessage(message));
  });
}

/** Shorthands for the common cases. */
export function encodeRequest(request: Request): Uint8Array {
  return encodeClientMessage({ kind: 'request', request });
}

export function decodeRequest(payload: Uint8Array): Decoded<Request> {
  const decoded = decodeClientMessage(payload);
  if (!decoded.ok) return decoded;
  return decoded.value.kind === 'request' ? { ok: true, value: decoded.value.request } : { ok: false, reason: 'message: a hello where a request was expected' };
}

export function encodeResponse(response: Response): Uint8Array {
  return encodeServerMessage({ kind: 'response', response });
}

export function decodeResponse(payload: Uint8Array): Decoded<Response> {
  const decoded = decodeServerMessage(payload);
  if (!decoded.ok) return decoded;
  return decoded.value.kind === 'response' ? { ok: true, value: decoded.value.response } : { ok: false, reason: 'message: a hello where a response was expected' };
}

/** The connection-level error a server sends before closing a connection whose framing failed. */
export function frameErrorResponse(error: FrameError): Response {
  const code = error.kind === 'UnsupportedVersion' ? 'UnsupportedVersion' : 'BadFrame';
  return { requestId: 0n, body: { kind: 'error', error: { code, message: `${error.kind}: ${error.message}` } } };
}

// ---- decoding scaffolding ----

class Malformed extends Error {}

function malformed(reason: string): never {
  throw new Malformed(reason);
}

function checked<T>(value: T, reason: string | null): Decoded<T> {
  return reason === null ? { ok: true, value } : { ok: false, reason };
}

function rejectInvalid(reason: string | null): void {
  if (reason !== null) throw new VerityError('BadRequest', reason);
}

/**
 * Bytes of text and data the current decode may still read. Cap'n Proto pointers may overlap, so
 * a small payload could point a thousand statements at one large text; capnp-es would decode it
 * a thousand times. Honest messages never read more content than the payload holds, so reading
 * is capped at the payload's size. Decoding is synchronous, so one module-level counter is safe.
 */
let contentBudget = 0;

function spend<T extends string | Uint8Array>(value: T): T {
  contentBudget -= value.length;
  if (contentBudget < 0) malformed('payload: content read exceeds the payload size (overlapping pointers)');
  return value;
}

function decodeWith<T>(payload: Uint8Array, read: () => Decoded<T>): Decoded<T> {
  const framing = checkSegmentTable(payload);
  if (framing !== null) return { ok: false, reason: framing };
  contentBudget = payload.length;
  try {
    return read();
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    if (error instanceof Malformed) return { ok: false, reason: error.message };
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: `malformed payload: ${detail.slice(0, 200)}` };
  }
}

/**
 * Checks the Cap'n Proto stream header (segment count and sizes, little-endian u32s) before
 * capnp-es sees the bytes: it would allocate an array of the claimed segment count.
 */
function checkSegmentTable(payload: Uint8Array): string | null {
  if (payload.length < 8) return `payload: ${payload.length} bytes is too short for a Cap'n Proto message`;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const segments = view.getUint32(0, true) + 1;
  if (segments > wireLimits.capnpSegmentsMax) return `payload: ${segments} segments exceed ${wireLimits.capnpSegmentsMax}`;
  const tableBytes = 4 + 4 * segments + (segments % 2 === 0 ? 4 : 0);
  if (tableBytes > payload.length) return 'payload: truncated segment table';
  let bytes = tableBytes;
  for (let i = 0; i < segments; i++) bytes += view.getUint32(4 + 4 * i, true) * 8;
  if (bytes !== payload.length) return `payload: segments describe ${bytes} bytes, the payload has ${payload.length}`;
  return null;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The Text field in pointer slot `pointerIndex` of a struct, decoded strictly. capnp-es's own
 * getters replace invalid UTF-8 with U+FFFD and do not check the NUL terminator, so the server
 * could execute SQL the client never sent; here invalid text rejects the message. The slot
 * numbers are those of the generated getters (`$.utils.getText(slot, this)`); the round-trip
 * property tests fail if one is wrong.
 */
function text(struct: capnp.Struct, pointerIndex: number): string {
  const pointer = capnp.utils.getPointer(pointerIndex, struct);
  if (capnp.utils.isNull(pointer)) return '';
  const bytes = spend(capnp.Data.fromPointer(pointer).toUint8Array());
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) malformed('text: missing NUL terminator');
  try {
    return strictUtf8.decode(bytes.subarray(0, bytes.length - 1));
  } catch {
    return malformed('text: invalid UTF-8');
  }
}

function boundedList<T>(path: string, list: capnp.List<T>, max: number): T[] {
  const length = list.length;
  if (length > max) malformed(`${path}: ${length} entries exceed ${max}`);
  const out: T[] = [];
  for (let i = 0; i < length; i++) out.push(list.get(i));
  return out;
}

function enumName<T extends string>(path: string, names: readonly T[], ordinal: number): T {
  return names[ordinal] ?? malformed(`${path}: unknown value ${ordinal}`);
}

// ---- u128 and enums ----

const U64_MASK = (1n << 64n) - 1n;

function high64(value: bigint): bigint {
  return value >> 64n;
}
function low64(value: bigint): bigint {
  return value & U64_MASK;
}
function u128(high: bigint, low: bigint): bigint {
  return (high << 64n) | low;
}

/** Wire ordinals of each enum, taken from the generated code so a reordering cannot slip by. */
const ROLES: readonly Role[] = ordinals<Role>({ client: CapRole.CLIENT, replica: CapRole.REPLICA });
const CONSISTENCIES: readonly Consistency[] = ordinals<Consistency>({
  linearizable: CapConsistency.LINEARIZABLE, causal: CapConsistency.CAUSAL, eventual: CapConsistency.EVENTUAL,
  atPosition: CapConsistency.AT_POSITION,
});
const SQL_TYPE_ORDINALS: readonly SqlType[] = ordinals<SqlType>({
  BIGINT: CapSqlType.BIGINT, INTEGER: CapSqlType.INTEGER, DOUBLE: CapSqlType.DOUBLE, TEXT: CapSqlType.TEXT,
  BOOLEAN: CapSqlType.BOOLEAN, DATE: CapSqlType.DATE, TIMESTAMP: CapSqlType.TIMESTAMP, BYTES: CapSqlType.BYTES,
  JSON: CapSqlType.JSON,
});
const ERROR_CODE_ORDINALS: readonly ErrorCode[] = ordinals<ErrorCode>({
  NotPrimary: CapErrorCode.NOT_PRIMARY, Unauthorized: CapErrorCode.UNAUTHORIZED, Forbidden: CapErrorCode.FORBIDDEN,
  TenantNotFound: CapErrorCode.TENANT_NOT_FOUND, TenantExists: CapErrorCode.TENANT_EXISTS,
  SqlError: CapErrorCode.SQL_ERROR, ConstraintViolation: CapErrorCode.CONSTRAINT_VIOLATION,
  QuotaExceeded: CapErrorCode.QUOTA_EXCEEDED, Timeout: CapErrorCode.TIMEOUT, Indeterminate: CapErrorCode.INDETERMINATE,
  Overloaded: CapErrorCode.OVERLOADED, BadFrame: CapErrorCode.BAD_FRAME, BadRequest: CapErrorCode.BAD_REQUEST,
  UnsupportedVersion: CapErrorCode.UNSUPPORTED_VERSION, Evicted: CapErrorCode.EVICTED,
  Unavailable: CapErrorCode.UNAVAILABLE, Cancelled: CapErrorCode.CANCELLED, Internal: CapErrorCode.INTERNAL,
});
const REPLICA_ROLE_ORDINALS: readonly ReplicaStatus['role'][] = ordinals<ReplicaStatus['role']>({
  primary: CapReplicaRole.PRIMARY, backup: CapReplicaRole.BACKUP, unknown: CapReplicaRole.UNKNOWN,
});
const REPLICA_STATE_ORDINALS: readonly ReplicaStatus['state'][] = ordinals<ReplicaStatus['state']>({
  normal: CapReplicaState.NORMAL, viewChange: CapReplicaState.VIEW_CHANGE, recovering: CapReplicaState.RECOVERING,
  unreachable: CapReplicaState.UNREACHABLE,
});

/** Ordinal → name table from an exhaustive name → ordinal record. */
function ordinals<T extends string>(byName: Record<T, number>): T[] {
  const out: T[] = [];
  for (const [name, ordinal] of Object.entries(byName) as [T, number][]) out[ordinal] = name;
  return out;
}

function ordinalOf<T extends string>(names: readonly T[], name: T): number {
  const ordinal = names.indexOf(name);
  if (ordinal < 0) throw new VerityError('BadRequest', `unknown enum value ${name}`);
  return ordinal;
}

// ---- handshake ----

function writeClientHello(target: CapClientHello, hello: ClientHello): void {
  const versions = target._initVersions(hello.versions.length);
  hello.versions.forEach((version, i) => versions.set(i, version));
  target.role = ordinalOf(ROLES, hello.role) as CapRole;
  target.token = hello.token;
  target.clientName = hello.clientName;
  target.clusterIdHigh = high64(hello.clusterId);
  target.clusterIdLow = low64(hello.clusterId);
  target.replicaIndex = hello.replicaIndex;
}

function readClientHello(source: CapClientHello): ClientHello {
  return {
    versions: boundedList('hello.versions', source.versions, wireLimits.helloVersionsMax),
    role: enumName('hello.role', ROLES, source.role),
    token: text(source, 1),
    clientName: text(source, 2),
    clusterId: u128(source.clusterIdHigh, source.clusterIdLow) as ClusterId,
    replicaIndex: source.replicaIndex as ReplicaIndex,
  };
}

function writeServerHello(target: CapServerHello, hello: ServerHello): void {
  target.version = hello.version;
  target.clusterIdHigh = high64(hello.clusterId);
  target.clusterIdLow = low64(hello.clusterId);
  target.replicaIndex = hello.replicaIndex;
  target.replicaCount = hello.replicaCount;
  if (hello.primary !== null) {
    const primary = target._initPrimary();
    primary.index = hello.primary.index;
    primary.address = hello.primary.address;
  }
}

function readServerHello(source: CapServerHello): ServerHello {
  return {
    version: source.version,
    clusterId: u128(source.clusterIdHigh, source.clusterIdLow) as ClusterId,
    replicaIndex: source.replicaIndex as ReplicaIndex,
    replicaCount: source.replicaCount,
    primary: source._hasPrimary()
      ? { index: source.primary.index as ReplicaIndex, address: text(source.primary, 0) }
      : null,
  };
}

// ---- requests ----

function writeRequest(target: CapRequest, request: Request): void {
  target.id = request.id;
  const body = request.body;
  switch (body.kind) {
    case 'execute': writeExecute(target._initExecute(), body); return;
    case 'query': {
      const query = target._initQuery();
      query.tenant = BigInt(body.tenant);
      writeStatement(query._initStatement(), body.statement);
      writeOptions(query._initOptions(), body.options);
      return;
    }
    case 'subscribe': {
      const subscribe = target._initSubscribe();
      subscribe.tenant = BigInt(body.tenant);
      subscribe.stream = body.stream;
      subscribe.from = BigInt(body.from);
      return;
    }
    case 'admin': writeAdmin(target._initAdmin(), body.admin); return;
    case 'cancel': target.cancel = body.target; return;
    case 'register': writeSession(target._initRegister(), body.session); return;
  }
}

function writeExecute(target: CapExecute, body: Extract<RequestBody, { kind: 'execute' }>): void {
  target.tenant = BigInt(body.tenant);
  const statements = target._initStatements(body.statements.length);
  body.statements.forEach((statement, i) => writeStatement(statements.get(i), statement));
  target.atomic = body.atomic;
  if (body.session !== null) writeSession(target._initSession(), body.session);
  writeOptions(target._initOptions(), body.options);
}

function writeStatement(target: CapStatement, statement: Statement): void {
  target.sql = statement.sql;
  const params = encodeValueList(statement.params);
  target._initParams(params.length).copyBuffer(params);
}

function writeSession(target: CapSession, session: Session): void {
  target.clientIdHigh = high64(session.clientId);
  target.clientIdLow = low64(session.clientId);
  target.requestNumber = session.requestNumber;
}

function writeOptions(target: CapOptions, options: RequestOptions): void {
  target.consistency = ordinalOf(CONSISTENCIES, options.consistency) as CapConsistency;
  target.position = BigInt(options.position);
  target.timeoutMs = options.timeoutMs;
  target.rowsLimit = options.rowsLimit;
}

function writeAdmin(target: ReturnType<CapRequest['_initAdmin']>, admin: AdminOp): void {
  switch (admin.op) {
    case 'createTenant': {
      const spec = target._initCreateTenant();
      spec.id = BigInt(admin.id);
      spec.name = admin.name;
      return;
    }
    case 'dropTenant': target.dropTenant = BigInt(admin.id); return;
    case 'listTenants': target.listTenants = true; return;
    case 'status': target.status = true; return;
    case 'createToken': {
      const spec = target._initCreateToken();
      const scopes = spec._initScopes(admin.scopes.length);
      admin.scopes.forEach((scope, i) => scopes.set(i, scope));
      spec.expiresAtMicros = admin.expiresAtMicros;
      return;
    }
  }
}

function readRequest(source: CapRequest): Request {
  return { id: source.id, body: readRequestBody(source) };
}

function readRequestBody(source: CapRequest): RequestBody {
  switch (source.which()) {
    case Request_Which.EXECUTE: {
      const execute = source.execute;
      return {
        kind: 'execute',
        tenant: safeNumber('request.execute.tenant', execute.tenant) as TenantId,
        statements: readStatements(execute),
        atomic: execute.atomic,
        session: execute._hasSession() ? readSession(execute.session) : null,
        options: execute._hasOptions() ? readOptions('request.execute.options', execute.options) : DEFAULT_REQUEST_OPTIONS,
      };
    }
    case Request_Which.QUERY: {
      const query = source.query;
      if (!query._hasStatement()) malformed('request.query.statement: missing');
      return {
        kind: 'query',
        tenant: safeNumber('request.query.tenant', query.tenant) as TenantId,
        statement: readStatement('request.query.statement', query.statement),
        options: query._hasOptions() ? readOptions('request.query.options', query.options) : DEFAULT_REQUEST_OPTIONS,
      };
    }
    case Request_Which.SUBSCRIBE: {
      const subscribe = source.subscribe;
      return {
        kind: 'subscribe',
        tenant: safeNumber('request.subscribe.tenant', subscribe.tenant) as TenantId,
        stream: text(subscribe, 0),
        from: safeNumber('request.subscribe.from', subscribe.from) as Position,
      };
    }
    case Request_Which.ADMIN: return { kind: 'admin', admin: readAdmin(source.admin) };
    case Request_Which.CANCEL: return { kind: 'cancel', target: source.cancel };
    case Request_Which.REGISTER:
      if (!source._hasRegister()) malformed('request.register: missing session');
      return { kind: 'register', session: readSession(source.register) };
    default: return malformed('request: unknown kind');
  }
}

function readStatements(execute: CapExecute): Statement[] {
  const list = execute.statements;
  if (list.length > limits.batchStatementsMax) malformed(`request.execute.statements: ${list.length} entries exceed ${limits.batchStatementsMax}`);
  const out: Statement[] = [];
  for (let i = 0; i < list.length; i++) out.push(readStatement(`request.execute.statements[${i}]`, list.get(i)));
  return out;
}

function readStatement(path: string, source: CapStatement): Statement {
  const sql = text(source, 0);
  if (!source._hasParams()) return { sql, params: [] };
  try {
    return { sql, params: decodeValueList(spend(source.params.toUint8Array())) };
  } catch (error) {
    return malformed(`${path}.params: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function readSession(source: CapSession): Session {
  return { clientId: u128(source.clientIdHigh, source.clientIdLow) as ClientId, requestNumber: source.requestNumber };
}

function readOptions(path: string, source: CapOptions): RequestOptions {
  return {
    consistency: enumName(`${path}.consistency`, CONSISTENCIES, source.consistency),
    position: safeNumber(`${path}.position`, source.position) as Position,
    timeoutMs: source.timeoutMs,
    rowsLimit: source.rowsLimit,
  };
}

function readAdmin(source: ReturnType<CapRequest['_initAdmin']>): AdminOp {
  switch (source.which()) {
    case Admin_Which.CREATE_TENANT: {
      if (!source._hasCreateTenant()) malformed('request.admin.createTenant: missing');
      const spec = source.createTenant;
      return { op: 'createTenant', id: safeNumber('request.admin.createTenant.id', spec.id) as TenantId, name: text(spec, 0) };
    }
    case Admin_Which.DROP_TENANT:
      return { op: 'dropTenant', id: safeNumber('request.admin.dropTenant', source.dropTenant) as TenantId };
    case Admin_Which.LIST_TENANTS: return { op: 'listTenants' };
    case Admin_Which.STATUS: return { op: 'status' };
    case Admin_Which.CREATE_TOKEN: {
      if (!source._hasCreateToken()) malformed('request.admin.createToken: missing');
      const spec = source.createToken;
      return {
        op: 'createToken',
        scopes: boundedList('request.admin.createToken.scopes', spec.scopes, wireLimits.tokenScopesMax).map(spend),
        expiresAtMicros: spec.expiresAtMicros,
      };
    }
    default: return malformed('request.admin: unknown operation');
  }
}

function safeNumber(path: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) malformed(`${path}: ${value} exceeds 2^53 - 1`);
  return Number(value);
}

// ---- responses ----

function writeResponse(target: CapResponse, response: Response): void {
  target.requestId = response.requestId;
  const body = response.body;
  switch (body.kind) {
    case 'result': writeResult(target._initResult(), body.result); return;
    case 'error': writeError(target._initError(), body.error); return;
    case 'tenants': {
      const tenants = target._initTenants(body.tenants.length);
      body.tenants.forEach((tenant, i) => {
        const entry = tenants.get(i);
        entry.id = BigInt(tenant.id);
        entry.name = tenant.name;
      });
      return;
    }
    case 'status': writeStatus(target._initStatus(), body.status); return;
    case 'token': target.token = body.token; return;
  }
}

function writeResult(target: CapResult, result: Result): void {
  target.statementIndex = result.statementIndex;
  const columns = target._initColumns(result.columns.length);
  result.columns.forEach((column, i) => {
    const entry = columns.get(i);
    entry.name = column.name;
    entry.type = ordinalOf(SQL_TYPE_ORDINALS, column.type) as CapSqlType;
  });
  const rows = encodeRowBlock(result.columns.length, result.rows);
  target._initRows(rows.length).copyBuffer(rows);
  target.rowsAffected = BigInt(result.rowsAffected);
  target.position = BigInt(result.position);
  target.final = result.final;
}

function writeError(target: CapError, error: WireError): void {
  target.code = ordinalOf(ERROR_CODE_ORDINALS, error.code) as CapErrorCode;
  target.message = error.message;
  const detail = target.detail;
  switch (error.code) {
    case 'NotPrimary': {
      const primary = detail._initNotPrimary();
      primary.index = error.primary.index;
      primary.address = error.primary.address;
      return;
    }
    case 'SqlError': {
      const sql = detail._initSql();
      sql.sqlState = error.sqlState;
      sql.line = error.line;
      sql.column = error.column;
      return;
    }
    case 'ConstraintViolation': detail.constraint = error.constraint; return;
    case 'QuotaExceeded':
    case 'Overloaded': detail.retryAfterMs = error.retryAfterMs; return;
    default: detail.none = true; return;
  }
}

function writeStatus(target: CapClusterStatus, status: ClusterStatus): void {
  target.clusterIdHigh = high64(status.clusterId);
  target.clusterIdLow = low64(status.clusterId);
  target.view = status.view;
  const replicas = target._initReplicas(status.replicas.length);
  status.replicas.forEach((replica, i) => {
    const entry = replicas.get(i);
    entry.index = replica.index;
    entry.address = replica.address;
    entry.role = ordinalOf(REPLICA_ROLE_ORDINALS, replica.role) as CapReplicaRole;
    entry.state = ordinalOf(REPLICA_STATE_ORDINALS, replica.state) as CapReplicaState;
    entry.view = replica.view;
    entry.commit = BigInt(replica.commit);
    entry.applied = BigInt(replica.applied);
  });
}

function readResponse(source: CapResponse): Response {
  return { requestId: source.requestId, body: readResponseBody(source) };
}

function readResponseBody(source: CapResponse): ResponseBody {
  switch (source.which()) {
    case Response_Which.RESULT:
      if (!source._hasResult()) malformed('response.result: missing');
      return { kind: 'result', result: readResult(source.result) };
    case Response_Which.ERROR:
      if (!source._hasError()) malformed('response.error: missing');
      return { kind: 'error', error: readError(source.error) };
    case Response_Which.TENANTS:
      return {
        kind: 'tenants',
        tenants: boundedList('response.tenants', source.tenants, wireLimits.tenantsListMax).map((tenant, i) => ({
          id: safeNumber(`response.tenants[${i}].id`, tenant.id) as TenantId, name: text(tenant, 0),
        })),
      };
    case Response_Which.STATUS:
      if (!source._hasStatus()) malformed('response.status: missing');
      return { kind: 'status', status: readStatus(source.status) };
    case Response_Which.TOKEN: return { kind: 'token', token: text(source, 0) };
    default: return malformed('response: unknown kind');
  }
}

function readResult(source: CapResult): Result {
  const columns = boundedList('response.result.columns', source.columns, wireLimits.resultColumnsMax).map((column, i) => ({
    name: text(column, 0), type: enumName(`response.result.columns[${i}].type`, SQL_TYPE_ORDINALS, column.type),
  }));
  let rows: Result['rows'] = [];
  if (source._hasRows()) {
    try {
      rows = decodeRowBlock(spend(source.rows.toUint8Array()), columns.map((column) => column.type));
    } catch (error) {
      malformed(`response.result.rows: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return {
    statementIndex: source.statementIndex,
    columns,
    rows,
    rowsAffected: safeNumber('response.result.rowsAffected', source.rowsAffected),
    position: safeNumber('response.result.position', source.position) as Position,
    final: source.final,
  };
}

function readError(source: CapError): WireError {
  const code = enumName('response.error.code', ERROR_CODE_ORDINALS, source.code);
  const message = text(source, 0);
  const detail = source.detail;
  const which = detail.which();
  const expect = (wanted: number): void => {
    if (which !== wanted) malformed(`response.error.detail: does not match code ${code}`);
  };
  switch (code) {
    case 'NotPrimary': {
      expect(Error_Detail_Which.NOT_PRIMARY);
      if (!detail._hasNotPrimary()) malformed('response.error.detail.notPrimary: missing');
      const primary = detail.notPrimary;
      return { code, message, primary: { index: primary.index as ReplicaIndex, address: text(primary, 0) } };
    }
    case 'SqlError': {
      expect(Error_Detail_Which.SQL);
      if (!detail._hasSql()) malformed('response.error.detail.sql: missing');
      const sql = detail.sql;
      return { code, message, sqlState: text(sql, 0), line: sql.line, column: sql.column };
    }
    case 'ConstraintViolation':
      expect(Error_Detail_Which.CONSTRAINT);
      return { code, message, constraint: text(detail, 1) };
    case 'QuotaExceeded':
    case 'Overloaded':
      expect(Error_Detail_Which.RETRY_AFTER_MS);
      return { code, message, retryAfterMs: detail.retryAfterMs };
    default:
      expect(Error_Detail_Which.NONE);
      return { code, message };
  }
}

function readStatus(source: CapClusterStatus): ClusterStatus {
  return {
    clusterId: u128(source.clusterIdHigh, source.clusterIdLow) as ClusterId,
    view: source.view,
    replicas: boundedList('response.status.replicas', source.replicas, 255).map((replica, i): ReplicaStatus => ({
      index: replica.index as ReplicaIndex,
      address: text(replica, 0),
      role: enumName(`response.status.replicas[${i}].role`, REPLICA_ROLE_ORDINALS, replica.role),
      state: enumName(`response.status.replicas[${i}].state`, REPLICA_STATE_ORDINALS, replica.state),
      view: replica.view,
      commit: safeNumber(`response.status.replicas[${i}].commit`, replica.commit) as Position,
      applied: safeNumber(`response.status.replicas[${i}].applied`, replica.applied) as Position,
    })),
  };
}
