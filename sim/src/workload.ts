import { assertNever, position, tenantId, type Prng, type Row, type TenantId } from '@veritydb/types';
import { decodeReply, encodeEnvelope, type Kernel, type Reply, type Statement } from '@veritydb/kernel';
import { SafetyViolation } from './checker.js';

/**
 * What simulated clients ask the real kernel: each client belongs to one tenant and sends tenant
 * creates, the table's DDL, and INSERT/UPDATE/DELETE batches, some of which fail (duplicate keys,
 * a statement on a table that does not exist, DDL that was already applied, anything before the
 * tenant exists). Every row carries its tenant's marker, so a read that shows another tenant's
 * marker is a tenant isolation failure.
 */
export type RequestKind = 'tenant_create' | 'create_table' | 'insert' | 'update' | 'delete' | 'failing_batch';

export interface WorkRequest {
  readonly kind: RequestKind;
  readonly tenant: TenantId;
  /** Keys the batch's statements touch, in order. */
  readonly ids: readonly number[];
  readonly statements: readonly Statement[];
  readonly body: Uint8Array;
}

/** Tenants in a run: small, so tenants share the cluster's log and interleave. */
export const TENANTS_MAX = 3;
/** Row keys per tenant: small, so inserts collide (duplicate key) and updates find rows. */
const KEYS_PER_TENANT = 12;
const BATCH_STATEMENTS_MAX = 3;

export const TABLE_DDL = 'CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, marker TEXT NOT NULL)';
const INSERT = 'INSERT INTO items (id, v, marker) VALUES ($1, $2, $3)';
const UPDATE = 'UPDATE items SET v = v + $1 WHERE id = $2';
const DELETE = 'DELETE FROM items WHERE id = $1';
const MISSING_TABLE = 'INSERT INTO missing_table (id) VALUES ($1)';

/** The marker every row of `tenant` carries. */
export function markerOf(tenant: TenantId): string {
  return `tenant-${tenant}-row`;
}

/** The tenant of simulated client `index` among `clientCount`. */
export function tenantOfClient(index: number, clientCount: number): TenantId {
  return tenantId(1 + (index % Math.min(TENANTS_MAX, Math.max(2, Math.ceil(clientCount / 2)))));
}

/**
 * What a client has learnt from its replies: whether its tenant and table exist. Until they do,
 * it mostly asks for them (the rest of its requests fail, as they should).
 */
export interface ClientProgress {
  tenantExists: boolean;
  tableExists: boolean;
}

/** Updates `progress` from an accepted reply to `request`. */
export function learn(progress: ClientProgress, request: WorkRequest, reply: Reply): void {
  if (reply.kind === 'tenant_created' || (reply.kind === 'rejected' && reply.error.code === 'TenantExists')) progress.tenantExists = true;
  if (request.kind === 'create_table' && (reply.kind === 'sql' || (reply.kind === 'rejected' && reply.error.code !== 'TenantNotFound'))) {
    progress.tableExists = true;
  }
}

function nextKind(progress: ClientProgress, prng: Prng): RequestKind {
  const roll = prng.int(100);
  if (!progress.tenantExists && roll < 70) return 'tenant_create';
  if (!progress.tableExists && roll < 70) return 'create_table';
  return roll < 3 ? 'tenant_create' : roll < 6 ? 'create_table' : roll < 50 ? 'insert'
    : roll < 72 ? 'update' : roll < 90 ? 'delete' : 'failing_batch';
}

/** The next request of a client of `tenant`, drawn from `prng`. */
export function nextRequest(tenant: TenantId, actor: string, progress: ClientProgress, prng: Prng): WorkRequest {
  const kind = nextKind(progress, prng);
  const ids = Array.from({ length: 1 + prng.int(BATCH_STATEMENTS_MAX) }, () => prng.int(KEYS_PER_TENANT));
  if (kind === 'tenant_create') {
    const body = encodeEnvelope({ tenant, actor, command: { kind: 'tenant_create', id: tenant, name: `tenant ${tenant}` } });
    return { kind, tenant, ids: [], statements: [], body };
  }
  const statements = statementsOf(kind, tenant, ids, prng);
  const body = encodeEnvelope({ tenant, actor, command: { kind: 'sql', statements } });
  return { kind, tenant, ids: kind === 'create_table' ? [] : ids, statements, body };
}

