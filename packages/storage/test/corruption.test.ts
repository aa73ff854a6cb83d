import t, { type Test } from 'tap';
import { copyFile, mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { Prng, isVerityError, limits, position, seedFrom, tenantId, VerityError } from '@veritydb/types';
import { Log, INDEX_HEADER_BYTES, INDEX_SLOT_BYTES, type VerifyResult } from '../src/index.js';
import { encodeIndexSlotInto } from '../src/segment-index.js';
import { CLUSTER, makeRecords, tempDir } from './helpers.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
await initCrypto();

const SEGMENT_BYTES = limits.segmentBytesMin;

/** Where each record lives: file name, byte range, and the bytes of its frame. */
interface Extent {
  readonly position: number;
  readonly segment: string;
  readonly index: string;
  readonly offset: number;
  readonly frameBytes: number;
  readonly slotOffset: number;
}

async function buildTemplate(dir: string, records: number, rng: Prng): Promise<Extent[]> {
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
  const specs = Array.from({ length: records }, () => ({ tenant: rng.int(3), bodyBytes: rng.int(300) }));
  await log.append(makeRecords(1, specs.slice(0, records >> 1)));
  await log.append(makeRecords((records >> 1) + 1, specs.slice(records >> 1)));
  await log.close();
  const extents: Extent[] = [];
  const names = (await readdir(join(dir, 'log'))).filter((n) => n.endsWith('.segment')).sort();
  let at = 1;
  for (const name of names) {
    const index = name.replace('.segment', '.index');
    const indexBytes = await readFile(join(dir, 'log', index));
    const slots = (indexBytes.length - INDEX_HEADER_BYTES) / INDEX_SLOT_BYTES;
    for (let i = 0; i < slots; i++) {
      const slotOffset = INDEX_HEADER_BYTES + i * INDEX_SLOT_BYTES;
      extents.push({
        position: at++, segment: name, index, offset: indexBytes.readUInt32LE(slotOffset),
        frameBytes: indexBytes.readUInt32LE(slotOffset + 4), slotOffset,
      });
    }
  }
  return extents;
}

async function copyLog(from: string, to: string): Promise<void> {
  await mkdir(join(to, 'log'), { recursive: true });
  for (const name of await readdir(join(from, 'log'))) await copyFile(join(from, 'log', name), join(to, 'log', name));
}

async function flipBit(file: string, bit: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[bit >>> 3] = (bytes[bit >>> 3] as number) ^ (1 << (bit & 7));
  await writeFile(file, bytes);
}

t.test('flipping any single bit in a segment or index file is detected, and repair restores the record', async (t) => {
  const root = await tempDir(t, 'bitflip');
  const template = join(root, 'template');
  const rng = new Prng(seed);
  const extents = await buildTemplate(template, 48, rng);
  const last = extents[extents.length - 1] as Extent;
  const files = (await readdir(join(template, 'log'))).sort();
  t.ok(files.length >= 6, `${files.length} files`);
  const sizes = await Promise.all(files.map(async (name) => (await readFile(join(template, 'log', name))).length));
  const totalBits = sizes.reduce((a, b) => a + b, 0) * 8;
  const flips = 160;
  const outcomes = { openFailed: 0, openReported: 0, verify: 0, repaired: 0 };
  for (let k = 0; k < flips; k++) {
    let bit = rng.int(totalBits);
    let f = 0;
    while (bit >= (sizes[f] as number) * 8) bit -= (sizes[f++] as number) * 8;
    const name = files[f] as string;
    const byte = bit >>> 3;
    const dir = join(root, `flip-${k}`);
    await copyLog(template, dir);
    await flipBit(join(dir, 'log', name), bit);
    const where = name.endsWith('.segment')
      ? extents.find((e) => e.segment === name && byte >= e.offset && byte < e.offset + e.frameBytes)
      : extents.find((e) => e.index === name && byte >= e.slotOffset && byte < e.slotOffset + INDEX_SLOT_BYTES);
    const label = `flip ${k}: ${name} byte ${byte} (position ${where?.position ?? 'header'})`;
    let log: Log;
    try {
      log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
    } catch (error) {
      if (!(error instanceof VerityError)) throw error;
      outcomes.openFailed++;
      if (!String(error.message).includes(name) && !String(error.message).includes(name.replace(/\.(segment|index)$/, ''))) {
        t.fail(`${label}: open error does not name the file: ${error.message}`);
      }
      if (where !== undefined && error.details['position'] !== where.position) {
        t.fail(`${label}: open blamed position ${String(error.details['position'])}`);
      }
      if (where !== undefined) await repairFrom(t, template, dir, where, label) && outcomes.repaired++;
      else if (await reopenReported(t, dir, label)) outcomes.repaired++;
      continue;
    }
    const report = log.recovery;
    if (report.truncated !== undefined || report.indexSlotsRebuilt > 0 || report.faulty.length > 0) {
      outcomes.openReported++;
      const cut = report.truncated?.position;
      if (cut !== undefined && cut !== last.position) t.fail(`${label}: open cut position ${cut}, not the last record`);
      await log.close();
      continue;
    }
    const result: VerifyResult = await log.verify();
    if (result.ok) {
      await log.close();
      t.fail(`${label}: not detected`);
      continue;
    }
    outcomes.verify++;
    if (where !== undefined && result.position !== where.position) t.fail(`${label}: verify blamed ${result.position} (${result.reason})`);
    if (where !== undefined && name.endsWith('.segment')) {
      // A damaged record in a sealed segment: repair it in place from a good copy.
      const original = (await readFile(join(template, 'log', where.segment))).subarray(where.offset, where.offset + where.frameBytes);
      await log.repair(position(where.position), original);
      const after = await log.verify();
      if (!after.ok) t.fail(`${label}: after repair verify says ${JSON.stringify(after)}`);
      else outcomes.repaired++;
    }
    await log.close();
  }
  t.comment(`outcomes ${JSON.stringify(outcomes)}`);
  t.equal(outcomes.openFailed + outcomes.openReported + outcomes.verify, flips, 'every flip detected');
  t.ok(outcomes.verify > 0 && outcomes.openFailed > 0, 'both detection paths exercised');
});

/** Damage outside any record (an index file header): report mode rebuilds it. */
async function reopenReported(t: Test, dir: string, label: string): Promise<boolean> {
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES, faults: 'report' });
  const rebuilt = log.recovery.indexHeadersRebuilt.length;
  const result = await log.verify();
  await log.close();
  if (rebuilt !== 1 || !result.ok) t.fail(`${label}: report mode rebuilt ${rebuilt} index headers, verify ${JSON.stringify(result)}`);
  return rebuilt === 1 && result.ok;
}

