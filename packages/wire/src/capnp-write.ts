import type { ClientHello as CapClientHello, ServerHello as CapServerHello } from './generated/handshake.js';
import type {
  Consistency as CapConsistency, Execute as CapExecute, Options as CapOptions, Request as CapRequest,
  Session as CapSession, Statement as CapStatement,
} from './generated/request.js';
import type {
  ClusterStatus as CapClusterStatus, Error as CapError, ErrorCode as CapErrorCode, ReplicaRole as CapReplicaRole,
  ReplicaState as CapReplicaState, Response as CapResponse, Result as CapResult, SqlType as CapSqlType,
  VerifyReport as CapVerifyReport,
} from './generated/response.js';
import type { Role as CapRole } from './generated/handshake.js';
import {
  CONSISTENCIES, ERROR_CODE_ORDINALS, REPLICA_ROLE_ORDINALS, REPLICA_STATE_ORDINALS, ROLES, SQL_TYPE_ORDINALS,
  high64, low64, ordinalOf,
} from './capnp-enums.js';
import type {
  AdminOp, ClientHello, ClusterStatus, Request, RequestBody, RequestOptions, Response, Result, ServerHello, Session,
  Statement, VerifyReport, WireError,
} from './messages.js';
import { encodeRowBlock, encodeValueList } from './values.js';

/**
 * Typed messages → Cap'n Proto builders. Callers validate first (validate.ts), so these only
 * copy fields; values and rows are written in the compact encoding of values.ts.
 */

export function writeClientHello(target: CapClientHello, hello: ClientHello): void {
  const versions = target._initVersions(hello.versions.length);
  hello.versions.forEach((version, i) => versions.set(i, version));
  target.role = ordinalOf(ROLES, hello.role) as CapRole;
  target.token = hello.token;
  target.clientName = hello.clientName;
  target.clusterIdHigh = high64(hello.clusterId);
  target.clusterIdLow = low64(hello.clusterId);
  target.replicaIndex = hello.replicaIndex;
}

export function writeServerHello(target: CapServerHello, hello: ServerHello): void {
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

export function writeRequest(target: CapRequest, request: Request): void {
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
    case 'verify': target._initVerify().tenant = BigInt(admin.tenant ?? 0); return;
    case 'exportTenant': target.exportTenant = BigInt(admin.tenant); return;
    case 'backup': target.backup = true; return;
  }
}

export function writeResponse(target: CapResponse, response: Response): void {
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
    case 'verify': writeVerifyReport(target._initVerify(), body.verify); return;
    case 'exportChunk': {
      const chunk = target._initExportChunk();
      chunk._initData(body.chunk.data.length).copyBuffer(body.chunk.data);
      chunk.final = body.chunk.final;
      return;
    }
    case 'backupFile': {
      const file = target._initBackupFile();
      file.path = body.file.path;
      file.mode = body.file.mode;
      file.bytes = BigInt(body.file.bytes);
      file.offset = BigInt(body.file.offset);
      file._initData(body.file.data.length).copyBuffer(body.file.data);
      if (body.file.blake3 !== null) file._initBlake3(body.file.blake3.length).copyBuffer(body.file.blake3);
      return;
    }
    case 'backupDone': {
      const done = target._initBackupDone();
      done.clusterIdHigh = high64(body.done.clusterId);
      done.clusterIdLow = low64(body.done.clusterId);
      done.position = BigInt(body.done.position);
      done._initStateHash(body.done.stateHash.length).copyBuffer(body.done.stateHash);
      done.files = BigInt(body.done.files);
      done.bytes = BigInt(body.done.bytes);
      return;
    }
  }
}

function writeVerifyReport(target: CapVerifyReport, report: VerifyReport): void {
  target.checked = BigInt(report.checked);
  target.total = BigInt(report.total);
  target.head = BigInt(report.head);
  const outcome = report.outcome;
  switch (outcome.kind) {
    case 'progress': target.progress = true; return;
    case 'ok': target.ok = true; return;
    case 'broken': {
      const fault = target._initBroken();
      fault.position = BigInt(outcome.position);
      fault.reason = outcome.reason;
      fault.detail = outcome.detail;
      fault.file = outcome.file;
      return;
    }
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
