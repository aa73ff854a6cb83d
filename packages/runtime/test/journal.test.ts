import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CHECKSUM_ZERO, clusterId, Prng, seedFrom } from '@veritydb/types';
import { decodeEntry, HEADER_BYTES, makeHeader, type Entry, type Header, type Superblock } from '@veritydb/vsr';
import { Journal, JOURNAL_DIR, JOURNAL_GROW_BYTES } from '../src/index.js';

/**
 * The cluster replica's durable protocol state: journal records (puts, truncates) and the
 * two-copy superblock survive reopen; a torn tail is cut; corruption before the tail becomes a
 * faulty slot, never a silently missing one; the newest intact superblock copy wins.
 */
const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
const cluster = clusterId(0x10_0a_11n);

async function dir(t: Test): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'vdb-journal-'));
  t.teardown(() => rm(path, { recursive: true, force: true }));
  return path;
}

function entry(op: number, parent: Header | null, text: string): Entry {
  const body = new TextEncoder().encode(text);
  const header = makeHeader({
    parent: parent?.checksum ?? CHECKSUM_ZERO, cluster, client: 7n, session: 1, op, timestampUs: 1000 + op, request: op, view: 0, operation: 'normal',
  }, body);
  return { header, body };
}

function chain(count: number): Entry[] {
  const entries: Entry[] = [];
  for (let op = 1; op <= count; op++) entries.push(entry(op, entries[op - 2]?.header ?? null, `op ${op} ${'x'.repeat(op % 7)}`));
  return entries;
}

function superblock(view: number, headers: readonly Header[]): Superblock {
  return { cluster, replica: 1, replicaCount: 3, view, logView: view, commitMax: view, checkpoint: 0, viewHeaders: headers };
}

async function apply(journal: Journal, effects: Parameters<Journal['submit']>[0][]): Promise<void> {
  await Promise.all(effects.map((effect) => new Promise<void>((resolve, reject) => journal.submit(effect, resolve, reject))));
}

t.test('puts, truncates and superblocks survive reopen; the newest superblock wins whatever its size', async (t) => {
  const path = await dir(t);
  const entries = chain(10);
  const first = await Journal.open(path);
  t.equal(first.opened.durable, null, 'a fresh dir has no superblock');
  await first.journal.writeSuperblock(superblock(0, []));
  await apply(first.journal, [
    { kind: 'write_log', writeId: 1, entries: entries.slice(0, 6) },
    { kind: 'write_superblock', writeId: 2, superblock: superblock(3, entries.slice(0, 5).map((e) => e.header)) },
    { kind: 'truncate_log', writeId: 3, afterOp: 4 },
    { kind: 'write_log', writeId: 4, entries: entries.slice(4, 8) },
    { kind: 'write_superblock', writeId: 5, superblock: superblock(4, [entries[0]?.header as Header]) },
    // Copy 0 again, now shorter than the 5-header superblock it overwrites in place.
    { kind: 'write_superblock', writeId: 6, superblock: superblock(5, []) },
  ]);
  await first.journal.close();
  const second = await Journal.open(path);
  const durable = second.opened.durable;
  t.equal(durable?.superblock.view, 5, 'the last superblock (shorter than the copy it overwrote) is read back');
  t.equal(durable?.superblock.viewHeaders.length, 0);
  t.same([...(durable?.slots.keys() ?? [])].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8], 'puts after a truncate replace the cut ops');
  t.same(decodeEntry(durable?.slots.get(8) as Uint8Array)?.header.op, 8);
  await second.journal.close();
});

t.test('a torn tail is cut; a corrupt record before the tail is a faulty slot', async (t) => {
  const path = await dir(t);
  const entries = chain(6);
  const opened = await Journal.open(path);
  await opened.journal.writeSuperblock(superblock(1, []));
  await apply(opened.journal, entries.map((e, i) => ({ kind: 'write_log' as const, writeId: i + 1, entries: [e] })));
  await opened.journal.close();
  const file = join(path, JOURNAL_DIR, 'journal');
  const bytes = await readFile(file);
  const prng = new Prng(seed);
  // Tear the last record at a random byte.
  const recordBytes = (op: number): number => 8 + 9 + HEADER_BYTES + (entries[op - 1] as Entry).body.length;
  t.equal(bytes.length, [1, 2, 3, 4, 5, 6].reduce((n, op) => n + recordBytes(op), 0), 'records are framed as documented');
  const lastLength = recordBytes(6);
  const cut = bytes.length - 1 - prng.int(lastLength - 1);
  await writeFile(file, bytes.subarray(0, cut));
  const torn = await Journal.open(path);
  t.equal(torn.opened.tornBytesCut, cut - (bytes.length - lastLength), 'the torn bytes are reported');
  t.same([...(torn.opened.durable?.slots.keys() ?? [])].sort((a, b) => a - b), [1, 2, 3, 4, 5], 'the torn record is gone');
  await torn.journal.close();
  // Flip a byte inside op 3's entry bytes.
  const damaged = Buffer.from(await readFile(file));
  const offset3 = recordBytes(1) + recordBytes(2) + 8 + 9 + 10;
  damaged[offset3] = (damaged[offset3] as number) ^ 0x40;
  await writeFile(file, damaged);
  const corrupt = await Journal.open(path);
  t.same(corrupt.opened.corruptOps, [3], 'the corrupt record is named by its op');
  t.equal(decodeEntry(corrupt.opened.durable?.slots.get(3) as Uint8Array), undefined, 'and kept as a faulty slot (not a hole)');
  t.ok(decodeEntry(corrupt.opened.durable?.slots.get(4) as Uint8Array), 'records after it are intact');
  await corrupt.journal.close();
});

