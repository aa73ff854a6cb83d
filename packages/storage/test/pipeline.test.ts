import t from 'tap';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { isVerityError, position, type Position } from '@veritydb/types';
import { Log, RECORD_FRAME_BYTES_MIN, type RecordFields } from '../src/index.js';
import { INDEX_HEADER_BYTES, INDEX_MAGIC, INDEX_SLOT_BYTES } from '../src/segment-index.js';
import { CLUSTER, makeRecord, tempDir } from './helpers.js';

/**
 * Pipelined group commit (the next group is written while the previous fdatasync is in flight),
 * observed through the file handles: every `FileHandle` write and datasync in this process goes
 * through hooks installed on the class's prototype, which track how far each of the log's files
 * was written and how far a completed fdatasync covers it, delay fdatasyncs so that the
 * pipeline fills, and inject failures.
 */

await initCrypto();
const BODY_BYTES = 100;
const FRAME_BYTES = RECORD_FRAME_BYTES_MIN + BODY_BYTES;

type Role = 'data' | 'index' | 'other';

interface Tracked {
  role: Role;
  /** End of the writes that completed so far. */
  writtenEnd: number;
  /** End of the writes covered by a completed datasync (those completed before it started). */
  durableEnd: number;
  syncsInFlight: number;
}

interface Hooks {
  /** Runs before a write of the log's data or index file reaches the file; may throw. */
  beforeWrite?: (role: Role) => void;
  /** Runs before a datasync; its promise delays the datasync and may reject to fail it. */
  beforeSync?: (role: Role) => Promise<void>;
}

