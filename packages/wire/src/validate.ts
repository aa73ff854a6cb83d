import { CHECKSUM_BYTES, limits, U128_MAX, SQL_TYPES } from '@veritydb/types';
import { wireLimits } from './limits.js';
import {
  CONSISTENCY_MODES, ERROR_CODES, REPLICA_ROLES, REPLICA_STATES, type AdminOp, type ClientHello, type ClientMessage,
  type ClusterStatus, type RequestOptions, type Request, type Response, type Result, type ServerHello,
  type ServerMessage, type Session, type Statement, type VerifyReport, type WireError, type BackupFileChunk,
} from './messages.js';
import { valueFitsType, type WireValue } from './values.js';

/**
 * Field-by-field validation of typed messages, shared by the encoders (which refuse to write an
 * invalid message) and the decoders (which refuse to return one). Both sides therefore accept
 * exactly the same set of messages. Each function returns null or a reason naming the field.
 */
export function validateClientMessage(message: ClientMessage): string | null {
  return attempt(() => {
    switch (message.kind) {
      case 'hello': checkClientHello(message.hello); return;
      case 'request': checkRequest(message.request); return;
    }
  });
}

export function validateServerMessage(message: ServerMessage): string | null {
  return attempt(() => {
    switch (message.kind) {
      case 'hello': checkServerHello(message.hello); return;
      case 'response': checkResponse(message.response); return;
    }
  });
}

/** Byte bound for result column names (expressions such as `count(*)` are named by their text). */
const COLUMN_NAME_BYTES_MAX = 255;
const U64_MAX = (1n << 64n) - 1n;
const SQLSTATE_PATTERN = /^[0-9A-Z]{5}$/;
const LONE_SURROGATE = /\p{Cs}/u;
const SCOPE_PATTERN = /^[\x21-\x7e]+$/;

class Invalid extends Error {}

function attempt(check: () => void): string | null {
  try {
    check();
    return null;
  } catch (error) {
    if (error instanceof Invalid) return error.message;
    throw error;
  }
}

function invalid(path: string, problem: string): never {
  throw new Invalid(`${path}: ${problem}`);
}

function checkClientHello(hello: ClientHello): void {
  const path = 'hello';
  checkCount(`${path}.versions`, hello.versions.length, 1, wireLimits.helloVersionsMax);
  hello.versions.forEach((version, i) => checkUint(`${path}.versions[${i}]`, version, 1, 0xffff));
  if (new Set(hello.versions).size !== hello.versions.length) invalid(`${path}.versions`, 'duplicate versions');
  if (hello.role !== 'client' && hello.role !== 'replica') invalid(`${path}.role`, 'unknown role');
  checkText(`${path}.token`, hello.token, 1, wireLimits.tokenBytesMax);
  checkText(`${path}.clientName`, hello.clientName, 0, wireLimits.clientNameBytesMax);
  checkBigUint(`${path}.clusterId`, hello.clusterId, 0n, U128_MAX);
  checkUint(`${path}.replicaIndex`, hello.replicaIndex, 0, limits.replicasMax - 1);
  if (hello.role === 'client' && hello.replicaIndex !== 0) invalid(`${path}.replicaIndex`, 'must be 0 for a client');
  if (hello.role === 'replica' && hello.clusterId === 0n) invalid(`${path}.clusterId`, 'a replica must name its cluster');
}

function checkServerHello(hello: ServerHello): void {
  const path = 'hello';
  checkUint(`${path}.version`, hello.version, 1, 0xffff);
  checkBigUint(`${path}.clusterId`, hello.clusterId, 0n, U128_MAX);
  checkUint(`${path}.replicaCount`, hello.replicaCount, 1, limits.replicasMax);
  checkUint(`${path}.replicaIndex`, hello.replicaIndex, 0, hello.replicaCount - 1);
  if (hello.primary !== null) {
    checkUint(`${path}.primary.index`, hello.primary.index, 0, hello.replicaCount - 1);
    checkText(`${path}.primary.address`, hello.primary.address, 1, wireLimits.addressBytesMax);
  }
}