/** Opens in report mode and repairs the damaged record with the template's bytes. */
async function repairFrom(t: Test, template: string, dir: string, where: Extent, label: string): Promise<boolean> {
  const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES, faults: 'report' }).catch((error: unknown) => {
    if (isVerityError(error)) return undefined;
    throw error;
  });
  if (log === undefined) {
    t.fail(`${label}: report mode cannot open`);
    return false;
  }
  const faulty = log.faulty().map((f) => f.position);
  if (faulty.length > 0) {
    const original = (await readFile(join(template, 'log', where.segment))).subarray(where.offset, where.offset + where.frameBytes);
    await t.rejects(log.read(position(where.position)), { code: 'FaultyRecord' }, `${label}: faulty record is not served`);
    const wrong = Uint8Array.from(original);
    wrong[wrong.length - 1] = (wrong[wrong.length - 1] as number) ^ 1;
    await t.rejects(log.repair(position(where.position), wrong), { code: 'RepairRejected' }, `${label}: a bad repair is refused`);
    await log.repair(position(where.position), original);
  }
  const result = await log.verify();
  await log.close();
  if (!result.ok) {
    t.fail(`${label}: after repair verify says ${JSON.stringify(result)}`);
    return false;
  }
  const clean = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
  await clean.close();
  return true;
}

t.test('truncating the last record at every byte offset keeps exactly the records before it', async (t) => {
  const root = await tempDir(t, 'torn');
  const template = join(root, 'template');
  const extents = await buildTemplate(template, 6, new Prng(seed + 1));
  const last = extents[extents.length - 1] as Extent;
  t.equal(last.segment, '00000000.segment', 'one segment');
  for (let cut = 0; cut < last.frameBytes; cut++) {
    const dir = join(root, `cut-${cut}`);
    await copyLog(template, dir);
    await truncate(join(dir, 'log', last.segment), last.offset + cut);
    const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
    const ok = log.head().position === last.position - 1
      && (cut === 0 ? log.recovery.truncated === undefined : log.recovery.truncated?.position === last.position && log.recovery.truncated.bytes === cut);
    if (!ok) t.fail(`cut ${cut}: head ${log.head().position}, recovery ${JSON.stringify(log.recovery.truncated)}`);
    const verified = await log.verify();
    if (!verified.ok || verified.checked !== last.position - 1) t.fail(`cut ${cut}: verify ${JSON.stringify(verified)}`);
    // The log accepts the position again and the index was trimmed with the segment (checked on
    // a sample of cut points: each costs an fdatasync).
    if (cut % 8 === 0) {
      await log.append(makeRecords(last.position, [{ tenant: 2, bodyBytes: 5 }]));
      if (!(await log.verify()).ok) t.fail(`cut ${cut}: append after recovery does not verify`);
    }
    await log.close();
  }
  t.pass(`${last.frameBytes} cut points`);
});

