import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { CHECKSUM_ZERO, Prng, checksumEqual, checksumHex, isVerityError, limits, position, seedFrom, tenantId } from '@veritydb/types';
import {
  Log, decodeRecord, encodeRecord, decodeHeader, recordFrameBytes, RECORD_PREFIX_BYTES, RECORD_HEADER_BYTES, type LogRecord,
  type RecordFields,
} from '../src/index.js';
import { CLUSTER, makeRecord, makeRecords, tempDir, type RecordSpec } from './helpers.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
await initCrypto();

function sameFields(record: LogRecord, fields: RecordFields): boolean {
  return record.position === fields.position && record.view === fields.view && record.commit === fields.commit
    && record.timestamp === fields.timestamp && record.client === fields.client && record.request === fields.request
    && record.tenant === fields.tenant && record.operation === fields.operation && Buffer.compare(record.body, fields.body) === 0;
}

t.test('record codec: encode/decode round trip and every single-bit flip is rejected', async (t) => {
  const links = { cluster: CLUSTER, tenantPrevPosition: position(0), prevHash: CHECKSUM_ZERO, tenantPrevHash: CHECKSUM_ZERO };
  fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 400 }), fc.nat(), (at, bodyBytes, flip) => {
    const fields = makeRecord(at, { tenant: at % 3, bodyBytes });
    const { bytes, record } = encodeRecord(fields, { ...links, tenantPrevPosition: position(at - 1) });
    const decoded = decodeRecord(bytes);
    if (!decoded.ok || !sameFields(decoded.value, fields) || !sameFields(record, fields)) return false;
    if (bytes.length !== recordFrameBytes(bodyBytes)) return false;
    const header = decodeHeader(bytes.subarray(RECORD_PREFIX_BYTES, RECORD_PREFIX_BYTES + RECORD_HEADER_BYTES), bodyBytes);
    if (!header.ok || !checksumEqual(header.value.hash, record.hash)) return false;
    const bit = flip % (bytes.length * 8);
    const damaged = Uint8Array.from(bytes);
    damaged[bit >>> 3] = (damaged[bit >>> 3] as number) ^ (1 << (bit & 7));
    return !decodeRecord(damaged).ok;
  }), { seed, numRuns: 300 });
  const { bytes } = encodeRecord(makeRecord(5), links);
  const truncatedResult = decodeRecord(bytes.subarray(0, bytes.length - 1));
  t.equal(truncatedResult.ok, false);
  if (!truncatedResult.ok) t.equal(truncatedResult.fault, 'short');
  const version = Uint8Array.from(bytes);
  version[RECORD_PREFIX_BYTES + 4] = 2;
  // Re-seal the CRC so only the version is wrong.
  const { crc32 } = await import('@veritydb/crypto');
  new DataView(version.buffer).setUint32(4, crc32(version.subarray(RECORD_PREFIX_BYTES)), true);
  const badVersion = decodeRecord(version);
  t.equal(badVersion.ok ? 'ok' : badVersion.fault, 'version', 'an unknown format version is refused, not guessed');
});