function checkRequest(request: Request): void {
  checkBigUint('request.id', request.id, 1n, U64_MAX);
  const body = request.body;
  const path = `request.${body.kind}`;
  switch (body.kind) {
    case 'execute':
      checkUint(`${path}.tenant`, body.tenant, 0, Number.MAX_SAFE_INTEGER);
      checkCount(`${path}.statements`, body.statements.length, 1, limits.batchStatementsMax);
      body.statements.forEach((statement, i) => checkStatement(`${path}.statements[${i}]`, statement));
      if (body.session !== null) checkSession(`${path}.session`, body.session, 1);
      checkOptions(`${path}.options`, body.options);
      return;
    case 'query':
      checkUint(`${path}.tenant`, body.tenant, 0, Number.MAX_SAFE_INTEGER);
      checkStatement(`${path}.statement`, body.statement);
      checkOptions(`${path}.options`, body.options);
      return;
    case 'subscribe':
      checkUint(`${path}.tenant`, body.tenant, 0, Number.MAX_SAFE_INTEGER);
      checkText(`${path}.stream`, body.stream, 1, limits.identifierBytesMax);
      checkUint(`${path}.from`, body.from, 1, Number.MAX_SAFE_INTEGER);
      return;
    case 'admin': checkAdmin(path, body.admin); return;
    case 'cancel': checkBigUint(`${path}.target`, body.target, 1n, U64_MAX); return;
    case 'register': checkSession(`${path}.session`, body.session, 0); return;
  }
}

function checkStatement(path: string, statement: Statement): void {
  checkText(`${path}.sql`, statement.sql, 1, limits.sqlTextBytesMax);
  checkCount(`${path}.params`, statement.params.length, 0, wireLimits.paramsMax);
}

function checkSession(path: string, session: Session, requestNumberMin: number): void {
  checkBigUint(`${path}.clientId`, session.clientId, 1n, U128_MAX);
  const requestNumberMax = requestNumberMin === 0 ? 0 : 0xffff_ffff;
  checkUint(`${path}.requestNumber`, session.requestNumber, requestNumberMin, requestNumberMax);
}

function checkOptions(path: string, options: RequestOptions): void {
  if (!CONSISTENCY_MODES.includes(options.consistency)) invalid(`${path}.consistency`, 'unknown mode');
  checkUint(`${path}.position`, options.position, 0, Number.MAX_SAFE_INTEGER);
  if ((options.consistency === 'linearizable' || options.consistency === 'eventual') && options.position !== 0) {
    invalid(`${path}.position`, `must be 0 for ${options.consistency} reads`);
  }
  if (options.consistency === 'atPosition' && options.position === 0) invalid(`${path}.position`, 'atPosition needs a position ≥ 1');
  checkUint(`${path}.timeoutMs`, options.timeoutMs, 0, 0xffff_ffff);
  checkUint(`${path}.rowsLimit`, options.rowsLimit, 0, limits.queryRowsMax);
}

function checkAdmin(path: string, admin: AdminOp): void {
  switch (admin.op) {
    case 'createTenant':
      checkUint(`${path}.createTenant.id`, admin.id, 1, Number.MAX_SAFE_INTEGER);
      checkText(`${path}.createTenant.name`, admin.name, 1, limits.identifierBytesMax);
      return;
    case 'dropTenant': checkUint(`${path}.dropTenant`, admin.id, 1, Number.MAX_SAFE_INTEGER); return;
    case 'listTenants':
    case 'status': return;
    case 'createToken':
      checkCount(`${path}.createToken.scopes`, admin.scopes.length, 1, wireLimits.tokenScopesMax);
      admin.scopes.forEach((scope, i) => {
        checkText(`${path}.createToken.scopes[${i}]`, scope, 1, wireLimits.scopeBytesMax);
        if (!SCOPE_PATTERN.test(scope)) invalid(`${path}.createToken.scopes[${i}]`, 'scopes are printable ASCII without spaces');
      });
      checkBigUint(`${path}.createToken.expiresAtMicros`, admin.expiresAtMicros, 0n, U64_MAX);
      return;
    case 'verify':
      if (admin.tenant !== null) checkUint(`${path}.verify.tenant`, admin.tenant, 1, Number.MAX_SAFE_INTEGER);
      return;
    case 'exportTenant': checkUint(`${path}.exportTenant`, admin.tenant, 1, Number.MAX_SAFE_INTEGER); return;
    case 'backup': return;
    default: invalid(`${path}`, 'unknown admin operation');
  }
}