type WriteFn = (buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;
type SyncFn = () => Promise<void>;

const tracked = new Map<FileHandle, Tracked>();
let hooks: Hooks = {};
/** Writes of the log's files issued while a datasync of the same file was in flight. */
let writesDuringSync = 0;

const probe = await open(join(await tempDir(t, 'pipeline-probe'), 'probe'), 'w');
const prototype = Object.getPrototypeOf(probe) as { write: WriteFn; datasync: SyncFn };
await probe.close();
const originalWrite = prototype.write;
const originalDatasync = prototype.datasync;

function classify(buffer: Uint8Array, offset: number, at: number): Role {
  if (at >= INDEX_HEADER_BYTES && (at - INDEX_HEADER_BYTES) % INDEX_SLOT_BYTES === 0 && at % FRAME_BYTES !== 0) return 'index';
  const first = Buffer.from(buffer.buffer, buffer.byteOffset + offset, 4).readUInt32LE(0);
  if (at === 0 && first === INDEX_MAGIC) return 'other';
  return first === FRAME_BYTES - 8 ? 'data' : 'other';
}

prototype.write = async function write(this: FileHandle, buffer, offset, length, at) {
  let entry = tracked.get(this);
  if (entry === undefined) {
    entry = { role: classify(buffer, offset, at), writtenEnd: 0, durableEnd: 0, syncsInFlight: 0 };
    tracked.set(this, entry);
  }
  if (entry.role !== 'other') {
    if (entry.syncsInFlight > 0) writesDuringSync++;
    hooks.beforeWrite?.(entry.role);
  }
  const result = await originalWrite.call(this, buffer, offset, length, at);
  entry.writtenEnd = Math.max(entry.writtenEnd, at + result.bytesWritten);
  return result;
};

prototype.datasync = async function datasync(this: FileHandle) {
  const entry = tracked.get(this);
  if (entry === undefined || entry.role === 'other') return originalDatasync.call(this);
  const covers = entry.writtenEnd;
  entry.syncsInFlight++;
  try {
    await hooks.beforeSync?.(entry.role);
    await originalDatasync.call(this);
    entry.durableEnd = Math.max(entry.durableEnd, covers);
  } finally {
    entry.syncsInFlight--;
  }
};

t.teardown(() => {
  prototype.write = originalWrite;
  prototype.datasync = originalDatasync;
});

function reset(next: Hooks): void {
  tracked.clear();
  hooks = next;
  writesDuringSync = 0;
}

function record(at: number): RecordFields {
  return makeRecord(at, { tenant: at % 3, bodyBytes: BODY_BYTES });
}

/** Whether completed datasyncs cover records 1..last in both files (a fresh, single-segment log). */
function durableThrough(last: number): boolean {
  const roles = [...tracked.values()];
  const data = roles.filter((entry) => entry.role === 'data');
  const index = roles.filter((entry) => entry.role === 'index');
  return data.length === 1 && index.length === 1
    && (data[0] as Tracked).durableEnd >= last * FRAME_BYTES
    && (index[0] as Tracked).durableEnd >= INDEX_HEADER_BYTES + last * INDEX_SLOT_BYTES;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('pipelined group commit: writes overlap fdatasyncs, no append resolves before the fdatasync covering it, order kept', async (t) => {
  reset({ beforeSync: () => delay(3) });
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  const resolved: number[] = [];
  const appends: Promise<void>[] = [];
  let early = 0;
  let next = 1;
  for (let turn = 0; turn < 150; turn++) {
    const count = 1 + (turn % 5);
    const batch = Array.from({ length: count }, (_, i) => record(next + i));
    next += count;
    appends.push(log.append(batch).then((last) => {
      if (!durableThrough(last) || log.durablePosition() < last) early++;
      resolved.push(last);
    }));
    if (turn % 3 === 0) await delay(1);
  }
  await Promise.all(appends);
  const head = next - 1;
  t.equal(early, 0, 'every append resolved after a completed fdatasync of both files covered it');
  t.same(resolved, [...resolved].sort((a, b) => a - b), 'appends resolve in position order');
  t.equal(resolved[resolved.length - 1], head);
  t.ok(writesDuringSync > 0, `groups were written while an fdatasync was in flight (${writesDuringSync} writes)`);
  const stats = log.stats();
  t.equal(stats.recordsCommitted, head);
  t.ok(stats.groupCommits > 1 && stats.groupCommits < resolved.length, `${resolved.length} appends took ${stats.groupCommits} group commits`);
  for (let at = 1; at <= head; at++) {
    const read = await log.read(position(at));
    if (read === undefined || Buffer.compare(read.body, record(at).body) !== 0) t.fail(`record ${at} reads back`);
  }
  t.same(await log.verify(), { ok: true, checked: head });
  await log.close();
});

/** Appends `first..first+count-1` in one batch. */
function appendRange(log: Log, first: number, count: number): Promise<Position> {
  return log.append(Array.from({ length: count }, (_, i) => record(first + i)));
}

t.test('a failed write rejects the appends it covers; the fdatasync in flight still makes its own appends durable; the log then refuses appends', async (t) => {
  let syncStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => { syncStarted = resolve; });
  let failWrites = false;
  reset({
    beforeSync: async () => {
      syncStarted();
      await delay(20);
    },
    beforeWrite: () => {
      if (failWrites) throw Object.assign(new Error('injected EIO on write'), { code: 'EIO' });
    },
  });
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  const first = appendRange(log, 1, 10);
  await started;
  failWrites = true;
  const second = t.rejects(appendRange(log, 11, 10), { code: 'LogFailed' }, 'the append whose write failed is rejected');
  const third = t.rejects(appendRange(log, 21, 5), { code: 'LogFailed' }, 'so is every later one');
  t.equal(await first, 10, 'the append covered by the fdatasync in flight resolves');
  await second;
  await third;
  t.throws(() => log.append([record(26)]), { code: 'LogFailed' }, 'further appends are refused');
  t.throws(() => log.sync(), { code: 'LogFailed' });
  await log.close();
  reset({});
  const reopened = await Log.open(dir, { cluster: CLUSTER });
  t.equal(reopened.head().position, 10, 'reopen finds exactly the durable records');
  t.same(await reopened.verify(), { ok: true, checked: 10 });
  await reopened.close();
});

t.test('a failed fdatasync rejects every append it covers and every append written after it', async (t) => {
  let syncs = 0;
  reset({
    beforeSync: async (role) => {
      await delay(10);
      if (role === 'data' && ++syncs === 2) throw Object.assign(new Error('injected EIO on fdatasync'), { code: 'EIO' });
    },
  });
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  t.equal(await appendRange(log, 1, 4), 4, 'the first group commit succeeds');
  const outcomes: string[] = [];
  const pending: Promise<void>[] = [];
  for (let k = 0; k < 6; k++) {
    // Once the log has failed, append refuses synchronously: collect that as an outcome too.
    const attempt = Promise.resolve().then(() => appendRange(log, 5 + k * 3, 3));
    pending.push(attempt.then(() => { outcomes.push('resolved'); }, (error: unknown) => {
      outcomes.push(isVerityError(error, 'LogFailed') ? 'LogFailed' : `other: ${String(error)}`);
    }));
    await delay(2);
  }
  await Promise.all(pending);
  t.same(outcomes, outcomes.map(() => 'LogFailed'), 'none of the appends after the failed fdatasync resolved');
  t.equal(log.durablePosition(), 4, 'durable position stops before the failed fdatasync');
  t.throws(() => log.append([record(23)]), { code: 'LogFailed' });
  await log.close();
  reset({});
  const reopened = await Log.open(dir, { cluster: CLUSTER });
  t.ok(reopened.head().position >= 4, `reopen keeps the durable records (head ${reopened.head().position})`);
  t.same(await reopened.verify(), { ok: true, checked: reopened.head().position });
  await reopened.close();
});
