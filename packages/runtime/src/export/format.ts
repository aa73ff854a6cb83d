import { createBlake3Hasher, ED25519_SIGNATURE_BYTES, ed25519KeyId as keyId, ed25519Portable } from '@veritydb/crypto';
import { decodeRecordAt, RECORD_HEADER_BYTES, RECORD_PREFIX_BYTES, RECORD_VERSION_BLAKE3, recordFrameBytes, type LogRecord } from '@veritydb/storage';
import { checksumEqual, checksumHex, CHECKSUM_ZERO } from '@veritydb/types';

/**
 * The tenant export file, format version 1 (specified in docs/EXPORT.md):
 *
 *   offset  size  field
 *   0       4     magic "VDBX"
 *   4       2     format version u16 LE (1)
 *   6       2     reserved u16, zero
 *   8       4     statement length S u32 LE (1..exportLimits.statementBytesMax)
 *   12      S     head statement: UTF-8 JSON, exactly the fields of `HeadStatement`
 *   12+S    64    Ed25519 signature over SIGNATURE_DOMAIN || statement, by the cluster admin key
 *   76+S    …     the tenant's records in position order, each exactly its log frame
 *                 (length u32 | crc32 u32 | 224-byte header | body, DESIGN §4); nothing after
 *
 * The statement signs the log head (position + hash), the tenant's chain head, the record count
 * and a BLAKE3-256 digest over the record frames, so the signature covers every byte of the file.
 * Written by `prepareTenantExport` (export/writer.ts: `vdb-admin export` on a data dir and a
 * server's export request alike), read by `verifyExport` (`vdb-admin verify-export`, offline).
 */
export const EXPORT_MAGIC = Buffer.from('VDBX', 'ascii');
export const EXPORT_VERSION = 1;
export const EXPORT_PREAMBLE_BYTES = 12;
/** Prefixed to the statement before signing: a signature made for anything else (a token) never verifies here. */
export const SIGNATURE_DOMAIN = Buffer.from('veritydb-export-v1\n', 'ascii');

export const exportLimits = Object.freeze({
  statementBytesMax: 64 * 1024,
});

export interface ChainHead {
  readonly position: number;
  /** Hex BLAKE3-256 of the record at `position`. */
  readonly hash: string;
}

/** What the cluster admin key signs. Field order here is the order written. */
export interface HeadStatement {
  readonly format: 'veritydb-export';
  readonly version: 1;
  readonly hash: 'blake3-256';
  readonly recordVersion: number;
  /** Hex cluster id ("0x…"). */
  readonly cluster: string;
  readonly tenant: number;
  /** ISO 8601 time of the export. */
  readonly exportedAt: string;
  /** The whole log's last record when the export was taken. */
  readonly logHead: ChainHead;
  /** The tenant's last record (the export's last record). */
  readonly tenantHead: ChainHead;
  readonly records: number;
  /** Hex BLAKE3-256 over the record frames, concatenated in file order. */
  readonly recordsHash: string;
  /** Hex Ed25519 public key that signed, and its key id (as in tokens). */
  readonly publicKey: string;
  readonly keyId: string;
}

const STATEMENT_KEYS: readonly (keyof HeadStatement)[] = [
  'format', 'version', 'hash', 'recordVersion', 'cluster', 'tenant', 'exportedAt', 'logHead', 'tenantHead', 'records',
  'recordsHash', 'publicKey', 'keyId',
];