t.test('append/read/scan round trip over random batches and segment sizes, across reopen', async (t) => {
  const batch = fc.array(fc.record({ tenant: fc.integer({ min: 0, max: 4 }), bodyBytes: fc.integer({ min: 0, max: 700 }) }), { minLength: 1, maxLength: 40 });
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: limits.segmentBytesMin, max: 5 * limits.segmentBytesMin }),
    fc.array(batch, { minLength: 1, maxLength: 8 }),
    fc.boolean(),
    async (segmentBytes, batches, concurrent) => {
      const dir = await mkdtemp(join(tmpdir(), 'veritydb-roundtrip-'));
      try {
        let log = await Log.open(dir, { cluster: CLUSTER, segmentBytes });
        const all: RecordFields[] = [];
        const pending: Promise<unknown>[] = [];
        for (const specs of batches) {
          const records = makeRecords(all.length + 1, specs as RecordSpec[]);
          all.push(...records);
          const done = log.append(records).then((p) => {
            if (log.durablePosition() < p) throw new Error('resolved before durable');
            return p;
          });
          if (concurrent) pending.push(done);
          else await done;
        }
        await Promise.all(pending);
        const check = async (label: string): Promise<void> => {
          if (log.head().position !== all.length) throw new Error(`${label}: head ${log.head().position} != ${all.length}`);
          for (const fields of all) {
            const record = await log.read(fields.position);
            if (record === undefined || !sameFields(record, fields)) throw new Error(`${label}: read ${fields.position} differs`);
          }
          let expected = 1;
          let prev: Uint8Array = CHECKSUM_ZERO;
          for await (const record of log.scan(position(1))) {
            const fields = all[expected - 1] as RecordFields;
            if (!sameFields(record, fields) || !checksumEqual(record.prevHash, prev)) throw new Error(`${label}: scan ${expected} differs`);
            prev = record.hash;
            expected++;
          }
          if (expected !== all.length + 1) throw new Error(`${label}: scan stopped at ${expected}`);
          if (!checksumEqual(prev, log.head().hash)) throw new Error(`${label}: head hash differs`);
          const from = 1 + ((all.length * 7) % all.length);
          let n = 0;
          for await (const record of log.scan(position(from), position(all.length))) {
            if (record.position !== from + n) throw new Error('partial scan out of order');
            n++;
          }
          if (n !== all.length - from + 1) throw new Error('partial scan length');
          const verified = await log.verify();
          if (!verified.ok || verified.checked !== all.length) throw new Error(`${label}: verify ${JSON.stringify(verified)}`);
          if (await log.read(position(all.length + 1)) !== undefined) throw new Error('read beyond head');
        };
        await check('before reopen');
        const segments = (await readdir(join(dir, 'log'))).filter((name) => name.endsWith('.segment')).length;
        await log.close();
        log = await Log.open(dir, { cluster: CLUSTER, segmentBytes });
        if (log.recovery.truncated !== undefined || log.recovery.indexSlotsRebuilt !== 0) throw new Error('clean reopen reported recovery work');
        await check('after reopen');
        await log.close();
        return segments >= 1;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }), { seed, numRuns: 25 });
  t.pass('round trips hold');
});

t.test('segments roll at the configured size', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: limits.segmentBytesMin });
  const specs = Array.from({ length: 100 }, () => ({ tenant: 1, bodyBytes: 200 }));
  await log.append(makeRecords(1, specs));
  const names = (await readdir(join(dir, 'log'))).sort();
  const segments = names.filter((n) => n.endsWith('.segment'));
  t.ok(segments.length >= 9, `${segments.length} segments for ~43 KiB of records`);
  t.equal(names.filter((n) => n.endsWith('.index')).length, segments.length, 'one index per segment');
  t.equal(segments[0], '00000000.segment');
  t.same((await log.read(position(100)))?.position, 100);
  await log.close();
});

t.test('group commit: concurrent appends coalesce and resolve only when durable', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  const resolved: number[] = [];
  const appends: Promise<unknown>[] = [];
  let early = 0;
  for (let at = 1; at <= 2000; at++) {
    appends.push(log.append([makeRecord(at)]).then((p) => {
      if (log.durablePosition() < p) early++;
      resolved.push(p);
    }));
  }
  t.equal(log.head().position, 2000, 'head advances at once');
  t.ok(log.durablePosition() < 2000, 'not durable synchronously');
  await Promise.all(appends);
  t.equal(early, 0, 'no append resolved before the fdatasync covering it');
  const stats = log.stats();
  t.equal(stats.recordsCommitted, 2000);
  t.ok(stats.groupCommits <= 20, `2000 concurrent appends took ${stats.groupCommits} group commits`);
  t.same(resolved, Array.from({ length: 2000 }, (_, i) => i + 1), 'resolve in position order');
  t.equal(await log.sync(), 2000);
  await log.close();
});

