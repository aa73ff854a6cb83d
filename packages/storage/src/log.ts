import { mkdir, open, readdir, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import {
  CHECKSUM_ZERO, VerityError, assert, checksumEqual, limits, type Checksum, type ClusterId, type Position,
  type TenantId,
} from '@veritydb/types';
import { ByteBuilder, dataView } from './bytes.js';
import { processAlive, readAt, syncDirectory, writeFully } from './files.js';
import {
  RECORD_HEADER_BYTES, RECORD_PREFIX_BYTES, decodeRecord, decodeRecordAt, encodeRecordInto, recordFieldsProblem,
  recordFrameBytes, type LogRecord, type RecordFault, type RecordFields,
} from './record.js';
import { auditSegment, peekHeader, type FaultMode, type FaultyRecord, type HeaderSummary } from './recovery.js';
import {
  INDEX_HEADER_BYTES, INDEX_SLOT_BYTES, decodeIndexHeader, decodeIndexSlot, encodeIndexHeader, encodeIndexSlotInto,
  indexFileName, segmentFileName, slotFileOffset, type IndexSlot,
} from './segment-index.js';

export interface LogOptions {
  readonly cluster: ClusterId;
  /** Size at which a segment rolls; default `limits.segmentBytesDefault`. */
  readonly segmentBytes?: number;
  /**
   * What open does with a corrupt record that is not the torn tail (or damaged index): `'fail'`
   * (default) throws a `VerityError` naming the file and position; `'report'` opens anyway and
   * lists it in `recovery.faulty` for the consensus layer to repair from a peer.
   */
  readonly faults?: FaultMode;
}

export interface RecoveryReport {
  /** The torn tail cut at open, if there was one. */
  readonly truncated: { readonly file: string; readonly position: Position; readonly bytes: number } | undefined;
  /** Index slots rewritten from verified records (a torn index tail, or repairs below). */
  readonly indexSlotsRebuilt: number;
  /** Positions whose index slot was damaged or disagreed with its record (`'report'` mode). */
  readonly indexRepairs: readonly Position[];
  /** Index files whose damaged file header was rewritten (`'report'` mode). */
  readonly indexHeadersRebuilt: readonly string[];
  /** Damaged records awaiting `repair` (`'report'` mode). */
  readonly faulty: readonly FaultyRecord[];
}

/** Counters since open. */
export interface LogStats {
  /** Group commits completed (each ends with an fdatasync of the segment and its index). */
  readonly groupCommits: number;
  /** Records made durable by those group commits. */
  readonly recordsCommitted: number;
}

export interface LogHead {
  readonly position: Position;
  readonly hash: Checksum;
}

export type VerifyReason = RecordFault | 'position' | 'cluster' | 'chain' | 'tenant-chain' | 'index' | 'faulty' | 'missing';

export type VerifyResult =
  | { readonly ok: true; readonly checked: number }
  | { readonly ok: false; readonly checked: number; readonly position: Position; readonly reason: VerifyReason; readonly detail: string; readonly file: string };

export interface VerifyOptions {
  readonly from?: number;
  readonly to?: number;
  /** Verify only this tenant's chain (following tenantPrevPosition links). */
  readonly tenant?: TenantId;
}

export type VerifyProgress = (checked: number, total: number) => void;

/** A file of the log and how many of its leading bytes a prefix of the log occupies (`prefixFiles`). */
export interface LogPrefixFile {
  /** Absolute path. */
  readonly path: string;
  readonly bytes: number;
}

interface Segment {
  readonly number: number;
  readonly firstPosition: number;
  count: number;
  bytes: number;
}

/** Open handles of one segment; closed only once no read is using them. */
interface SegmentFiles {
  readonly number: number;
  readonly data: FileHandle;
  readonly index: FileHandle;
  users: number;
  retired: boolean;
}

/** Records encoded but not yet written: one contiguous run in one segment. */
interface PendingWrite {
  readonly segment: Segment;
  readonly dataOffset: number;
  readonly firstSlot: number;
  readonly data: ByteBuilder;
  readonly slots: ByteBuilder;
  records: number;
  lastPosition: number;
}

interface Waiter {
  readonly position: number;
  readonly resolve: (position: Position) => void;
  readonly reject: (error: unknown) => void;
}

const READ_HANDLES_MAX = limits.segmentReadHandlesMax;
/** Records appended but not yet durable; beyond this `append` refuses (backpressure). */
export const APPEND_PENDING_RECORDS_MAX = limits.logPendingRecordsMax;
const BUILDER_BYTES_INITIAL = 256 * 1024;
const SCAN_CHUNK_BYTES = 1024 * 1024;
const VERIFY_PROGRESS_EVERY = 4096;
const SEGMENT_NAME = /^(\d{8})\.(segment|index)$/;

function logError(code: string, message: string, details: Record<string, unknown> = {}): VerityError {
  return new VerityError(code, message, details);
}

/**
 * The durable, hash-chained, segmented log (DESIGN §4).
 *
 * @example
 *   const log = await Log.open(dir, { cluster });
 *   await log.append([{ view, position: 1, commit: 0, timestamp, client, request, tenant, operation, body }]);
 *   const record = await log.read(position(1));
 *   await log.close();
 */
export class Log {
  readonly recovery: RecoveryReport;
  readonly #dir: string;
  readonly #cluster: ClusterId;
  readonly #segmentBytes: number;
  readonly #segments: Segment[];
  readonly #tenantHeads: Map<number, LogHead>;
  readonly #faulty: Map<number, FaultyRecord>;
  readonly #readers = new Map<number, SegmentFiles>();
  #writer: SegmentFiles;
  readonly #closing = new Set<Promise<void>>();
  #head: Position;
  #headHash: Checksum;
  #durable: Position;
  #committed = 0 as Position;
  #queue: PendingWrite[] = [];
  #pendingRecords = 0;
  #flushScheduled = false;
  /** A write (with a segment roll, when due) is in progress. */
  #writing = false;
  /** Runs on disk (written, in the writer's segment) that no fdatasync started so far covers. */
  #written: PendingWrite[] = [];
  /** Runs covered by the fdatasync in flight; undefined when none is. */
  #syncing: readonly PendingWrite[] | undefined;
  #waiters: Waiter[] = [];
  #waitersHead = 0;
  #builders: ByteBuilder[] = [];
  #failure: VerityError | undefined;
  #exclusive = false;
  #closed = false;
  #groupCommits = 0;
  #recordsCommitted = 0;

  private constructor(state: {
    dir: string; cluster: ClusterId; segmentBytes: number; segments: Segment[]; tenantHeads: Map<number, LogHead>;
    faulty: Map<number, FaultyRecord>; writer: SegmentFiles; head: LogHead; recovery: RecoveryReport;
  }) {
    this.#dir = state.dir;
    this.#cluster = state.cluster;
    this.#segmentBytes = state.segmentBytes;
    this.#segments = state.segments;
    this.#tenantHeads = state.tenantHeads;
    this.#faulty = state.faulty;
    this.#writer = state.writer;
    this.#head = state.head.position;
    this.#headHash = state.head.hash;
    this.#durable = state.head.position;
    this.recovery = state.recovery;
  }

  /**
   * Opens (creating if needed) the log under `<dir>/log/`, recovering it: a torn tail is cut and
   * reported in `recovery`; any other damage throws a `VerityError` naming the file and position
   * (or is reported, with `faults: 'report'`).
   */
  static async open(dir: string, options: LogOptions): Promise<Log> {
    const segmentBytes = options.segmentBytes ?? limits.segmentBytesDefault;
    assert(Number.isInteger(segmentBytes) && segmentBytes >= limits.segmentBytesMin && segmentBytes <= limits.segmentBytesMax,
      `segmentBytes must be in [${limits.segmentBytesMin}, ${limits.segmentBytesMax}], got ${segmentBytes}`);
    await initCrypto();
    const logDir = join(resolve(dir), 'log');
    await mkdir(logDir, { recursive: true });
    await lockLog(logDir);
    try {
      return await Log.#recover(logDir, options, segmentBytes);
    } catch (error) {
      await unlockLog(logDir);
      throw error;
    }
  }

  static async #recover(logDir: string, options: LogOptions, segmentBytes: number): Promise<Log> {
    const numbers = await listSegments(logDir);
    const mode = options.faults ?? 'fail';
    const segments: Segment[] = [];
    const tenantHeads = new Map<number, LogHead>();
    const faulty = new Map<number, FaultyRecord>();
    const indexRepairs: Position[] = [];
    const indexHeadersRebuilt: string[] = [];
    let truncated: RecoveryReport['truncated'];
    let indexSlotsRebuilt = 0;
    let prevHash: Uint8Array | undefined = CHECKSUM_ZERO;
    let nextPosition = 1;

    for (let k = 0; k < numbers.length; k++) {
      const number = numbers[k] as number;
      const isLast = k === numbers.length - 1;
      const segmentPath = join(logDir, segmentFileName(number));
      const indexPath = join(logDir, indexFileName(number));
      const indexBytes = new Uint8Array(await readFile(indexPath));
      let header = decodeIndexHeader(indexBytes);
      if (typeof header === 'string') {
        if (mode === 'fail' || indexBytes.length < INDEX_HEADER_BYTES) throw logError('CorruptIndex', `${indexPath}: ${header}`, { file: indexPath });
        // Everything in the header is known from the file name and the segments before it.
        const rebuilt = { segment: number, firstPosition: nextPosition as Position, cluster: options.cluster };
        const bytes = encodeIndexHeader(rebuilt);
        indexBytes.set(bytes, 0);
        await rewriteIndexHeader(indexPath, bytes);
        indexHeadersRebuilt.push(indexPath);
        header = rebuilt;
      }
      if (header.segment !== number || header.firstPosition !== nextPosition) {
        throw logError('IndexMismatch', `${indexPath}: index header says segment ${header.segment} from position ${header.firstPosition}, expected segment ${number} from ${nextPosition}`,
          { file: indexPath, position: nextPosition });
      }
      if (header.cluster !== options.cluster) {
        throw logError('ClusterMismatch', `${indexPath}: log belongs to cluster ${header.cluster}, not ${options.cluster}`, { file: indexPath });
      }
      const segmentSize = (await stat(segmentPath)).size;
      const quick: QuickCheck | undefined = isLast ? undefined : quickSealedCheck(indexBytes, segmentSize, nextPosition, prevHash);
      let headers: HeaderSummary[];
      let count: number;
      let bytes: number;
      if (quick !== undefined) {
        ({ headers, count, bytes } = quick);
        prevHash = quick.lastHash;
      } else {
        const audit = auditSegment({
          segmentBytes: new Uint8Array(await readFile(segmentPath)), indexBytes, firstPosition: nextPosition, prevHash,
          cluster: options.cluster, isLast, segmentFile: segmentPath, indexFile: indexPath, mode,
        });
        await applyAudit(segmentPath, indexPath, audit.count, audit.bytes, audit.slotWrites, segmentSize, indexBytes.length);
        ({ headers, count, bytes } = audit);
        prevHash = audit.lastHash;
        indexSlotsRebuilt += audit.slotWrites.length;
        indexRepairs.push(...audit.indexRepairs);
        for (const fault of audit.faulty) faulty.set(fault.position, fault);
        if (audit.truncated !== undefined) truncated = { file: segmentPath, ...audit.truncated };
      }
      for (const summary of headers) tenantHeads.set(summary.tenant, { position: summary.position, hash: summary.hash });
      segments.push({ number, firstPosition: nextPosition, count, bytes });
      nextPosition += count;
    }

    if (segments.length === 0) {
      await createSegmentFiles(logDir, 0, 1, options.cluster);
      await syncDirectory(logDir);
      segments.push({ number: 0, firstPosition: 1, count: 0, bytes: 0 });
    }
    const last = segments[segments.length - 1] as Segment;
    const writer = await openSegmentFiles(logDir, last.number, 'r+');
    const headPosition = (nextPosition - 1) as Position;
    const headHash = headPosition === 0 ? CHECKSUM_ZERO : (prevHash as Checksum | undefined);
    if (headHash === undefined) {
      await closeFiles(writer);
      throw logError('CorruptRecord', `the head record ${headPosition} is faulty and has no known hash`, { position: headPosition });
    }
    return new Log({
      dir: logDir, cluster: options.cluster, segmentBytes, segments, tenantHeads, faulty,
      writer, head: { position: headPosition, hash: headHash },
      recovery: { truncated, indexSlotsRebuilt, indexRepairs, indexHeadersRebuilt, faulty: [...faulty.values()] },
    });
  }

  /** The last appended record (durable or not): position 0 and the zero hash when empty. */
  head(): LogHead {
    return { position: this.#head, hash: this.#headHash };
  }

  stats(): LogStats {
    return { groupCommits: this.#groupCommits, recordsCommitted: this.#recordsCommitted };
  }

  /** The highest position covered by a completed fdatasync. */
  durablePosition(): Position {
    return this.#durable;
  }

  /** The chain head of one tenant (undefined when it has no records). */
  tenantHead(tenant: TenantId): LogHead | undefined {
    return this.#tenantHeads.get(tenant);
  }

  /** Faulty records still awaiting `repair`. */
  faulty(): FaultyRecord[] {
    return [...this.#faulty.values()];
  }

  /** Tells the log how far the cluster has committed; `truncateAfter` below it is refused. */
  setCommitted(position: Position): void {
    assert(position >= this.#committed, `committed position regressed from ${this.#committed} to ${position}`);
    assert(position <= this.#head, `committed position ${position} is beyond the head ${this.#head}`);
    this.#committed = position;
  }

  committedPosition(): Position {
    return this.#committed;
  }

  /**
   * Appends records (positions dense after the head) and resolves with the last position once
   * an fdatasync covers them. Concurrent appends share one fdatasync (group commit). Chain
   * fields are computed here. The records are readable once the promise resolves.
   */
  append(records: readonly RecordFields[]): Promise<Position> {
    this.#checkUsable();
    assert(!this.#exclusive, 'append while a truncate or repair is running');
    assert(records.length >= 1 && records.length <= limits.appendBatchRecordsMax,
      `append takes 1..${limits.appendBatchRecordsMax} records, got ${records.length}`);
    let expected = this.#head + 1;
    for (const record of records) {
      if (record.position !== expected) {
        throw logError('NotDense', `append of position ${record.position} where ${expected} is next`, { position: record.position, expected });
      }
      const problem = recordFieldsProblem(record);
      if (problem !== undefined) assert(false, `invalid record ${record.position}: ${problem}`);
      if (recordFrameBytes(record.body.length) > this.#segmentBytes) {
        throw logError('RecordTooLarge', `record ${record.position} of ${record.body.length} bytes does not fit in a ${this.#segmentBytes}-byte segment`, { position: record.position });
      }
      expected++;
    }
    if (this.#pendingRecords + records.length > APPEND_PENDING_RECORDS_MAX) {
      throw logError('LogOverloaded', `${this.#pendingRecords} records already await fdatasync (max ${APPEND_PENDING_RECORDS_MAX})`);
    }
    for (const record of records) this.#encode(record);
    this.#pendingRecords += records.length;
    const last = records[records.length - 1] as RecordFields;
    const promise = new Promise<Position>((resolve, reject) => this.#waiters.push({ position: last.position, resolve, reject }));
    this.#scheduleFlush();
    return promise;
  }

  /** Resolves once everything appended so far is durable. */
  sync(): Promise<Position> {
    this.#checkUsable();
    if (this.#durable >= this.#head) return Promise.resolve(this.#durable);
    const head = this.#head;
    return new Promise<Position>((resolve, reject) => this.#waiters.push({ position: head, resolve, reject }));
  }

  /**
   * The record at `position`, checked (CRC, hashes, index copy); undefined beyond the head.
   * Throws `VerityError` (`CorruptRecord`, `CorruptIndex`, `FaultyRecord`) on damage.
   */
  async read(position: Position): Promise<LogRecord | undefined> {
    if (!(Number.isSafeInteger(position) && position >= 1)) assert(false, `read of position ${position}`);
    if (position > this.#head) return undefined;
    if (position > this.#durable) await this.sync();
    const fault = this.#faulty.get(position);
    if (fault !== undefined) throw logError('FaultyRecord', `${fault.file}: record ${position} is faulty (${fault.reason}) and awaits repair`, { file: fault.file, position });
    const segment = this.#segmentOf(position);
    const indexPath = join(this.#dir, indexFileName(segment.number));
    const segmentPath = join(this.#dir, segmentFileName(segment.number));
    const { slot, bytes } = await this.#withFiles(segment.number, async (files) => {
      const found = decodeIndexSlot(await readAt(files.index, slotFileOffset(position - segment.firstPosition), INDEX_SLOT_BYTES), 0);
      if (found === undefined) throw logError('CorruptIndex', `${indexPath}: index slot for position ${position} fails its CRC`, { file: indexPath, position });
      return { slot: found, bytes: await readAt(files.data, found.offset, found.frameBytes) };
    });
    const decoded = decodeRecord(bytes);
    if (!decoded.ok) throw logError('CorruptRecord', `${segmentPath}: record ${position} is corrupt (${decoded.reason})`, { file: segmentPath, position, fault: decoded.fault });
    if (decoded.value.position !== position || decoded.value.cluster !== this.#cluster) {
      throw logError('CorruptRecord', `${segmentPath}: offset ${slot.offset} holds position ${decoded.value.position}, not ${position}`, { file: segmentPath, position, fault: 'position' });
    }
    if (!checksumEqual(slot.header, bytes.subarray(RECORD_PREFIX_BYTES, RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES))) {
      throw logError('IndexMismatch', `${indexPath}: index copy of position ${position} differs from the record`, { file: indexPath, position });
    }
    return decoded.value;
  }

  /**
   * Records `from..to` (default: the head when called) in order, each checked like `read` plus
   * the chain link to its predecessor. Stops with a `VerityError` at the first damaged record.
   */
  async *scan(from: Position, to?: Position): AsyncGenerator<LogRecord> {
    assert(from >= 1, `scan from ${from}`);
    const last = Math.min(to ?? this.#head, this.#head);
    if (last > this.#durable) await this.sync();
    let prevHash: Uint8Array | undefined = from === 1 ? CHECKSUM_ZERO : (await this.read((from - 1) as Position))?.hash;
    let position = from as number;
    while (position <= last) {
      const segment = this.#segmentOf(position as Position);
      const segmentPath = join(this.#dir, segmentFileName(segment.number));
      const files = await this.#acquire(segment.number);
      try {
      const slot = decodeIndexSlot(await readAt(files.index, slotFileOffset(position - segment.firstPosition), INDEX_SLOT_BYTES), 0);
      if (slot === undefined) throw logError('CorruptIndex', `index slot for position ${position} fails its CRC`, { position });
      const segmentLast = Math.min(last, segment.firstPosition + segment.count - 1);
      for await (const { bytes, at } of frames(files.data, slot.offset, segment.bytes)) {
        const fault = this.#faulty.get(position);
        if (fault !== undefined) throw logError('FaultyRecord', `${fault.file}: record ${position} is faulty (${fault.reason}) and awaits repair`, { file: fault.file, position });
        const decoded = decodeRecordAt(bytes, at);
        if (!decoded.ok) throw logError('CorruptRecord', `${segmentPath}: record ${position} is corrupt (${decoded.reason})`, { file: segmentPath, position, fault: decoded.fault });
        const record = decoded.value;
        if (record.position !== position || (prevHash !== undefined && !checksumEqual(record.prevHash, prevHash))) {
          throw logError('CorruptRecord', `${segmentPath}: record ${position} does not link to its predecessor`, { file: segmentPath, position, fault: 'chain' });
        }
        yield record;
        prevHash = record.hash;
        position++;
        if (position > segmentLast) break;
      }
      if (position <= segmentLast) throw logError('CorruptRecord', `${segmentPath}: segment ends before record ${position}`, { file: segmentPath, position, fault: 'short' });
      } finally {
        this.#release(files);
      }
    }
  }

  /**
   * Checks the records `from..to` (default all): CRC, body hash, hash, position, global chain
   * links, tenant chain links and the index copies. With `tenant`, checks only that tenant's chain,
   * following its links. Returns the first broken position and why.
   */
  async verify(options: VerifyOptions = {}, onProgress?: VerifyProgress): Promise<VerifyResult> {
    const from = Math.max(1, options.from ?? 1);
    const to = Math.min(options.to ?? this.#head, this.#head);
    if (to > this.#durable) await this.sync();
    if (options.tenant !== undefined) return this.#verifyTenant(options.tenant, from, to, onProgress);
    return this.#verifyRange(from, to, onProgress);
  }

  /**
   * The files that hold the log up to `position` (durable, ≤ the head) and how many leading bytes
   * of each: every segment and index up to the one holding `position`, that one cut right after
   * the record and its slot. Those bytes never change (records below the committed position are
   * never truncated, and a record's bytes are final once durable), so a backup may copy them
   * while the log keeps growing; a log opened on exactly these bytes reaches `position` with no
   * torn tail. Position 0: the first segment's empty data file and bare index header.
   *
   * @example
   *   for (const file of await log.prefixFiles(log.durablePosition())) copy(file.path, 0, file.bytes);
   */
  async prefixFiles(position: Position): Promise<LogPrefixFile[]> {
    this.#checkUsable();
    assert(Number.isSafeInteger(position) && position >= 0 && position <= this.#durable,
      `prefixFiles(${position}) beyond the durable position ${this.#durable}`);
    const files: LogPrefixFile[] = [];
    for (const segment of this.#segments) {
      if (segment.firstPosition > Math.max(1, position)) break;
      const last = Math.min(position, segment.firstPosition + segment.count - 1);
      const records = Math.max(0, last - segment.firstPosition + 1);
      const dataBytes = records === segment.count ? segment.bytes : records === 0 ? 0 : await this.#recordEnd(segment, last as Position);
      files.push(
        { path: join(this.#dir, segmentFileName(segment.number)), bytes: dataBytes },
        { path: join(this.#dir, indexFileName(segment.number)), bytes: slotFileOffset(records) },
      );
    }
    return files;
  }

  /** The byte just after record `position` in its segment (from its index slot). */
  async #recordEnd(segment: Segment, position: Position): Promise<number> {
    const slot = await this.#withFiles(segment.number, async (files) =>
      decodeIndexSlot(await readAt(files.index, slotFileOffset(position - segment.firstPosition), INDEX_SLOT_BYTES), 0));
    if (slot === undefined) throw logError('CorruptIndex', `index slot for position ${position} fails its CRC`, { position });
    return slot.offset + slot.frameBytes;
  }

  /**
   * Discards the records after `position` (uncommitted ones only: refused below the committed
   * position with `VerityError` `TruncateCommitted`). Waits for in-flight appends first.
   */
  async truncateAfter(position: Position): Promise<void> {
    this.#checkUsable();
    assert(Number.isSafeInteger(position) && position >= 0, `truncateAfter ${position}`);
    if (position < this.#committed) {
      throw logError('TruncateCommitted', `cannot truncate after ${position}: positions up to ${this.#committed} are committed`, { position, committed: this.#committed });
    }
    if (position >= this.#head) return;
    await this.sync();
    assert(!this.#exclusive, 'concurrent truncate or repair');
    this.#exclusive = true;
    try {
      await this.#truncate(position);
    } finally {
      this.#exclusive = false;
    }
  }

  /**
   * Rewrites the record at `position` in place with `frame` (its full on-disk bytes, from a
   * peer), after checking it decodes, is the expected record (hash from the index copy, the
   * successor's prevHash) and links to its predecessor. Rewrites its index slot too.
   */
  async repair(position: Position, frame: Uint8Array): Promise<void> {
    this.#checkUsable();
    if (position > this.#head || position < 1) throw logError('RepairRejected', `position ${position} is not in the log`, { position });
    const decoded = decodeRecord(frame);
    if (!decoded.ok) throw logError('RepairRejected', `repair record for ${position} is invalid: ${decoded.reason}`, { position });
    const record = decoded.value;
    if (record.position !== position || record.cluster !== this.#cluster) {
      throw logError('RepairRejected', `repair record is position ${record.position} of cluster ${record.cluster}`, { position });
    }
    await this.sync();
    const expected = await this.#expectedHash(position);
    if (expected === undefined || !checksumEqual(expected, record.hash)) {
      throw logError('RepairRejected', `repair record for ${position} does not have the hash the chain expects`, { position });
    }
    const predecessor = position === 1 ? CHECKSUM_ZERO : await this.#expectedHash((position - 1) as Position);
    if (predecessor === undefined || !checksumEqual(predecessor, record.prevHash)) {
      throw logError('RepairRejected', `repair record for ${position} does not link to its predecessor`, { position });
    }
    const segment = this.#segmentOf(position);
    const files = await this.#acquire(segment.number);
    try {
    const slotNumber = position - segment.firstPosition;
    const fault = this.#faulty.get(position);
    const slot = decodeIndexSlot(await readAt(files.index, slotFileOffset(slotNumber), INDEX_SLOT_BYTES), 0);
    const offset = fault?.offset ?? slot?.offset;
    const frameBytes = fault?.frameBytes ?? slot?.frameBytes;
    if (offset === undefined || frameBytes !== frame.length) {
      throw logError('RepairRejected', `repair record for ${position} does not fit its place in the segment`, { position });
    }
    const slotBytes = new Uint8Array(INDEX_SLOT_BYTES);
    encodeIndexSlotInto(slotBytes, 0, offset, frame, 0, frame.length);
    // Reads use 'r' handles: write through handles opened for writing.
    const writable = files.number === this.#writer.number ? files : await openSegmentFiles(this.#dir, files.number, 'r+');
    try {
      await writeFully(writable.data, frame, offset);
      await writeFully(writable.index, slotBytes, slotFileOffset(slotNumber));
      await Promise.all([writable.data.datasync(), writable.index.datasync()]);
    } finally {
      if (writable !== files) await closeFiles(writable);
    }
    } finally {
      this.#release(files);
    }
    this.#faulty.delete(position);
    const tenantHead = this.#tenantHeads.get(record.tenant);
    if (tenantHead === undefined || tenantHead.position < position) this.#tenantHeads.set(record.tenant, { position, hash: record.hash });
  }

  /** Waits for pending appends and closes every file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#failure === undefined) await this.sync().catch(() => undefined);
    while (this.#busy()) await new Promise((resolve) => setImmediate(resolve));
    this.#closed = true;
    this.#retire(this.#writer);
    for (const files of this.#readers.values()) this.#retire(files);
    this.#readers.clear();
    while (this.#closing.size > 0) await Promise.all([...this.#closing]);
    await unlockLog(this.#dir);
  }

  #checkUsable(): void {
    if (this.#closed) throw logError('LogClosed', 'the log is closed');
    if (this.#failure !== undefined) throw this.#failure;
  }

  #segmentOf(position: Position): Segment {
    let low = 0;
    let high = this.#segments.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if ((this.#segments[mid] as Segment).firstPosition <= position) low = mid;
      else high = mid - 1;
    }
    const segment = this.#segments[low] as Segment;
    if (!(position >= segment.firstPosition && position < segment.firstPosition + segment.count)) assert(false, `position ${position} not in any segment`);
    return segment;
  }

  /** Handles of a segment for reading; pair with `#release`. */
  async #acquire(number: number): Promise<SegmentFiles> {
    let files = number === this.#writer.number ? this.#writer : this.#readers.get(number);
    if (files === undefined) {
      const opened = await openSegmentFiles(this.#dir, number, 'r');
      files = number === this.#writer.number ? this.#writer : this.#readers.get(number);
      if (files === undefined) {
        files = opened;
        this.#cacheReader(opened);
      } else {
        this.#retire(opened);
      }
    } else if (files !== this.#writer) {
      this.#readers.delete(number);
      this.#readers.set(number, files);
    }
    files.users++;
    return files;
  }

  #release(files: SegmentFiles): void {
    files.users--;
    assert(files.users >= 0, 'segment handles released twice');
    if (files.retired && files.users === 0) this.#closeLater(files);
  }

  async #withFiles<T>(number: number, use: (files: SegmentFiles) => Promise<T>): Promise<T> {
    const files = await this.#acquire(number);
    try {
      return await use(files);
    } finally {
      this.#release(files);
    }
  }

  #cacheReader(files: SegmentFiles): void {
    this.#readers.set(files.number, files);
    if (this.#readers.size > READ_HANDLES_MAX) {
      const [oldest, oldFiles] = this.#readers.entries().next().value as [number, SegmentFiles];
      this.#readers.delete(oldest);
      this.#retire(oldFiles);
    }
  }

  /** Closes handles once their last reader is done. */
  #retire(files: SegmentFiles): void {
    if (files.retired) return;
    files.retired = true;
    if (files.users === 0) this.#closeLater(files);
  }

  #closeLater(files: SegmentFiles): void {
    const closing = closeFiles(files).catch(() => undefined).finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
  }

  #encode(record: RecordFields): void {
    const frameBytes = recordFrameBytes(record.body.length);
    const pending = this.#pendingFor(frameBytes);
    const tenantHead = this.#tenantHeads.get(record.tenant);
    const data = pending.data.reserve(frameBytes);
    const hash = encodeRecordInto(record, {
      cluster: this.#cluster,
      tenantPrevPosition: tenantHead?.position ?? (0 as Position),
      prevHash: this.#headHash,
      tenantPrevHash: tenantHead?.hash ?? CHECKSUM_ZERO,
    }, data.buffer, data.offset);
    const slot = pending.slots.reserve(INDEX_SLOT_BYTES);
    encodeIndexSlotInto(slot.buffer, slot.offset, pending.dataOffset + data.offset, data.buffer, data.offset, frameBytes);
    pending.records++;
    pending.lastPosition = record.position;
    pending.segment.count++;
    pending.segment.bytes += frameBytes;
    this.#head = record.position;
    this.#headHash = hash;
    this.#tenantHeads.set(record.tenant, { position: record.position, hash });
  }

  /** The pending run to encode the next record into, rolling to a new segment when full. */
  #pendingFor(frameBytes: number): PendingWrite {
    let segment = this.#segments[this.#segments.length - 1] as Segment;
    if (segment.count > 0 && segment.bytes + frameBytes > this.#segmentBytes) {
      segment = { number: segment.number + 1, firstPosition: this.#head + 1, count: 0, bytes: 0 };
      this.#segments.push(segment);
    }
    const tail = this.#queue[this.#queue.length - 1];
    if (tail !== undefined && tail.segment === segment && tail.records < limits.groupCommitRecordsMax) return tail;
    const pending: PendingWrite = {
      segment, dataOffset: segment.bytes, firstSlot: segment.count, data: this.#builder(), slots: this.#builder(),
      records: 0, lastPosition: 0,
    };
    this.#queue.push(pending);
    return pending;
  }

  #builder(): ByteBuilder {
    return this.#builders.pop() ?? new ByteBuilder(BUILDER_BYTES_INITIAL);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // A microtask lets every append issued in the same turn join this group.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#pump();
    });
  }

  #busy(): boolean {
    return this.#flushScheduled || this.#writing || this.#syncing !== undefined;
  }

  /**
   * Group commit as a two-stage pipeline: runs are written, then covered by an fdatasync of the
   * segment and its index. While one fdatasync is in flight the next runs are already written,
   * so the next fdatasync starts the moment the previous one completes. An fdatasync covers only
   * writes that completed before it started, and an append resolves only once an fdatasync
   * covering its last record has completed. Called whenever a stage may start: after appends,
   * after a write, after an fdatasync.
   */
  #pump(): void {
    if (this.#failure !== undefined) return;
    if (this.#syncing === undefined && this.#written.length > 0) this.#startSync();
    if (!this.#writing && this.#queue.length > 0) this.#startWrite();
  }

  #startWrite(): void {
    const first = this.#queue[0] as PendingWrite;
    const roll = first.segment.number !== this.#writer.number;
    // A segment is durable before the next one receives data, so a torn tail is only ever in
    // the last segment: roll only once everything written is synced.
    if (roll && (this.#syncing !== undefined || this.#written.length > 0)) return;
    const runs = this.#takeRuns(first.segment, limits.groupCommitRecordsMax - runRecords(this.#written));
    if (runs.length === 0) return;
    this.#writing = true;
    this.#writeRuns(runs, roll).then(() => {
      this.#writing = false;
      this.#written.push(...runs);
      this.#pump();
    }, (error: unknown) => {
      this.#writing = false;
      this.#fail(error);
    });
  }

  /** Queued runs of `segment` holding at most `records` records together. */
  #takeRuns(segment: Segment, records: number): PendingWrite[] {
    const runs: PendingWrite[] = [];
    let taken = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as PendingWrite;
      if (next.segment !== segment || taken + next.records > records) break;
      runs.push(next);
      taken += next.records;
      this.#queue.shift();
    }
    return runs;
  }

  async #writeRuns(runs: readonly PendingWrite[], roll: boolean): Promise<void> {
    if (roll) await this.#rollWriter((runs[0] as PendingWrite).segment);
    for (const run of runs) {
      assert(run.segment.number === this.#writer.number, 'a run is written to its own segment');
      // The two files are independent: write them concurrently (one thread-pool round trip).
      await Promise.all([
        writeFully(this.#writer.data, run.data.bytes(), run.dataOffset),
        writeFully(this.#writer.index, run.slots.bytes(), slotFileOffset(run.firstSlot)),
      ]);
    }
  }

  #startSync(): void {
    const runs = this.#written;
    this.#written = [];
    this.#syncing = runs;
    const files = this.#writer;
    for (const run of runs) assert(run.segment.number === files.number, 'an fdatasync covers runs of the writer\'s segment');
    Promise.all([files.data.datasync(), files.index.datasync()]).then(() => this.#synced(runs), (error: unknown) => {
      this.#syncing = undefined;
      this.#fail(error);
    });
  }

  #synced(runs: readonly PendingWrite[]): void {
    this.#syncing = undefined;
    // Start the next fdatasync (its runs are already written) before any caller's continuation runs.
    this.#pump();
    const records = runRecords(runs);
    for (const run of runs) {
      run.data.reset();
      run.slots.reset();
      this.#builders.push(run.data, run.slots);
    }
    this.#pendingRecords -= records;
    this.#groupCommits++;
    this.#recordsCommitted += records;
    this.#durable = (runs[runs.length - 1] as PendingWrite).lastPosition as Position;
    this.#releaseWaiters();
    if (this.#failure !== undefined) this.#fail(this.#failure);
  }

  async #rollWriter(segment: Segment): Promise<void> {
    assert(segment.number === this.#writer.number + 1, `roll from segment ${this.#writer.number} to ${segment.number}`);
    await createSegmentFiles(this.#dir, segment.number, segment.firstPosition, this.#cluster);
    await syncDirectory(this.#dir);
    const old = this.#writer;
    this.#writer = await openSegmentFiles(this.#dir, segment.number, 'r+');
    // The sealed segment's handles stay open for reads (readers may be using them right now).
    this.#cacheReader(old);
  }

  #releaseWaiters(): void {
    while (this.#waitersHead < this.#waiters.length) {
      const waiter = this.#waiters[this.#waitersHead] as Waiter;
      if (waiter.position > this.#durable) break;
      this.#waitersHead++;
      waiter.resolve(waiter.position as Position);
    }
    if (this.#waitersHead > 1024 && this.#waitersHead * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#waitersHead);
      this.#waitersHead = 0;
    }
  }

  /**
   * Stops the log after a failed write or fdatasync: every append not yet durable is rejected,
   * except those covered by an fdatasync still in flight, which learn its outcome (`#synced`).
   */
  #fail(error: unknown): void {
    if (this.#failure === undefined) {
      const message = error instanceof Error ? error.message : String(error);
      this.#failure = logError('LogFailed', `log write failed, reopen to recover: ${message}`, { cause: error });
    }
    const coveredThrough = this.#syncing === undefined ? this.#durable : (this.#syncing[this.#syncing.length - 1] as PendingWrite).lastPosition;
    // Waiters are in position order.
    let keep = this.#waiters.length;
    while (keep > this.#waitersHead && (this.#waiters[keep - 1] as Waiter).position > coveredThrough) keep--;
    const rejected = this.#waiters.slice(keep);
    this.#waiters.length = keep;
    for (const waiter of rejected) waiter.reject(this.#failure);
  }

  /** The hash the record at `position` must have: its index copy, else its successor's prevHash. */
  async #expectedHash(position: Position): Promise<Checksum | undefined> {
    const fault = this.#faulty.get(position);
    if (fault !== undefined) return fault.expectedHash;
    const segment = this.#segmentOf(position);
    const slot = await this.#withFiles(segment.number, async (files) =>
      decodeIndexSlot(await readAt(files.index, slotFileOffset(position - segment.firstPosition), INDEX_SLOT_BYTES), 0));
    return slot === undefined ? undefined : peekHeader(slot.header).hash;
  }

  async #truncate(position: Position): Promise<void> {
    // Restore tenant heads by walking the discarded headers backwards.
    for (let p = this.#head; p > position; p--) {
      const header = await this.#headerAt(p as Position);
      const view = dataView(header);
      const tenant = peekHeader(header).tenant;
      const prevPosition = Number(view.getBigUint64(80, true));
      if (prevPosition === 0) this.#tenantHeads.delete(tenant);
      else this.#tenantHeads.set(tenant, { position: prevPosition as Position, hash: header.slice(160, 192) as Checksum });
      this.#faulty.delete(p);
    }
    const newHeadHash = position === 0 ? CHECKSUM_ZERO : peekHeader(await this.#headerAt(position)).hash;
    // Drop whole segments that start after the new head (keeping at least segment 0).
    while (this.#segments.length > 1 && (this.#segments[this.#segments.length - 1] as Segment).firstPosition > position) {
      const dropped = this.#segments.pop() as Segment;
      const files = this.#readers.get(dropped.number);
      if (files !== undefined) {
        this.#readers.delete(dropped.number);
        this.#retire(files);
      }
      if (dropped.number === this.#writer.number) {
        this.#retire(this.#writer);
        const previous = this.#segments[this.#segments.length - 1] as Segment;
        const cachedPrevious = this.#readers.get(previous.number);
        if (cachedPrevious !== undefined) {
          this.#readers.delete(previous.number);
          this.#retire(cachedPrevious);
        }
        this.#writer = await openSegmentFiles(this.#dir, previous.number, 'r+');
      }
      await rm(join(this.#dir, segmentFileName(dropped.number)), { force: true });
      await rm(join(this.#dir, indexFileName(dropped.number)), { force: true });
    }
    const segment = this.#segments[this.#segments.length - 1] as Segment;
    const keep = position - segment.firstPosition + 1;
    let bytes = 0;
    if (keep > 0) {
      const slot = decodeIndexSlot(await readAt(this.#writer.index, slotFileOffset(keep - 1), INDEX_SLOT_BYTES), 0);
      if (slot === undefined) throw logError('CorruptIndex', `index slot for position ${position} fails its CRC`, { position });
      bytes = slot.offset + slot.frameBytes;
    }
    await this.#writer.data.truncate(bytes);
    await this.#writer.index.truncate(slotFileOffset(keep));
    await Promise.all([this.#writer.data.datasync(), this.#writer.index.datasync()]);
    await syncDirectory(this.#dir);
    segment.count = keep;
    segment.bytes = bytes;
    this.#head = position;
    this.#headHash = newHeadHash;
    this.#durable = position;
    if (this.#committed > position) this.#committed = position;
  }

  /** The index copy of a record header (CRC-checked). */
  async #headerAt(position: Position): Promise<Uint8Array> {
    const segment = this.#segmentOf(position);
    const slot = await this.#withFiles(segment.number, async (files) =>
      decodeIndexSlot(await readAt(files.index, slotFileOffset(position - segment.firstPosition), INDEX_SLOT_BYTES), 0));
    if (slot === undefined) throw logError('CorruptIndex', `index slot for position ${position} fails its CRC`, { position });
    return slot.header;
  }

  async #verifyRange(from: number, to: number, onProgress: VerifyProgress | undefined): Promise<VerifyResult> {
    const total = Math.max(0, to - from + 1);
    let checked = 0;
    if (total === 0) return { ok: true, checked };
    const seen = new Map<number, LogHead>();
    let prevHash: Uint8Array | undefined = from === 1 ? CHECKSUM_ZERO : undefined;
    if (prevHash === undefined) {
      const before = await this.#verifiedRecord(from - 1);
      if (!before.ok) return { ...before, checked };
      prevHash = before.record.hash;
    }
    let position = from;
    while (position <= to) {
      const segment = this.#segmentOf(position as Position);
      const segmentPath = join(this.#dir, segmentFileName(segment.number));
      const indexPath = join(this.#dir, indexFileName(segment.number));
      const files = await this.#acquire(segment.number);
      try {
      const segmentLast = Math.min(to, segment.firstPosition + segment.count - 1);
      const firstSlot = position - segment.firstPosition;
      const slotBytes = await readAt(files.index, slotFileOffset(firstSlot), (segmentLast - position + 1) * INDEX_SLOT_BYTES);
      const broken = (reason: VerifyReason, detail: string, file = segmentPath, at = position): VerifyResult =>
        ({ ok: false, checked, position: at as Position, reason, detail, file });
      let offset = 0;
      if (firstSlot > 0) {
        const previous = decodeIndexSlot(await readAt(files.index, slotFileOffset(firstSlot - 1), INDEX_SLOT_BYTES), 0);
        if (previous === undefined) return broken('index', `index slot ${position - 1} fails its CRC`, indexPath, position - 1);
        offset = previous.offset + previous.frameBytes;
      }
      for await (const item of frames(files.data, offset, segment.bytes)) {
        const slotAt = (position - segment.firstPosition - firstSlot) * INDEX_SLOT_BYTES;
        const fault = this.#faulty.get(position);
        if (fault !== undefined) return broken('faulty', `awaiting repair: ${fault.reason}`);
        const decoded = decodeRecordAt(item.bytes, item.at);
        if (!decoded.ok) return broken(decoded.fault, decoded.reason);
        const record = decoded.value;
        if (record.position !== position) return broken('position', `record says position ${record.position}`);
        if (record.cluster !== this.#cluster) return broken('cluster', `record belongs to cluster ${record.cluster}`);
        if (!checksumEqual(record.prevHash, prevHash)) return broken('chain', 'prevHash does not match the previous record\'s hash');
        const slot = decodeIndexSlot(slotBytes, slotAt);
        const frameBytes = recordFrameBytes(record.bodyBytes);
        if (slot === undefined) return broken('index', 'index slot fails its CRC', indexPath);
        if (slot.offset !== item.offset || slot.frameBytes !== frameBytes
          || !checksumEqual(slot.header, item.bytes.subarray(item.at + RECORD_PREFIX_BYTES, item.at + RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES))) {
          return broken('index', 'index slot disagrees with the record', indexPath);
        }
        const link = seen.has(record.tenant) || record.tenantPrevPosition === 0
          ? tenantLinkProblemSeen(record, seen.get(record.tenant))
          : await this.#tenantLinkProblem(record, from);
        if (link !== undefined) return broken('tenant-chain', link);
        seen.set(record.tenant, { position: record.position, hash: record.hash });
        prevHash = record.hash;
        checked++;
        if (onProgress !== undefined && checked % VERIFY_PROGRESS_EVERY === 0) onProgress(checked, total);
        position++;
        if (position > segmentLast) break;
      }
      if (position <= segmentLast) return broken('short', 'segment ends before the index says it should');
      } finally {
        this.#release(files);
      }
    }
    onProgress?.(checked, total);
    return { ok: true, checked };
  }

  /** The link of a tenant's record whose predecessor lies before the verified range. */
  async #tenantLinkProblem(record: LogRecord, from: number): Promise<string | undefined> {
    if (record.tenantPrevPosition >= from) return `tenantPrevPosition ${record.tenantPrevPosition} is not a record of tenant ${record.tenant}`;
    const target = await this.#verifiedRecord(record.tenantPrevPosition);
    if (!target.ok) return `tenantPrevPosition ${record.tenantPrevPosition} is unreadable: ${target.detail}`;
    if (target.record.tenant !== record.tenant) return `tenantPrevPosition ${record.tenantPrevPosition} belongs to tenant ${target.record.tenant}`;
    if (!checksumEqual(target.record.hash, record.tenantPrevHash)) return 'tenantPrevHash does not match the tenant\'s previous record';
    return undefined;
  }

  async #verifiedRecord(position: number): Promise<{ ok: true; record: LogRecord } | { ok: false; position: Position; reason: VerifyReason; detail: string; file: string }> {
    try {
      const record = await this.read(position as Position);
      if (record === undefined) return { ok: false, position: position as Position, reason: 'missing', detail: 'beyond the head', file: this.#dir };
      return { ok: true, record };
    } catch (error) {
      if (!(error instanceof VerityError)) throw error;
      const fault = error.details['fault'];
      const reason: VerifyReason = error.code === 'FaultyRecord' ? 'faulty'
        : error.code === 'CorruptIndex' || error.code === 'IndexMismatch' ? 'index'
          : typeof fault === 'string' ? (fault as VerifyReason) : 'crc';
      const file = typeof error.details['file'] === 'string' ? error.details['file'] : this.#dir;
      return { ok: false, position: position as Position, reason, detail: error.message, file };
    }
  }

  async #verifyTenant(tenant: TenantId, from: number, to: number, onProgress: VerifyProgress | undefined): Promise<VerifyResult> {
    let checked = 0;
    const head = this.#tenantHeads.get(tenant);
    if (head === undefined) return { ok: true, checked };
    let position: number = head.position;
    let expectedHash: Uint8Array = head.hash;
    // Skip records after `to` using the index copies of their headers.
    while (position > to) {
      const header = await this.#verifiedRecord(position);
      if (!header.ok) return { ...header, checked };
      expectedHash = header.record.tenantPrevHash;
      position = header.record.tenantPrevPosition;
    }
    // The record whose link named the current one: a mismatch is that link's fault.
    let namedBy: number | undefined;
    while (position >= from && position > 0) {
      const result = await this.#verifiedRecord(position);
      if (!result.ok) return { ...result, checked };
      const record = result.record;
      const blamed = (namedBy ?? record.position) as Position;
      const file = join(this.#dir, segmentFileName(this.#segmentOf(blamed).number));
      if (record.tenant !== tenant) return { ok: false, checked, position: blamed, reason: 'tenant-chain', detail: `tenantPrevPosition names record ${record.position} of tenant ${record.tenant}`, file };
      if (!checksumEqual(record.hash, expectedHash)) return { ok: false, checked, position: blamed, reason: 'tenant-chain', detail: `tenantPrevHash does not match record ${record.position}`, file };
      namedBy = record.position;
      if (record.tenantPrevPosition === 0 && !checksumEqual(record.tenantPrevHash, CHECKSUM_ZERO)) {
        return { ok: false, checked, position: record.position, reason: 'tenant-chain', detail: 'first record of its tenant has a non-zero tenantPrevHash', file };
      }
      checked++;
      if (onProgress !== undefined && checked % VERIFY_PROGRESS_EVERY === 0) onProgress(checked, checked);
      expectedHash = record.tenantPrevHash;
      position = record.tenantPrevPosition;
    }
    onProgress?.(checked, checked);
    return { ok: true, checked };
  }
}

/**
 * The tenant link of a record whose tenant was already seen in the verified range (or that
 * claims to be its tenant's first record). A first record inside a range that starts after 1
 * cannot be told from a later one without a full scan; its zero link is still checked.
 */
function tenantLinkProblemSeen(record: LogRecord, previous: LogHead | undefined): string | undefined {
  if (previous === undefined) {
    return checksumEqual(record.tenantPrevHash, CHECKSUM_ZERO) ? undefined : 'first record of its tenant has a non-zero tenantPrevHash';
  }
  if (record.tenantPrevPosition !== previous.position) return `tenantPrevPosition ${record.tenantPrevPosition}, but the tenant's previous record is ${previous.position}`;
  if (!checksumEqual(record.tenantPrevHash, previous.hash)) return 'tenantPrevHash does not match the tenant\'s previous record';
  return undefined;
}

function runRecords(runs: readonly PendingWrite[]): number {
  let records = 0;
  for (const run of runs) records += run.records;
  return records;
}

/** Fast open path for a sealed segment: its index alone, CRC-checked and linked. */
interface QuickCheck {
  readonly headers: HeaderSummary[];
  readonly count: number;
  readonly bytes: number;
  readonly lastHash: Uint8Array;
}

function quickSealedCheck(indexBytes: Uint8Array, segmentSize: number, firstPosition: number, prevHash: Uint8Array | undefined): QuickCheck | undefined {
  if (prevHash === undefined) return undefined;
  const slotsBytes = indexBytes.length - INDEX_HEADER_BYTES;
  if (slotsBytes % INDEX_SLOT_BYTES !== 0) return undefined;
  const count = slotsBytes / INDEX_SLOT_BYTES;
  const headers: HeaderSummary[] = [];
  let offset = 0;
  let lastHash = prevHash;
  for (let i = 0; i < count; i++) {
    const slot: IndexSlot | undefined = decodeIndexSlot(indexBytes, INDEX_HEADER_BYTES + i * INDEX_SLOT_BYTES);
    if (slot === undefined || slot.offset !== offset) return undefined;
    const summary = peekHeader(slot.header);
    if (summary.position !== firstPosition + i || !checksumEqual(slot.header.subarray(128, 160), lastHash)) return undefined;
    headers.push(summary);
    lastHash = summary.hash;
    offset += slot.frameBytes;
  }
  if (offset !== segmentSize || count === 0) return undefined;
  return { headers, count, bytes: offset, lastHash };
}

/** Logs open in this process (a second `Log.open` of the same directory is refused). */
const openInProcess = new Set<string>();

/**
 * Takes `<log>/LOCK` (holding this process's pid), refusing with `LogLocked` while another live
 * process or another `Log` in this one holds it. A lock left by a dead process is taken over.
 */
async function lockLog(logDir: string): Promise<void> {
  const path = join(logDir, 'LOCK');
  if (openInProcess.has(logDir)) throw logError('LogLocked', `${logDir} is already open in this process`, { file: path });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      openInProcess.add(logDir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
      throw logError('LogLocked', `${logDir} is in use by process ${holder} (${path})`, { file: path, pid: holder });
    }
    await rm(path, { force: true });
  }
  throw logError('LogLocked', `could not take ${path}`, { file: path });
}

async function unlockLog(logDir: string): Promise<void> {
  if (!openInProcess.delete(logDir)) return;
  await rm(join(logDir, 'LOCK'), { force: true });
}

async function listSegments(logDir: string): Promise<number[]> {
  const names = await readdir(logDir);
  const found = new Map<number, Set<string>>();
  for (const name of names) {
    const match = SEGMENT_NAME.exec(name);
    if (match === null) continue;
    const number = Number(match[1]);
    const kinds = found.get(number) ?? new Set<string>();
    kinds.add(match[2] as string);
    found.set(number, kinds);
  }
  const numbers = [...found.keys()].sort((a, b) => a - b);
  for (let k = 0; k < numbers.length; k++) {
    const number = numbers[k] as number;
    if (number !== k) throw logError('MissingSegment', `${join(logDir, segmentFileName(k))} is missing (found segment ${number})`, { file: join(logDir, segmentFileName(k)) });
    const kinds = found.get(number) as Set<string>;
    if (kinds.size === 2) continue;
    const segmentPath = join(logDir, segmentFileName(number));
    const indexPath = join(logDir, indexFileName(number));
    // A crash while a segment was being created may leave one empty half: forget it.
    const isLast = k === numbers.length - 1;
    const present = kinds.has('segment') ? segmentPath : indexPath;
    const size = (await stat(present)).size;
    const empty = kinds.has('segment') ? size === 0 : size <= INDEX_HEADER_BYTES;
    if (!isLast || !empty) {
      const missing = kinds.has('segment') ? indexPath : segmentPath;
      throw logError('MissingSegment', `${missing} is missing`, { file: missing });
    }
    await rm(present);
    await syncDirectory(logDir);
    numbers.pop();
  }
  return numbers;
}

async function createSegmentFiles(logDir: string, number: number, firstPosition: number, cluster: ClusterId): Promise<void> {
  const index = await open(join(logDir, indexFileName(number)), 'wx');
  try {
    await writeFully(index, encodeIndexHeader({ segment: number, firstPosition: firstPosition as Position, cluster }), 0);
    await index.datasync();
  } finally {
    await index.close();
  }
  const data = await open(join(logDir, segmentFileName(number)), 'wx');
  await data.close();
}

async function openSegmentFiles(logDir: string, number: number, flags: 'r' | 'r+'): Promise<SegmentFiles> {
  const data = await open(join(logDir, segmentFileName(number)), flags);
  try {
    const index = await open(join(logDir, indexFileName(number)), flags);
    return { number, data, index, users: 0, retired: false };
  } catch (error) {
    await data.close();
    throw error;
  }
}

async function closeFiles(files: SegmentFiles): Promise<void> {
  await files.data.close();
  await files.index.close();
}

async function rewriteIndexHeader(indexPath: string, bytes: Uint8Array): Promise<void> {
  const index = await open(indexPath, 'r+');
  try {
    await writeFully(index, bytes, 0);
    await index.datasync();
  } finally {
    await index.close();
  }
}

/** Writes rebuilt index slots and cuts a torn tail from both files. */
async function applyAudit(segmentPath: string, indexPath: string, count: number, bytes: number,
  slotWrites: readonly { slot: number; bytes: Uint8Array }[], segmentSize: number, indexSize: number): Promise<void> {
  const indexBytes = slotFileOffset(count);
  if (slotWrites.length === 0 && bytes === segmentSize && indexBytes === indexSize) return;
  const data = await open(segmentPath, 'r+');
  const index = await open(indexPath, 'r+');
  try {
    for (const write of slotWrites) await writeFully(index, write.bytes, slotFileOffset(write.slot));
    if (bytes !== segmentSize) await data.truncate(bytes);
    if (indexBytes !== indexSize) await index.truncate(indexBytes);
    await Promise.all([data.datasync(), index.datasync()]);
  } finally {
    await data.close();
    await index.close();
  }
}

/** Length of the frame whose prefix is at `at`, or -1 when the prefix is not in `chunk`. */
function frameLengthAt(chunk: Uint8Array, at: number): number {
  return chunk.length - at >= RECORD_PREFIX_BYTES ? dataView(chunk).getUint32(at, true) + RECORD_PREFIX_BYTES : -1;
}

/**
 * Frames of a segment file from `offset` to `end`, read in chunks. A frame that is cut short
 * (or claims more bytes than remain) is yielded as is and ends the iteration: the decoder names
 * the fault.
 */
async function* frames(handle: FileHandle, offset: number, end: number): AsyncGenerator<{ bytes: Uint8Array; at: number; offset: number }> {
  let position = offset;
  let chunk: Uint8Array = new Uint8Array(0);
  let chunkStart = offset;
  while (position < end) {
    let at = position - chunkStart;
    let length = frameLengthAt(chunk, at);
    if (length < 0 || at + length > chunk.length) {
      chunk = await readAt(handle, position, Math.min(end - position, Math.max(SCAN_CHUNK_BYTES, length)));
      chunkStart = position;
      at = 0;
      length = frameLengthAt(chunk, 0);
      if (length < 0 || length > chunk.length) {
        yield { bytes: chunk, at: 0, offset: position };
        return;
      }
    }
    yield { bytes: chunk, at, offset: position };
    position += length;
  }
}