function checkResponse(response: Response): void {
  checkBigUint('response.requestId', response.requestId, 0n, U64_MAX);
  const body = response.body;
  if (response.requestId === 0n && body.kind !== 'error') invalid('response.requestId', 'only errors may have id 0');
  const path = `response.${body.kind}`;
  switch (body.kind) {
    case 'result': checkResult(path, body.result); return;
    case 'error': checkError(path, body.error); return;
    case 'tenants':
      checkCount(path, body.tenants.length, 0, wireLimits.tenantsListMax);
      body.tenants.forEach((tenant, i) => {
        checkUint(`${path}[${i}].id`, tenant.id, 0, Number.MAX_SAFE_INTEGER);
        checkText(`${path}[${i}].name`, tenant.name, 1, limits.identifierBytesMax);
      });
      return;
    case 'status': checkStatus(path, body.status); return;
    case 'token': checkText(path, body.token, 1, wireLimits.tokenBytesMax); return;
    case 'verify': checkVerifyReport(path, body.verify); return;
    case 'exportChunk':
      if (!(body.chunk.data instanceof Uint8Array)) invalid(`${path}.data`, 'not bytes');
      checkCount(`${path}.data`, body.chunk.data.length, 0, wireLimits.exportChunkBytesMax);
      return;
    case 'backupFile': checkBackupFile(path, body.file); return;
    case 'backupDone':
      checkUint(`${path}.position`, body.done.position, 0, Number.MAX_SAFE_INTEGER);
      checkBytes(`${path}.stateHash`, body.done.stateHash, CHECKSUM_BYTES, CHECKSUM_BYTES);
      checkUint(`${path}.files`, body.done.files, 0, wireLimits.backupFilesMax);
      checkUint(`${path}.bytes`, body.done.bytes, 0, Number.MAX_SAFE_INTEGER);
      return;
  }
}

function checkBackupFile(path: string, file: BackupFileChunk): void {
  checkText(`${path}.path`, file.path, 1, wireLimits.pathBytesMax);
  if (!isBackupPath(file.path)) invalid(`${path}.path`, `${JSON.stringify(file.path)} is not a relative '/'-separated path inside the data dir`);
  checkUint(`${path}.mode`, file.mode, 0, 0o777);
  checkUint(`${path}.bytes`, file.bytes, 0, Number.MAX_SAFE_INTEGER);
  checkUint(`${path}.offset`, file.offset, 0, file.bytes);
  checkBytes(`${path}.data`, file.data, file.bytes === 0 ? 0 : 1, Math.min(wireLimits.backupChunkBytesMax, file.bytes - file.offset));
  const last = file.offset + file.data.length === file.bytes;
  if (last !== (file.blake3 !== null)) invalid(`${path}.blake3`, 'is set on a file\'s last chunk and only there');
  if (file.blake3 !== null) checkBytes(`${path}.blake3`, file.blake3, CHECKSUM_BYTES, CHECKSUM_BYTES);
}

/**
 * Whether `path` names a file inside a data dir: relative, '/'-separated, no empty, `.` or `..`
 * part, no backslash (a separator elsewhere). Backup paths must be, so a client can write them
 * under its target directory without leaving it.
 */