/** The canonical statement bytes: the fields in `STATEMENT_KEYS` order, no whitespace. */
export function encodeStatement(statement: HeadStatement): Uint8Array {
  const ordered: Record<string, unknown> = {};
  for (const key of STATEMENT_KEYS) ordered[key] = key === 'logHead' || key === 'tenantHead'
    ? { position: statement[key].position, hash: statement[key].hash }
    : statement[key];
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

/** The 12-byte preamble, the statement and its signature: everything before the records. */
export function encodeExportHead(statementBytes: Uint8Array, signature: Uint8Array): Uint8Array {
  if (statementBytes.length < 1 || statementBytes.length > exportLimits.statementBytesMax) throw new Error(`statement of ${statementBytes.length} bytes`);
  if (signature.length !== ED25519_SIGNATURE_BYTES) throw new Error(`signature of ${signature.length} bytes`);
  const head = Buffer.alloc(EXPORT_PREAMBLE_BYTES + statementBytes.length + ED25519_SIGNATURE_BYTES);
  EXPORT_MAGIC.copy(head, 0);
  head.writeUInt16LE(EXPORT_VERSION, 4);
  head.writeUInt16LE(0, 6);
  head.writeUInt32LE(statementBytes.length, 8);
  head.set(statementBytes, EXPORT_PREAMBLE_BYTES);
  head.set(signature, EXPORT_PREAMBLE_BYTES + statementBytes.length);
  return head;
}

/** The message the admin key signs. */
export function signedMessage(statementBytes: Uint8Array): Uint8Array {
  return Buffer.concat([SIGNATURE_DOMAIN, statementBytes]);
}

export type ExportFault =
  | 'format' | 'statement' | 'signature' | 'key' | 'record' | 'cluster' | 'tenant' | 'order' | 'link' | 'missing' | 'digest';

export type ExportCheck =
  | { readonly ok: true; readonly statement: HeadStatement; readonly keyPinned: boolean }
  | { readonly ok: false; readonly fault: ExportFault; readonly message: string; readonly record?: number; readonly position?: number };

function fault(kind: ExportFault, message: string, where: { record?: number; position?: number } = {}): ExportCheck {
  return { ok: false, fault: kind, message, ...where };
}

/**
 * Verifies an export completely offline: the preamble, the statement's form, its signature
 * (against `trustedKey` when given, else the key the statement names), then every record's
 * CRC, body hash and hash, its cluster and tenant, the position order, every per-tenant link
 * from the tenant's first record, the count and chain head the statement signs, and finally the
 * signed digest of all record bytes. The first defect ends the check with a message naming it.
 *
 * @example const check = await verifyExport(await readFile('t7.vdbx')); if (!check.ok) console.log(check.message);
 */
export async function verifyExport(bytes: Uint8Array, trustedKey?: Uint8Array): Promise<ExportCheck> {
  const head = parseHead(bytes);
  if ('fault' in head) return head.fault;
  const { statement, statementBytes, signature, recordsOffset } = head;
  const signer = new Uint8Array(Buffer.from(statement.publicKey, 'hex'));
  if (trustedKey !== undefined && !checksumEqual(signer, trustedKey)) {
    return fault('key', `the head statement names key ${statement.keyId}, not the trusted key ${keyId(trustedKey)}: it was not signed by your cluster`);
  }
  if (!ed25519Portable.verify(signer, signedMessage(statementBytes), signature)) {
    return fault('signature', `the head statement's signature does not verify with key ${statement.keyId}: the statement or the signature was altered`);
  }
  const records = await checkRecords(bytes, recordsOffset, statement);
  if (records !== null) return records;
  return { ok: true, statement, keyPinned: trustedKey !== undefined };
}

type ParsedHead = { statement: HeadStatement; statementBytes: Uint8Array; signature: Uint8Array; recordsOffset: number } | { fault: ExportCheck };

function parseHead(bytes: Uint8Array): ParsedHead {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < EXPORT_PREAMBLE_BYTES || !data.subarray(0, 4).equals(EXPORT_MAGIC)) {
    return { fault: fault('format', 'not a VerityDB export (the file does not start with "VDBX")') };
  }
  const version = data.readUInt16LE(4);
  if (version !== EXPORT_VERSION) return { fault: fault('format', `unknown export format version ${version} (this vdb-admin reads version ${EXPORT_VERSION})`) };
  if (data.readUInt16LE(6) !== 0) return { fault: fault('format', 'reserved preamble bytes 6..7 are not zero') };
  const statementLength = data.readUInt32LE(8);
  const recordsOffset = EXPORT_PREAMBLE_BYTES + statementLength + ED25519_SIGNATURE_BYTES;
  if (statementLength < 1 || statementLength > exportLimits.statementBytesMax) {
    return { fault: fault('format', `statement length ${statementLength} is outside 1..${exportLimits.statementBytesMax}`) };
  }
  if (data.length < recordsOffset) return { fault: fault('format', `the file ends inside the head statement or its signature (${data.length} of ${recordsOffset} bytes)`) };
  const statementBytes = data.subarray(EXPORT_PREAMBLE_BYTES, EXPORT_PREAMBLE_BYTES + statementLength);
  const statement = parseStatement(statementBytes);
  if (typeof statement === 'string') return { fault: fault('statement', `the head statement is malformed: ${statement}`) };
  return { statement, statementBytes, signature: data.subarray(EXPORT_PREAMBLE_BYTES + statementLength, recordsOffset), recordsOffset };
}