t.test('a torn superblock copy leaves the other in force; a journal without any superblock is refused', async (t) => {
  const path = await dir(t);
  const opened = await Journal.open(path);
  await opened.journal.writeSuperblock(superblock(1, []));
  await apply(opened.journal, [{ kind: 'write_superblock', writeId: 1, superblock: superblock(2, chain(3).map((e) => e.header)) }]);
  await opened.journal.close();
  // Sequence 2 went to copy 0: tear it.
  const copy = join(path, JOURNAL_DIR, 'superblock.0');
  const bytes = await readFile(copy);
  await writeFile(copy, bytes.subarray(0, bytes.length - 5));
  const reopened = await Journal.open(path);
  t.equal(reopened.opened.durable?.superblock.view, 1, 'the previous copy is used');
  await apply(reopened.journal, [{ kind: 'write_log', writeId: 1, entries: chain(1) }]);
  await reopened.journal.close();
  await writeFile(join(path, JOURNAL_DIR, 'superblock.1'), new Uint8Array(40));
  await t.rejects(Journal.open(path), { code: 'SuperblockMissing' }, 'slots without a superblock: the view is unknown');
});

t.test('the journal grows ahead in zeros: a crash leaves them, open cuts them, and a torn record before them is cut too', async (t) => {
  const path = await dir(t);
  const entries = chain(8);
  const opened = await Journal.open(path);
  await opened.journal.writeSuperblock(superblock(1, []));
  await apply(opened.journal, entries.slice(0, 5).map((e, i) => ({ kind: 'write_log' as const, writeId: i + 1, entries: [e] })));
  await opened.journal.close();
  const file = join(path, JOURNAL_DIR, 'journal');
  const records = await readFile(file);
  t.ok(records.length > 0 && records.length < JOURNAL_GROW_BYTES, 'a clean close trims the unused zeros');

  // What a crash leaves: the records, then zeros grown ahead.
  const zeros = Buffer.alloc(JOURNAL_GROW_BYTES);
  await writeFile(file, Buffer.concat([records, zeros]));
  const crashed = await Journal.open(path);
  t.same([...(crashed.opened.durable?.slots.keys() ?? [])].sort((a, b) => a - b), [1, 2, 3, 4, 5], 'every record is read back');
  t.same(crashed.opened.corruptOps, [], 'the zeros are not corruption');
  t.equal(crashed.opened.tornBytesCut, zeros.length, 'the unused space is cut');
  // Writing again after the cut: the journal grows ahead once more and the new records follow the old.
  await apply(crashed.journal, entries.slice(5).map((e, i) => ({ kind: 'write_log' as const, writeId: i + 1, entries: [e] })));
  const grown = await readFile(file);
  t.ok(grown.length >= records.length + JOURNAL_GROW_BYTES, `the file was grown ahead (${grown.length} bytes)`);
  await crashed.journal.close();
  const reopened = await Journal.open(path);
  t.same([...(reopened.opened.durable?.slots.keys() ?? [])].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8], 'records written into grown space survive');
  await reopened.journal.close();

  // A record torn in the middle of grown space: garbage, then zeros. Never acknowledged (no
  // fdatasync completed for it), so it is cut like a torn last record, not kept as a faulty slot.
  const intact = await readFile(file);
  const prng = new Prng(seed);
  const tornBytes = Buffer.from(Array.from({ length: 20 + prng.int(200) }, () => 1 + prng.int(255)));
  await writeFile(file, Buffer.concat([intact, tornBytes, zeros]));
  const torn = await Journal.open(path);
  t.same(torn.opened.corruptOps, [], 'a torn record before the zeros is not a faulty slot');
  t.equal([...(torn.opened.durable?.slots.keys() ?? [])].length, 8, 'the intact records stay');
  await torn.journal.close();

  // But a corrupt record with intact records after it is still corruption (zeros after them or not).
  const damaged = Buffer.from(await readFile(file));
  const recordBytes = (op: number): number => 8 + 9 + HEADER_BYTES + (entries[op - 1] as Entry).body.length;
  const offset2 = recordBytes(1) + 8 + 9 + 10;
  damaged[offset2] = (damaged[offset2] as number) ^ 0x40;
  await writeFile(file, Buffer.concat([damaged, zeros]));
  const corrupt = await Journal.open(path);
  t.same(corrupt.opened.corruptOps, [2], 'the corrupt record before intact ones is named by its op');
  await corrupt.journal.close();
});