function statementsOf(kind: Exclude<RequestKind, 'tenant_create'>, tenant: TenantId, ids: readonly number[], prng: Prng): Statement[] {
  switch (kind) {
    case 'create_table': return [{ sql: TABLE_DDL, params: [] }];
    case 'insert': return ids.map((id) => ({ sql: INSERT, params: [id, prng.int(100), markerOf(tenant)] }));
    case 'update': return ids.map((id) => ({ sql: UPDATE, params: [1 + prng.int(9), id] }));
    case 'delete': return ids.map((id) => ({ sql: DELETE, params: [id] }));
    case 'failing_batch':
      return [...ids.map((id) => ({ sql: INSERT, params: [id, prng.int(100), markerOf(tenant)] })), { sql: MISSING_TABLE, params: [1] }];
    default: return assertNever(kind);
  }
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

/**
 * An accepted reply makes sense for its request: it decodes, has the request's shape, and a
 * batch with a failing statement is never reported as applied. Returns the decoded reply.
 */
export function checkReply(request: WorkRequest, body: Uint8Array, op: number): Reply {
  const decoded = decodeReply(body);
  if (!decoded.ok) fail(`reply at op ${op} does not decode: ${decoded.reason}`);
  const reply = decoded.value;
  const where = `${request.kind} of tenant ${request.tenant} at op ${op}`;
  if (reply.kind === 'rejected') {
    if (request.kind === 'failing_batch' && reply.error.statement === request.statements.length - 1 && reply.error.code !== 'UndefinedTable') {
      fail(`${where}: the statement on a missing table failed with ${reply.error.code}`);
    }
    return reply;
  }
  if (request.kind === 'failing_batch') fail(`${where}: a batch with a failing statement was applied`);
  if (request.kind === 'tenant_create') {
    if (reply.kind !== 'tenant_created' || reply.tenant !== request.tenant) fail(`${where}: reply ${reply.kind}`);
    return reply;
  }
  if (reply.kind !== 'sql' || reply.statements.length !== request.statements.length) fail(`${where}: reply ${reply.kind} of the wrong shape`);
  if (request.kind === 'insert' && reply.statements.some((s) => s.rowsAffected !== 1)) fail(`${where}: an insert did not insert one row`);
  return reply;
}

/**
 * Reads `tenant`'s rows through `kernel` as they were at `op` (the position of an accepted reply)
 * and checks them: every row carries the tenant's own marker (no other tenant's rows, also in
 * `__events`), and what the reply said happened is visible (inserted and updated keys present,
 * deleted keys gone).
 */
export function checkStateAtReply(
  kernel: Kernel, request: WorkRequest, reply: Reply, op: number, tenants: readonly TenantId[], eventsCheckedTo: Map<TenantId, number>,
): void {
  const where = `tenant ${request.tenant} read at op ${op}`;
  const read = kernel.read(request.tenant, 'SELECT id, marker FROM items', [], position(op));
  if (!read.ok) {
    if (reply.kind === 'sql') fail(`${where}: ${read.error.code} after a successful ${request.kind}`);
    return;
  }
  const own = markerOf(request.tenant);
  const present = new Set<number>();
  for (const row of read.rows) {
    if (row[1] !== own) fail(`${where}: sees row ${String(row[0])} with marker ${String(row[1])}`);
    present.add(Number(row[0]));
  }
  if (reply.kind === 'sql') {
    const last = request.ids[request.ids.length - 1];
    const touched = reply.statements.map((s, i) => ({ id: request.ids[i], affected: s.rowsAffected }));
    for (const { id, affected } of touched) {
      if (id === undefined) continue;
      if (request.kind === 'insert' && !present.has(id)) fail(`${where}: inserted key ${id} is missing`);
      if (request.kind === 'update' && affected === 1 && !present.has(id)) fail(`${where}: updated key ${id} is missing`);
    }
    if (request.kind === 'delete' && last !== undefined && present.has(last)) fail(`${where}: deleted key ${last} is present`);
  }
  // Events below what an earlier read checked are the same rows (state hashes agree), so each
  // tenant's __events is read once overall, not once per reply.
  const from = eventsCheckedTo.get(request.tenant) ?? 0;
  if (op <= from) return;
  eventsCheckedTo.set(request.tenant, op);
  const events = kernel.read(request.tenant, 'SELECT data FROM __events WHERE position > $1', [from], position(op));
  if (!events.ok) fail(`${where}: __events unreadable: ${events.error.code}`);
  const foreign = tenants.filter((t) => t !== request.tenant).map(markerOf);
  for (const row of events.rows) {
    const text = rowText(row);
    const seen = foreign.find((marker) => text.includes(marker));
    if (seen !== undefined) fail(`${where}: __events shows ${seen}`);
  }
}

function rowText(row: Row): string {
  return JSON.stringify(row, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
}