const HEX32 = /^[0-9a-f]{64}$/;
/** Where a record header holds its position (DESIGN §4; packages/storage/src/record.ts). */
const HEADER_POSITION_OFFSET = 28;

/** The statement, or why it is not one: every field present, typed and nothing else. */
export function parseStatement(bytes: Uint8Array): HeadStatement | string {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return 'not UTF-8 JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const s = value as Record<string, unknown>;
  const keys = Object.keys(s);
  if (keys.length !== STATEMENT_KEYS.length || keys.some((k, i) => k !== STATEMENT_KEYS[i])) return `fields must be exactly ${STATEMENT_KEYS.join(', ')} in that order`;
  if (s['format'] !== 'veritydb-export' || s['version'] !== EXPORT_VERSION) return 'format must be "veritydb-export", version 1';
  if (s['hash'] !== 'blake3-256' || s['recordVersion'] !== RECORD_VERSION_BLAKE3) return `hash must be "blake3-256" and recordVersion ${RECORD_VERSION_BLAKE3}`;
  if (typeof s['cluster'] !== 'string' || !/^0x[0-9a-f]{1,32}$/.test(s['cluster'])) return 'cluster must be a 0x-hex id';
  if (!isCount(s['tenant']) || s['tenant'] < 1) return 'tenant must be a positive integer';
  if (typeof s['exportedAt'] !== 'string' || Number.isNaN(Date.parse(s['exportedAt']))) return 'exportedAt must be an ISO time';
  const logHead = chainHead(s['logHead']);
  const tenantHead = chainHead(s['tenantHead']);
  if (logHead === null || tenantHead === null) return 'logHead and tenantHead must be {position, hash} with a 64-digit hex hash';
  if (tenantHead.position < 1 || tenantHead.position > logHead.position) return 'tenantHead must be a position from 1 to logHead.position';
  if (!isCount(s['records']) || s['records'] < 1 || s['records'] > tenantHead.position) return 'records must be from 1 to tenantHead.position';
  if (typeof s['recordsHash'] !== 'string' || !HEX32.test(s['recordsHash'])) return 'recordsHash must be 64 hex digits';
  if (typeof s['publicKey'] !== 'string' || !HEX32.test(s['publicKey'])) return 'publicKey must be 64 hex digits';
  if (s['keyId'] !== keyId(Buffer.from(s['publicKey'], 'hex'))) return 'keyId is not the id of publicKey';
  return value as HeadStatement;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function chainHead(value: unknown): ChainHead | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const head = value as Record<string, unknown>;
  const keys = Object.keys(head);
  if (keys.length !== 2 || keys[0] !== 'position' || keys[1] !== 'hash') return null;
  if (!isCount(head['position']) || typeof head['hash'] !== 'string' || !HEX32.test(head['hash'])) return null;
  return { position: head['position'], hash: head['hash'] };
}

/**
 * Null when every record checks out; else the first defect. Three passes, so that each defect
 * gets its own name: each record on its own (bytes, cluster, tenant), then the order of all
 * positions (a swap reads "out of order", not "missing"), then the chain links.
 */
