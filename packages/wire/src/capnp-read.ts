import type { ClientId, ClusterId, Position, ReplicaIndex, TenantId } from '@veritydb/types';
import { CHECKSUM_BYTES, limits } from '@veritydb/types';
import * as capnp from 'capnp-es';
import type { ClientHello as CapClientHello, ServerHello as CapServerHello } from './generated/handshake.js';
import {
  Admin_Which, Request_Which, type Execute as CapExecute, type Options as CapOptions, type Request as CapRequest,
  type Session as CapSession, type Statement as CapStatement,
} from './generated/request.js';
import {
  Error_Detail_Which, Response_Which, VerifyReport_Which, type ClusterStatus as CapClusterStatus, type Error as CapError,
  type ExportChunk as CapExportChunk, type BackupDone as CapBackupDone, type BackupFileChunk as CapBackupFileChunk, type Response as CapResponse, type Result as CapResult, type VerifyReport as CapVerifyReport,
} from './generated/response.js';
import {
  CONSISTENCIES, ERROR_CODE_ORDINALS, REPLICA_ROLE_ORDINALS, REPLICA_STATE_ORDINALS, ROLES, SQL_TYPE_ORDINALS, u128,
} from './capnp-enums.js';
import { wireLimits } from './limits.js';
import {
  DEFAULT_REQUEST_OPTIONS, type AdminOp, type ClientHello, type ClusterStatus, type ReplicaStatus, type Request,
  type RequestBody, type RequestOptions, type Response, type ResponseBody, type Result, type ServerHello,
  type Session, type Statement, type VerifyOutcome, type VerifyReport, type WireError, type ExportChunk, type BackupDone, type BackupFileChunk,
} from './messages.js';
import { decodeRowBlock, decodeValueList } from './values.js';

/**
 * Cap'n Proto readers → typed messages. Structural checks happen here (list lengths before any
 * iteration, required pointers, enum values, u64 → safe integer, strict text, the content
 * budget); field rules are validate.ts's, applied to the result by the caller.
 */

/** A defect found while reading; the decoder turns it into `{ ok: false, reason }`. */
export class Malformed extends Error {}

export function malformed(reason: string): never {
  throw new Malformed(reason);
}

/**
 * Bytes of text and data the current decode may still read. Cap'n Proto pointers may overlap, so
 * a small payload could point a thousand statements at one large text; capnp-es would decode it
 * a thousand times. Honest messages never read more content than the payload holds, so reading
 * is capped at the payload's size. Decoding is synchronous, so one module-level counter is safe.
 */
let contentBudget = 0;

/** Starts reading one payload of `payloadBytes` bytes. */
export function startPayload(payloadBytes: number): void {
  contentBudget = payloadBytes;
}

function spend<T extends string | Uint8Array>(value: T): T {
  contentBudget -= value.length;
  if (contentBudget < 0) malformed('payload content: more text and data read than the payload holds (overlapping pointers)');
  return value;
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

function safeNumber(path: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) malformed(`${path}: ${value} exceeds 2^53 - 1`);
  return Number(value);
}

export function readClientHello(source: CapClientHello): ClientHello {
  return {
    versions: boundedList('hello.versions', source.versions, wireLimits.helloVersionsMax),
    role: enumName('hello.role', ROLES, source.role),
    token: text(source, 1),
    clientName: text(source, 2),
    clusterId: u128(source.clusterIdHigh, source.clusterIdLow) as ClusterId,
    replicaIndex: source.replicaIndex as ReplicaIndex,
  };
}

export function readServerHello(source: CapServerHello): ServerHello {
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

export function readRequest(source: CapRequest): Request {
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
    case Admin_Which.VERIFY: {
      if (!source._hasVerify()) malformed('request.admin.verify: missing');
      const tenant = safeNumber('request.admin.verify.tenant', source.verify.tenant);
      return { op: 'verify', tenant: tenant === 0 ? null : tenant as TenantId };
    }
    case Admin_Which.EXPORT_TENANT:
      return { op: 'exportTenant', tenant: safeNumber('request.admin.exportTenant', source.exportTenant) as TenantId };
    case Admin_Which.BACKUP: return { op: 'backup' };
    default: return malformed('request.admin: unknown operation');
  }
}