t.test('dense positions, size limits and backpressure are enforced', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: 64 * 1024 });
  t.throws(() => log.append([makeRecord(2)]), { code: 'NotDense' });
  t.throws(() => log.append([makeRecord(1), makeRecord(3)]), { code: 'NotDense' });
  t.equal(log.head().position, 0, 'a rejected batch changes nothing');
  t.throws(() => log.append([makeRecord(1, { tenant: 1, bodyBytes: 64 * 1024 })]), { code: 'RecordTooLarge' });
  const big = Array.from({ length: limits.appendBatchRecordsMax }, () => ({ tenant: 1, bodyBytes: 0 }));
  const waits: Promise<unknown>[] = [];
  let overloaded = false;
  let next = 1;
  try {
    for (let i = 0; i < 10; i++) {
      waits.push(log.append(makeRecords(next, big)));
      next += big.length;
    }
  } catch (error) {
    overloaded = isVerityError(error, 'LogOverloaded');
  }
  t.ok(overloaded, 'appending beyond the pending bound is refused with LogOverloaded');
  await Promise.all(waits);
  t.equal(log.durablePosition(), next - 1);
  await log.close();
  t.throws(() => log.sync(), { code: 'LogClosed' });
});

t.test('truncateAfter refuses the committed prefix and restores chain heads', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: limits.segmentBytesMin });
  const specs = Array.from({ length: 60 }, (_, i) => ({ tenant: i % 3, bodyBytes: 100 + i }));
  await log.append(makeRecords(1, specs));
  const headAt30 = (await log.read(position(30)))?.hash;
  const tenantHeadsAt30 = [0, 1, 2].map((tenant) => {
    const last = 30 - ((30 - 1 - tenant + 3) % 3);
    return last;
  });
  log.setCommitted(position(25));
  await t.rejects(log.truncateAfter(position(24)), { code: 'TruncateCommitted' });
  await log.truncateAfter(position(30));
  t.equal(log.head().position, 30);
  t.ok(headAt30 !== undefined && checksumEqual(log.head().hash, headAt30));
  t.same([0, 1, 2].map((tenant) => log.tenantHead(tenantId(tenant))?.position), tenantHeadsAt30);
  t.equal(await log.read(position(31)), undefined);
  // Appending again chains on the new head, and survives reopen.
  await log.append(makeRecords(31, specs.slice(0, 20)));
  t.same(await log.verify(), { ok: true, checked: 50 });
  for (const tenant of [0, 1, 2]) t.same(await log.verify({ tenant: tenantId(tenant) }), { ok: true, checked: tenant === 0 ? 17 : tenant === 1 ? 17 : 16 });
  await log.close();
  const reopened = await Log.open(dir, { cluster: CLUSTER, segmentBytes: limits.segmentBytesMin });
  t.equal(reopened.head().position, 50);
  t.same(await reopened.verify(), { ok: true, checked: 50 });
  await reopened.truncateAfter(position(0));
  t.equal(reopened.head().position, 0);
  t.ok(checksumEqual(reopened.head().hash, CHECKSUM_ZERO));
  await reopened.append(makeRecords(1, specs.slice(0, 3)));
  t.same(await reopened.verify(), { ok: true, checked: 3 });
  await reopened.close();
});

t.test('random interleavings of tenants give per-tenant chains that verify on their own', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 150 }), async (tenants) => {
    const dir = await mkdtemp(join(tmpdir(), 'veritydb-tenants-'));
    try {
      const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: limits.segmentBytesMin });
      await log.append(makeRecords(1, tenants.map((tenant) => ({ tenant, bodyBytes: 40 }))));
      for (const tenant of new Set(tenants)) {
        const expected = tenants.filter((x) => x === tenant).length;
        const result = await log.verify({ tenant: tenantId(tenant) });
        if (!result.ok || result.checked !== expected) return false;
        // Walk the chain by hand: each link names the previous record of the same tenant.
        let at = log.tenantHead(tenantId(tenant))?.position ?? 0;
        let walked = 0;
        while (at > 0) {
          const record = await log.read(position(at));
          if (record === undefined || record.tenant !== tenant) return false;
          walked++;
          at = record.tenantPrevPosition;
        }
        if (walked !== expected) return false;
      }
      const middle = Math.ceil(tenants.length / 2);
      const partial = await log.verify({ from: middle, to: tenants.length });
      await log.close();
      return partial.ok && partial.checked === tenants.length - middle + 1;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }), { seed, numRuns: 20 });
  t.pass('tenant chains verify');
});