export function isBackupPath(path: string): boolean {
  return path !== '' && !path.includes('\\') && path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function checkBytes(path: string, bytes: Uint8Array, min: number, max: number): void {
  if (!(bytes instanceof Uint8Array)) invalid(path, 'not bytes');
  if (bytes.length < min || bytes.length > max) invalid(path, `${bytes.length} bytes, expected ${min}..${max}`);
}

function checkVerifyReport(path: string, report: VerifyReport): void {
  checkUint(`${path}.checked`, report.checked, 0, Number.MAX_SAFE_INTEGER);
  checkUint(`${path}.total`, report.total, 0, Number.MAX_SAFE_INTEGER);
  checkUint(`${path}.head`, report.head, 0, Number.MAX_SAFE_INTEGER);
  const outcome = report.outcome;
  switch (outcome.kind) {
    case 'progress':
    case 'ok': return;
    case 'broken':
      checkUint(`${path}.broken.position`, outcome.position, 1, Number.MAX_SAFE_INTEGER);
      checkText(`${path}.broken.reason`, outcome.reason, 1, wireLimits.verifyReasonBytesMax);
      checkText(`${path}.broken.detail`, outcome.detail, 0, wireLimits.errorMessageBytesMax);
      checkText(`${path}.broken.file`, outcome.file, 0, wireLimits.pathBytesMax);
      return;
    default: invalid(`${path}.outcome`, 'unknown outcome');
  }
}

function checkResult(path: string, result: Result): void {
  checkUint(`${path}.statementIndex`, result.statementIndex, 0, limits.batchStatementsMax - 1);
  checkCount(`${path}.columns`, result.columns.length, 0, wireLimits.resultColumnsMax);
  result.columns.forEach((column, i) => {
    checkText(`${path}.columns[${i}].name`, column.name, 1, COLUMN_NAME_BYTES_MAX);
    if (!SQL_TYPES.includes(column.type)) invalid(`${path}.columns[${i}].type`, 'unknown SQL type');
  });
  checkCount(`${path}.rows`, result.rows.length, 0, limits.queryRowsMax);
  if (result.columns.length === 0 && result.rows.length > 0) invalid(`${path}.rows`, 'rows without columns');
  result.rows.forEach((row, r) => {
    if (row.length !== result.columns.length) invalid(`${path}.rows[${r}]`, `${row.length} values for ${result.columns.length} columns`);
    row.forEach((value: WireValue, c) => {
      const type = result.columns[c]?.type ?? invalid(`${path}.rows[${r}][${c}]`, 'no column');
      if (!valueFitsType(value, type)) invalid(`${path}.rows[${r}][${c}]`, `a ${value.kind} value in a ${type} column`);
    });
  });
  checkUint(`${path}.rowsAffected`, result.rowsAffected, 0, Number.MAX_SAFE_INTEGER);
  checkUint(`${path}.position`, result.position, 0, Number.MAX_SAFE_INTEGER);
}

function checkError(path: string, error: WireError): void {
  if (!ERROR_CODES.includes(error.code)) invalid(`${path}.code`, 'unknown error code');
  checkText(`${path}.message`, error.message, 0, wireLimits.errorMessageBytesMax);
  switch (error.code) {
    case 'NotPrimary':
      checkUint(`${path}.primary.index`, error.primary.index, 0, limits.replicasMax - 1);
      checkText(`${path}.primary.address`, error.primary.address, 1, wireLimits.addressBytesMax);
      return;
    case 'SqlError':
      if (!SQLSTATE_PATTERN.test(error.sqlState)) invalid(`${path}.sqlState`, 'must be five characters 0-9A-Z');
      checkUint(`${path}.line`, error.line, 0, 0xffff_ffff);
      checkUint(`${path}.column`, error.column, 0, 0xffff_ffff);
      return;
    case 'ConstraintViolation':
      checkText(`${path}.constraint`, error.constraint, 1, COLUMN_NAME_BYTES_MAX);
      return;
    case 'QuotaExceeded':
    case 'Overloaded':
      checkUint(`${path}.retryAfterMs`, error.retryAfterMs, 0, 0xffff_ffff);
      return;
    default:
      return;
  }
}

function checkStatus(path: string, status: ClusterStatus): void {
  checkBigUint(`${path}.clusterId`, status.clusterId, 0n, U128_MAX);
  checkUint(`${path}.view`, status.view, 0, 0xffff_ffff);
  checkCount(`${path}.replicas`, status.replicas.length, 1, limits.replicasMax);
  status.replicas.forEach((replica, i) => {
    const at = `${path}.replicas[${i}]`;
    checkUint(`${at}.index`, replica.index, 0, limits.replicasMax - 1);
    checkText(`${at}.address`, replica.address, 1, wireLimits.addressBytesMax);
    if (!REPLICA_ROLES.includes(replica.role)) invalid(`${at}.role`, 'unknown role');
    if (!REPLICA_STATES.includes(replica.state)) invalid(`${at}.state`, 'unknown state');
    checkUint(`${at}.view`, replica.view, 0, 0xffff_ffff);
    checkUint(`${at}.commit`, replica.commit, 0, Number.MAX_SAFE_INTEGER);
    checkUint(`${at}.applied`, replica.applied, 0, Number.MAX_SAFE_INTEGER);
  });
}

function checkUint(path: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) invalid(path, `${value} is not an integer in [${min}, ${max}]`);
}

function checkBigUint(path: string, value: bigint, min: bigint, max: bigint): void {
  if (typeof value !== 'bigint' || value < min || value > max) invalid(path, `${String(value)} is not in [${min}, ${max}]`);
}

function checkCount(path: string, count: number, min: number, max: number): void {
  if (count < min || count > max) invalid(path, `${count} entries, expected ${min}..${max}`);
}

/** UTF-8 byte length within [min, max] and no lone surrogate (which UTF-8 cannot carry). */
function checkText(path: string, text: string, min: number, max: number): void {
  if (typeof text !== 'string') invalid(path, 'not a string');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes < min || bytes > max) invalid(path, `${bytes} bytes, expected ${min}..${max}`);
  if (LONE_SURROGATE.test(text)) invalid(path, 'contains a lone UTF-16 surrogate');
  if (text.includes('\u0000')) invalid(path, 'contains a NUL character');
}
