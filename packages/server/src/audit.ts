import { prepareTenantExport, type LogReader, type SigningKey, type TenantExport } from '@veritydb/runtime';
import { position as toPosition, tenantId as toTenantId, type Position } from '@veritydb/types';
import { wireLimits, type VerifyReport, type WireError } from '@veritydb/wire';
import type { EngineOutcome } from './engine.js';
import { refused } from './local-engine.js';
import { truncateUtf8 } from './results.js';

/**
 * Verify and export over the wire (PROTOCOL.md §5): both read the server's own log through a
 * read-only `LogReader` (a single node's log, a replica's ledger) while the server keeps serving.
 * The connection streams what these produce; this module knows nothing of sockets.
 */
export const auditLimits = Object.freeze({
  /** A verify sends a progress report at most this often. */
  verifyProgressIntervalMs: 250,
  /** Bytes of the export file per `exportChunk` frame. */
  exportChunkBytes: wireLimits.exportChunkBytesMax,
});

type VerifyResult = Awaited<ReturnType<LogReader['verify']>>;

/**
 * Checks `log` (every record up to its head, or tenant `tenant`'s chain) and returns the final
 * report; `progress` gets the reports on the way (at most one per `verifyProgressIntervalMs`).
 * A tenant without records is `TenantNotFound`.
 */
export async function verifyLog(log: LogReader, tenant: number | null, progress: (report: VerifyReport) => void): Promise<EngineOutcome<VerifyReport>> {
  if (tenant !== null && log.tenantHead(toTenantId(tenant)) === undefined) return tenantNotFound(tenant);
  const head = log.head().position;
  let lastSentMs = Date.now();
  const result = await log.verify({ to: head, ...(tenant === null ? {} : { tenant: toTenantId(tenant) }) }, (checked, total) => {
    const now = Date.now();
    if (now - lastSentMs < auditLimits.verifyProgressIntervalMs) return;
    lastSentMs = now;
    progress({ checked, total, head, outcome: { kind: 'progress' } });
  });
  return { ok: true, value: finalReport(result, tenant === null ? head : null, head) };
}

/** The final report of a verify; `total` is the range's size for the whole log, the count for a chain. */
export function finalReport(result: VerifyResult, total: number | null, head: Position): VerifyReport {
  const checked = result.checked;
  const reportTotal = total ?? checked;
  if (result.ok) return { checked, total: reportTotal, head, outcome: { kind: 'ok' } };
  return {
    checked, total: reportTotal, head,
    outcome: {
      kind: 'broken', position: toPosition(Math.max(1, result.position)), reason: truncateUtf8(result.reason, wireLimits.verifyReasonBytesMax) || 'unknown',
      detail: truncateUtf8(result.detail, wireLimits.errorMessageBytesMax), file: truncateUtf8(result.file, wireLimits.pathBytesMax),
    },
  };
}

/**
 * Tenant `tenant`'s export file from `log`, signed with `key`, as chunks of at most
 * `exportChunkBytes` in file order (the first holds the signed head). A tenant without records
 * is `TenantNotFound`. The chunks are read from the log as they are taken, so a consumer that
 * waits for its socket keeps the server's memory bounded by about one chunk.
 */
export async function exportFile(log: LogReader, clusterId: bigint, tenant: number, key: SigningKey, now: Date): Promise<EngineOutcome<AsyncGenerator<Uint8Array>>> {
  const prepared = await prepareTenantExport(log, clusterId, tenant, key, now);
  if (prepared === null) return tenantNotFound(tenant);
  return { ok: true, value: chunked(fileParts(prepared), auditLimits.exportChunkBytes) };
}

async function* fileParts(prepared: TenantExport): AsyncGenerator<Uint8Array> {
  yield prepared.head;
  yield* prepared.records();
}

/** Regroups `parts` into chunks of exactly `size` bytes (the last one shorter, never empty unless all are). */
export async function* chunked(parts: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let chunk = new Uint8Array(size);
  let filled = 0;
  for await (const part of parts) {
    let offset = 0;
    while (offset < part.length) {
      const taken = Math.min(size - filled, part.length - offset);
      chunk.set(part.subarray(offset, offset + taken), filled);
      filled += taken;
      offset += taken;
      if (filled === size) {
        yield chunk;
        chunk = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield chunk.subarray(0, filled);
}

function tenantNotFound<T>(tenant: number): EngineOutcome<T> {
  const error: WireError = { code: 'TenantNotFound', message: `tenant ${tenant} has no records in this server's log` };
  return refused(error);
}