async function checkRecords(bytes: Uint8Array, from: number, statement: HeadStatement): Promise<ExportCheck | null> {
  const cluster = BigInt(statement.cluster);
  const digest = await createBlake3Hasher();
  const records: LogRecord[] = [];
  for (let offset = from; offset < bytes.length;) {
    const index = records.length + 1;
    const decoded = decodeRecordAt(bytes, offset);
    if (!decoded.ok) {
      const claimed = claimedPosition(bytes, offset);
      return fault('record', `record ${index} (file offset ${offset}${claimed === null ? '' : `, claims position ${claimed}`}) is damaged: ${decoded.reason}`,
        { record: index, ...(claimed === null ? {} : { position: claimed }) });
    }
    const record = decoded.value;
    const where = { record: index, position: record.position };
    if (record.cluster !== cluster) return fault('cluster', `record ${index} (position ${record.position}) belongs to cluster 0x${record.cluster.toString(16)}, the statement says ${statement.cluster}`, where);
    if (record.tenant !== statement.tenant) return fault('tenant', `record ${index} (position ${record.position}) is not a record of tenant ${statement.tenant}`, where);
    const frameBytes = recordFrameBytes(record.bodyBytes);
    digest.update(bytes.subarray(offset, offset + frameBytes));
    offset += frameBytes;
    records.push(record);
  }
  for (let i = 1; i < records.length; i++) {
    const record = records[i] as LogRecord;
    const previous = records[i - 1] as LogRecord;
    if (record.position <= previous.position) {
      return fault('order', `record ${i + 1} (position ${record.position}) follows position ${previous.position}: records are out of order`, { record: i + 1, position: record.position });
    }
  }
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as LogRecord;
    const link = linkProblem(record, i === 0 ? null : records[i - 1] as LogRecord, `record ${i + 1} (position ${record.position})`, statement.tenant);
    if (link !== null) return fault(link.kind, link.message, { record: i + 1, position: record.position });
  }
  return tailProblem(statement, records[records.length - 1] ?? null, records.length, checksumHex(digest.digest()));
}

function linkProblem(record: LogRecord, previous: LogRecord | null, named: string, tenant: number): { kind: ExportFault; message: string } | null {
  if (previous === null) {
    if (record.tenantPrevPosition !== 0 || !checksumEqual(record.tenantPrevHash, CHECKSUM_ZERO)) {
      return { kind: 'missing', message: `the chain does not start at tenant ${tenant}'s first record: ${named} links to position ${record.tenantPrevPosition}, which is not in the export` };
    }
    return null;
  }
  if (record.tenantPrevPosition !== previous.position) {
    return record.tenantPrevPosition > previous.position
      ? { kind: 'missing', message: `${named} links to position ${record.tenantPrevPosition}, but the previous record in the export is position ${previous.position}: a record is missing` }
      : { kind: 'link', message: `${named} links to position ${record.tenantPrevPosition}, not to the previous record in the export (position ${previous.position})` };
  }
  if (!checksumEqual(record.tenantPrevHash, previous.hash)) {
    return { kind: 'link', message: `${named} does not link to the hash of position ${previous.position}: the chain is broken` };
  }
  return null;
}

function tailProblem(statement: HeadStatement, last: LogRecord | null, count: number, recordsHash: string): ExportCheck | null {
  if (last === null) return fault('missing', `the export holds no records, the signed statement says ${statement.records}`);
  if (last.position !== statement.tenantHead.position) {
    return last.position < statement.tenantHead.position
      ? fault('missing', `the export ends at position ${last.position}, but the signed tenant head is position ${statement.tenantHead.position}: records are missing at the end`)
      : fault('order', `the export ends at position ${last.position}, beyond the signed tenant head ${statement.tenantHead.position}`);
  }
  if (checksumHex(last.hash) !== statement.tenantHead.hash) return fault('link', `the last record's hash is not the signed tenant head's hash (position ${last.position})`);
  if (last.position === statement.logHead.position && statement.logHead.hash !== statement.tenantHead.hash) {
    return fault('link', `the tenant head is the log head (position ${last.position}) but the signed hashes differ`);
  }
  if (count !== statement.records) return fault('missing', `the export holds ${count} records, the signed statement says ${statement.records}`);
  if (recordsHash !== statement.recordsHash) return fault('digest', 'the record bytes do not match the signed digest');
  return null;
}

/** The position a damaged frame's header claims (unverified), for messages. */
function claimedPosition(bytes: Uint8Array, offset: number): number | null {
  const at = offset + RECORD_PREFIX_BYTES + HEADER_POSITION_OFFSET;
  if (bytes.length < offset + RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES) return null;
  const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64LE(at);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
}
