import { decodeReply, encodeEnvelope, encodeReply, OPERATION, SYSTEM_TENANT, type ApplyResult, type Envelope, type Kernel } from '@veritydb/kernel';
import { SessionTable, type SessionVerdict } from '@veritydb/vsr';
import { assert, limits, position, type Checksum, type Position, type TenantId } from '@veritydb/types';

/**
 * Exactly-once client sessions of the single-node engine (DESIGN §5.3, §5.7): the VSR replica's
 * session table, driven by the log instead of by VSR commits. Every log record carries `client`
 * and `request` header fields; they say what the record is to the session table:
 *
 *   client 0                   a write outside any session (the table is not involved)
 *   client ≠ 0, request 0      a registration of `client` (its body is a no-op); the session is
 *                              identified by the registration's position, as in a cluster
 *   client ≠ 0, request n ≥ 1  request n of `client`'s session
 *
 * Whether request n executes is decided when the record is applied, from the table as the log
 * before it left it (never at submission): a new request is applied and its encoded reply
 * cached; anything else (its session evicted in the meantime, a duplicate, an older request) is
 * applied as a no-op, exactly as a VSR replica skips it. Replaying the same log therefore
 * rebuilds the same table and the same cached reply bytes, and a checkpoint carries the table
 * (`SessionTable.encode`). Eviction is the VSR table's: with `limits.clientSessionsMax` sessions,
 * a new registration evicts the session whose last commit is oldest.
 *
 * @example
 *   const sessions = createSessionTable();
 *   const applied = applyEntry(kernel, sessions, { position: 1, timestampMicros, tenant, hash, client: 7n, request: 0, operation, body });
 *   // applied.verdict === 'registered'; sessions.get(7n)?.session === 1
 */
export function createSessionTable(): SessionTable {
  return new SessionTable(limits.clientSessionsMax);
}

/** What a registration record holds: a no-op of the system tenant (as a cluster's ledger does for one). */
export const REGISTER_ENVELOPE: Envelope = Object.freeze({ tenant: SYSTEM_TENANT, actor: '', command: Object.freeze({ kind: 'noop' as const }) });

/** The body a skipped op is applied as (single node and cluster replica alike): it changes nothing but the kernel's position. */
export const NOOP_BODY = encodeEnvelope(REGISTER_ENVELOPE);

/** One log entry as the apply sees it: position, stamp, header session fields and body. */
export interface SessionEntry {
  readonly position: Position;
  readonly timestampMicros: number;
  readonly tenant: TenantId;
  readonly hash: Checksum;
  readonly client: bigint;
  readonly request: number;
  /** The record header's operation code. */
  readonly operation: number;
  readonly body: Uint8Array;
}

/**
 * What applying an entry did to its session. `plain`: no session. `registered`: a registration.
 * `executed`: a new request, applied and cached. Otherwise the request was applied as a no-op:
 * `evicted` (its session is unknown), `duplicate` (it had committed: `cached` is its result),
 * `stale` (older than the session's last committed request).
 */
export type SessionVerdictApplied = 'plain' | 'registered' | 'executed' | 'evicted' | 'duplicate' | 'stale';

export interface AppliedEntry {
  /** What the kernel did with the entry (for a skipped request: a no-op). */
  readonly result: ApplyResult;
  readonly verdict: SessionVerdictApplied;
}

/**
 * Applies one entry to the kernel and to the session table (null: the log's bodies are applied
 * as they are, for a cluster replica's ledger, whose skipped requests are already no-ops).
 */
export function applyEntry(kernel: Kernel, sessions: SessionTable | null, entry: SessionEntry): AppliedEntry {
  const context = { position: entry.position, timestampMicros: entry.timestampMicros, tenant: entry.tenant, hash: entry.hash };
  if (sessions === null || entry.client === 0n) return { result: kernel.apply(context, entry.body), verdict: 'plain' };
  if (entry.request === 0) {
    assert(entry.operation === OPERATION.noop, `a registration record (position ${entry.position}) is a no-op, got operation ${entry.operation}`);
    const result = kernel.apply(context, entry.body);
    sessions.register(entry.client, entry.position);
    return { result, verdict: 'registered' };
  }
  const verdict = checkRequest(sessions, entry.client, entry.request);
  if (verdict.kind === 'new') {
    const result = kernel.apply(context, entry.body);
    sessions.commit(entry.client, entry.request, encodeReply(result.reply), entry.position);
    return { result, verdict: 'executed' };
  }
  // The table decides, at apply and on every replay alike: no second execution.
  const result = kernel.apply({ position: entry.position, timestampMicros: entry.timestampMicros, hash: entry.hash }, NOOP_BODY);
  return { result, verdict: verdict.kind };
}

/**
 * Request `request` (≥ 1) of `client`'s session against the table as it stands (the session is
 * whichever incarnation the table holds: one log, one writer, nothing re-registers it unseen).
 */
export function checkRequest(sessions: SessionTable, client: bigint, request: number): SessionVerdict {
  assert(request >= 1, 'a session request is numbered from 1');
  return sessions.check(client, sessions.get(client)?.session ?? 0, request);
}

/** The result a duplicate request answers with: its committed reply at its committed position. */
export function cachedResult(reply: Uint8Array, op: number): ApplyResult {
  const decoded = decodeReply(reply);
  assert(decoded.ok, `a cached reply decodes: ${decoded.ok ? '' : decoded.reason}`);
  return { position: position(op), actor: '', reply: decoded.value, events: [] };
}