export function readResponse(source: CapResponse): Response {
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
    case Response_Which.VERIFY:
      if (!source._hasVerify()) malformed('response.verify: missing');
      return { kind: 'verify', verify: readVerifyReport(source.verify) };
    case Response_Which.EXPORT_CHUNK:
      if (!source._hasExportChunk()) malformed('response.exportChunk: missing');
      return { kind: 'exportChunk', chunk: readExportChunk(source.exportChunk) };
    case Response_Which.BACKUP_FILE:
      if (!source._hasBackupFile()) malformed('response.backupFile: missing');
      return { kind: 'backupFile', file: readBackupFile(source.backupFile) };
    case Response_Which.BACKUP_DONE:
      if (!source._hasBackupDone()) malformed('response.backupDone: missing');
      return { kind: 'backupDone', done: readBackupDone(source.backupDone) };
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

function readVerifyReport(source: CapVerifyReport): VerifyReport {
  return {
    checked: safeNumber('response.verify.checked', source.checked),
    total: safeNumber('response.verify.total', source.total),
    head: safeNumber('response.verify.head', source.head) as Position,
    outcome: readVerifyOutcome(source),
  };
}

function readVerifyOutcome(source: CapVerifyReport): VerifyOutcome {
  switch (source.which()) {
    case VerifyReport_Which.PROGRESS: return { kind: 'progress' };
    case VerifyReport_Which.OK: return { kind: 'ok' };
    case VerifyReport_Which.BROKEN: {
      if (!source._hasBroken()) malformed('response.verify.broken: missing');
      const fault = source.broken;
      return {
        kind: 'broken', position: safeNumber('response.verify.broken.position', fault.position) as Position,
        reason: text(fault, 0), detail: text(fault, 1), file: text(fault, 2),
      };
    }
    default: return malformed('response.verify: unknown outcome');
  }
}

function readExportChunk(source: CapExportChunk): ExportChunk {
  const data = source._hasData() ? source.data : null;
  if (data !== null && data.length > wireLimits.exportChunkBytesMax) malformed(`response.exportChunk.data: ${data.length} bytes exceed ${wireLimits.exportChunkBytesMax}`);
  return { data: data === null ? new Uint8Array(0) : spend(data.toUint8Array()).slice(), final: source.final };
}

function readBackupFile(source: CapBackupFileChunk): BackupFileChunk {
  const data = source._hasData() ? source.data : null;
  if (data !== null && data.length > wireLimits.backupChunkBytesMax) malformed(`response.backupFile.data: ${data.length} bytes exceed ${wireLimits.backupChunkBytesMax}`);
  const blake3 = source._hasBlake3() ? source.blake3 : null;
  if (blake3 !== null && blake3.length !== CHECKSUM_BYTES) malformed(`response.backupFile.blake3: ${blake3.length} bytes, not ${CHECKSUM_BYTES}`);
  return {
    path: text(source, 0), mode: source.mode,
    bytes: safeNumber('response.backupFile.bytes', source.bytes), offset: safeNumber('response.backupFile.offset', source.offset),
    data: data === null ? new Uint8Array(0) : spend(data.toUint8Array()).slice(),
    blake3: blake3 === null ? null : spend(blake3.toUint8Array()).slice(),
  };
}

function readBackupDone(source: CapBackupDone): BackupDone {
  const stateHash = source._hasStateHash() ? source.stateHash : null;
  if (stateHash === null || stateHash.length !== CHECKSUM_BYTES) malformed(`response.backupDone.stateHash: not ${CHECKSUM_BYTES} bytes`);
  return {
    clusterId: u128(source.clusterIdHigh, source.clusterIdLow) as ClusterId,
    position: safeNumber('response.backupDone.position', source.position) as Position,
    stateHash: spend((stateHash as NonNullable<typeof stateHash>).toUint8Array()).slice(),
    files: safeNumber('response.backupDone.files', source.files),
    bytes: safeNumber('response.backupDone.bytes', source.bytes),
  };
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