t.test('verify reports progress and the tenant chain catches a forged link', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  const rng = new Prng(seed);
  const specs = Array.from({ length: 9000 }, () => ({ tenant: rng.int(3), bodyBytes: rng.int(64) }));
  await log.append(makeRecords(1, specs.slice(0, 8000)));
  await log.append(makeRecords(8001, specs.slice(8000)));
  const progress: number[] = [];
  const result = await log.verify({}, (checked, total) => {
    t.equal(total, 9000);
    progress.push(checked);
  });
  t.same(result, { ok: true, checked: 9000 });
  t.same(progress, [4096, 8192, 9000]);
  t.equal(checksumHex(log.head().hash).length, 64);
  await log.close();
});

t.test('verify names a forged tenant link; the global chain alone does not catch it', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  const specs = [0, 1, 0, 1, 0].map((tenant) => ({ tenant, bodyBytes: 10 }));
  await log.append(makeRecords(1, specs));
  const head = log.head();
  const tenantHead = log.tenantHead(tenantId(1));
  await log.close();
  // Forge record 6 of tenant 1: correct global link, wrong tenant link.
  const { bytes } = encodeRecord(makeRecord(6, { tenant: 1, bodyBytes: 10 }), {
    cluster: CLUSTER, tenantPrevPosition: position(tenantHead?.position ?? 0), prevHash: head.hash, tenantPrevHash: CHECKSUM_ZERO,
  });
  const { appendFile, stat } = await import('node:fs/promises');
  const { encodeIndexSlotInto, INDEX_SLOT_BYTES } = await import('../src/segment-index.js');
  const segmentPath = join(dir, 'log', '00000000.segment');
  const slot = new Uint8Array(INDEX_SLOT_BYTES);
  encodeIndexSlotInto(slot, 0, (await stat(segmentPath)).size, bytes, 0, bytes.length);
  await appendFile(segmentPath, bytes);
  await appendFile(join(dir, 'log', '00000000.index'), slot);
  const forged = await Log.open(dir, { cluster: CLUSTER });
  t.equal(forged.head().position, 6, 'the forged record is well-formed, so open keeps it');
  const all = await forged.verify();
  t.match(all, { ok: false, position: 6, reason: 'tenant-chain' });
  t.match(await forged.verify({ tenant: tenantId(1) }), { ok: false, position: 6, reason: 'tenant-chain' });
  t.same(await forged.verify({ tenant: tenantId(0) }), { ok: true, checked: 3 });
  t.same(await forged.verify({ to: 5 }), { ok: true, checked: 5 });
  await forged.close();
});

t.test('a log directory is opened by one Log at a time; a dead holder\'s lock is taken over', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open(dir, { cluster: CLUSTER });
  await t.rejects(Log.open(dir, { cluster: CLUSTER }), { code: 'LogLocked' });
  await log.close();
  const { writeFile: write } = await import('node:fs/promises');
  // A pid that cannot be alive (beyond the kernel's pid_max).
  await write(join(dir, 'log', 'LOCK'), '2147483646\n');
  const again = await Log.open(dir, { cluster: CLUSTER });
  t.equal(again.head().position, 0);
  await again.close();
  await write(join(dir, 'log', 'LOCK'), `${process.ppid}\n`);
  await t.rejects(Log.open(dir, { cluster: CLUSTER }), { code: 'LogLocked', message: new RegExp(`process ${process.ppid}`) });
});