t.test('an index that lost its tail is rebuilt from the segment and reported', async (t) => {
  const root = await tempDir(t, 'index-tail');
  const template = join(root, 'template');
  const extents = await buildTemplate(template, 5, new Prng(seed + 2));
  const last = extents[extents.length - 1] as Extent;
  for (const cut of [0, 1, INDEX_SLOT_BYTES - 1, INDEX_SLOT_BYTES + 17]) {
    const dir = join(root, `cut-${cut}`);
    await copyLog(template, dir);
    await truncate(join(dir, 'log', last.index), last.slotOffset + INDEX_SLOT_BYTES - Math.min(cut, INDEX_SLOT_BYTES) - (cut > INDEX_SLOT_BYTES ? INDEX_SLOT_BYTES : 0));
    const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
    t.equal(log.head().position, last.position, `cut ${cut}: every record kept`);
    t.equal(log.recovery.indexSlotsRebuilt, cut === 0 ? 0 : cut > INDEX_SLOT_BYTES ? 2 : 1, `cut ${cut}: rebuilt slots reported`);
    t.same(await log.verify(), { ok: true, checked: last.position });
    await log.close();
  }
});

t.test('index and segment disagreeing is detected', async (t) => {
  const root = await tempDir(t, 'mismatch');
  const template = join(root, 'template');
  const extents = await buildTemplate(template, 30, new Prng(seed + 3));
  const first = extents[0] as Extent;
  const second = extents[1] as Extent;
  // Swap two valid slots of a sealed segment: each slot's CRC holds, the content disagrees.
  const dir = join(root, 'swap');
  await copyLog(template, dir);
  const indexPath = join(dir, 'log', first.index);
  const bytes = await readFile(indexPath);
  const a = Buffer.from(bytes.subarray(first.slotOffset, first.slotOffset + INDEX_SLOT_BYTES));
  bytes.copy(bytes, first.slotOffset, second.slotOffset, second.slotOffset + INDEX_SLOT_BYTES);
  a.copy(bytes, second.slotOffset);
  await writeFile(indexPath, bytes);
  await t.rejects(Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES }), { code: 'IndexMismatch' });
  const reported = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES, faults: 'report' });
  t.same(reported.recovery.indexRepairs, [1, 2], 'report mode rebuilds both slots from the verified records');
  t.same(await reported.verify(), { ok: true, checked: 30 });
  await reported.close();
  // A segment missing from the middle is refused by name.
  const gap = join(root, 'gap');
  await copyLog(template, gap);
  const { rm } = await import('node:fs/promises');
  await rm(join(gap, 'log', '00000001.segment'));
  await t.rejects(Log.open(gap, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES }), { code: 'MissingSegment', message: /00000001\.segment/ });
  // Another cluster's log is refused.
  await t.rejects(Log.open(template, { cluster: (CLUSTER + 1n) as typeof CLUSTER, segmentBytes: SEGMENT_BYTES }), { code: 'ClusterMismatch' });
  // read() checks the index slot's CRC, and its header copy against the record.
  const swapped = join(root, 'swap-read');
  await copyLog(template, swapped);
  const log = await Log.open(swapped, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
  const sealedIndex = join(swapped, 'log', first.index);
  const original = await readFile(sealedIndex);
  const flipped = Buffer.from(original);
  flipped.writeUInt8(flipped.readUInt8(first.slotOffset + 8 + 72) ^ 0x10, first.slotOffset + 8 + 72);
  await writeFile(sealedIndex, flipped);
  await t.rejects(log.read(position(1)), { code: 'CorruptIndex' });
  t.match(await log.verify(), { ok: false, position: 1, reason: 'index' });
  // A slot with a valid CRC whose header copy differs (a misdirected index write).
  const segmentBytes = await readFile(join(swapped, 'log', first.segment));
  const frame = Uint8Array.from(segmentBytes.subarray(first.offset, first.offset + first.frameBytes));
  frame[8 + 72] = (frame[8 + 72] as number) ^ 0x10;
  const forgedSlot = new Uint8Array(INDEX_SLOT_BYTES);
  encodeIndexSlotInto(forgedSlot, 0, first.offset, frame, 0, frame.length);
  const misdirected = Buffer.from(original);
  misdirected.set(forgedSlot, first.slotOffset);
  await writeFile(sealedIndex, misdirected);
  await t.rejects(log.read(position(1)), { code: 'IndexMismatch' });
  t.match(await log.verify({ from: 1, to: 3 }), { ok: false, position: 1, reason: 'index' });
  t.match(await log.verify({ tenant: tenantId(extentsTenant(segmentBytes, first)) }), { ok: false, reason: 'index' });
  await log.close();
});

/** The tenant of the record at `extent` (header offset 72 of the frame). */
function extentsTenant(segmentBytes: Buffer, extent: Extent): number {
  return Number(segmentBytes.readBigUInt64LE(extent.offset + 8 + 72));
}
