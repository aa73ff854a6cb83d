import { createBlake3Hasher, ed25519KeyId, ed25519Sign } from '@veritydb/crypto';
import { encodeRecord, RECORD_VERSION_BLAKE3, type Log, type LogRecord } from '@veritydb/storage';
import { assert, checksumEqual, checksumHex, position as toPosition, tenantId as toTenantId, VerityError } from '@veritydb/types';
import { encodeExportHead, encodeStatement, signedMessage, type HeadStatement } from './format.js';

/**
 * What verify and export read: a storage log's heads and records, never its write side. A
 * single node's log (`SingleNodeEngine.auditLog`) or a cluster replica's ledger of committed ops
 * (`ledgerReader`); a `Log` opened on a stopped server's data dir is one too.
 */
export type LogReader = Pick<Log, 'head' | 'tenantHead' | 'read' | 'verify'>;

/** The Ed25519 key pair that signs an export's head statement (the cluster admin key). */
export interface SigningKey {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * One tenant's export (docs/EXPORT.md), ready to be written: the signed head is built, the
 * records are read again as they are written, so memory stays bounded by one record (plus one
 * position number per record of the tenant).
 */
export interface TenantExport {
  readonly statement: HeadStatement;
  /** The preamble, the statement and its signature: the file's first bytes. */
  readonly head: Uint8Array;
  /** Size of the whole file. */
  readonly bytes: number;
  /**
   * The record frames in file order. Throws `CorruptLog` (before the last frame) if the bytes
   * read now are not the ones the statement signs, so a complete stream is always a valid file.
   */
  records(): AsyncGenerator<Uint8Array>;
}

/**
 * Prepares tenant `tenant`'s export from `log`: walks its chain back from its current head,
 * digests the record frames and signs the statement (log head and tenant head as of the call,
 * `now` as `exportedAt`). Null when the tenant has no records. Records appended meanwhile are not
 * part of the export: the log is append-only below its head, so a running server may keep
 * writing while the file is produced.
 *
 * @example
 *   const prepared = await prepareTenantExport(log, cluster, 7, adminKey, new Date());
 *   if (prepared !== null) { await out.write(prepared.head); for await (const frame of prepared.records()) await out.write(frame); }
 */
export async function prepareTenantExport(log: LogReader, cluster: bigint, tenant: number, key: SigningKey, now: Date): Promise<TenantExport | null> {
  const head = log.head();
  const tenantHead = log.tenantHead(toTenantId(tenant));
  if (tenantHead === undefined) return null;
  const positions = await chainPositions(log, tenant, tenantHead.position);
  const digest = await createBlake3Hasher();
  let recordBytes = 0;
  for (const p of positions) {
    const frame = frameOf(await readRecord(log, p, tenant));
    digest.update(frame);
    recordBytes += frame.length;
  }
  const recordsHash = checksumHex(digest.digest());
  const statement: HeadStatement = {
    format: 'veritydb-export', version: 1, hash: 'blake3-256', recordVersion: RECORD_VERSION_BLAKE3,
    cluster: `0x${cluster.toString(16)}`, tenant, exportedAt: now.toISOString(),
    logHead: { position: head.position, hash: checksumHex(head.hash) },
    tenantHead: { position: tenantHead.position, hash: checksumHex(tenantHead.hash) },
    records: positions.length, recordsHash,
    publicKey: Buffer.from(key.publicKey).toString('hex'), keyId: ed25519KeyId(key.publicKey),
  };
  const statementBytes = encodeStatement(statement);
  const headBytes = encodeExportHead(statementBytes, ed25519Sign(key.secretKey, signedMessage(statementBytes)));
  return {
    statement, head: headBytes, bytes: headBytes.length + recordBytes,
    records: () => recordFrames(log, tenant, positions, recordsHash),
  };
}

async function* recordFrames(log: LogReader, tenant: number, positions: readonly number[], recordsHash: string): AsyncGenerator<Uint8Array> {
  const digest = await createBlake3Hasher();
  for (let i = 0; i < positions.length; i++) {
    const frame = frameOf(await readRecord(log, positions[i] as number, tenant));
    digest.update(frame);
    if (i === positions.length - 1 && checksumHex(digest.digest()) !== recordsHash) {
      throw new VerityError('CorruptLog', `tenant ${tenant}'s records read differently the second time: the log changed under the export`);
    }
    yield frame;
  }
}

/** The tenant's chain, oldest first, walked back from its head along tenantPrevPosition. */
async function chainPositions(log: LogReader, tenant: number, head: number): Promise<number[]> {
  const positions: number[] = [];
  let next = head;
  // Bounded: every step goes to a strictly smaller position (the record format guarantees it).
  while (next > 0) {
    const record = await readRecord(log, next, tenant);
    positions.push(next);
    assert(record.tenantPrevPosition < next, 'tenant links point backwards');
    next = record.tenantPrevPosition;
  }
  return positions.reverse();
}

async function readRecord(log: LogReader, p: number, tenant: number): Promise<LogRecord> {
  const record = await log.read(toPosition(p));
  if (record === undefined) throw new VerityError('CorruptLog', `tenant ${tenant}'s chain names position ${p}, beyond the log head`);
  if (record.tenant !== tenant) throw new VerityError('CorruptLog', `tenant ${tenant}'s chain names position ${p}, which is another tenant's record`);
  return record;
}

/** The record's frame exactly as on disk: encoding is deterministic, and the hash proves it. */
function frameOf(record: LogRecord): Uint8Array {
  const { bytes, record: encoded } = encodeRecord(record, record);
  assert(checksumEqual(encoded.hash, record.hash), `re-encoded record ${record.position} has the same hash`);
  return bytes;
}
