import t from 'tap';
import fc from 'fast-check';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { Prng, limits, seedFrom } from '@veritydb/types';
import { SUPERBLOCK_COPY_BYTES, Superblock, decodeSuperblockCopy, encodeSuperblockCopy } from '../src/index.js';
import { tempDir } from './helpers.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
await initCrypto();
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

t.test('superblock copies: round trip, and any bit flip invalidates a copy', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.nat(), (payload, sequence, flip) => {
    const file = new Uint8Array(SUPERBLOCK_COPY_BYTES * 2);
    file.set(encodeSuperblockCopy(1, sequence, payload), SUPERBLOCK_COPY_BYTES);
    const decoded = decodeSuperblockCopy(file, 1);
    if (typeof decoded === 'string' || decoded.sequence !== sequence || Buffer.compare(decoded.payload, payload) !== 0) return false;
    if (typeof decodeSuperblockCopy(file, 0) !== 'string') return false;
    const bit = flip % ((56 + payload.length) * 8);
    file[SUPERBLOCK_COPY_BYTES + (bit >>> 3)] = (file[SUPERBLOCK_COPY_BYTES + (bit >>> 3)] as number) ^ (1 << (bit & 7));
    return typeof decodeSuperblockCopy(file, 1) === 'string';
  }), { seed, numRuns: 300 });
  // A copy written into another copy's region is a misdirected write.
  const file = new Uint8Array(SUPERBLOCK_COPY_BYTES * 2);
  file.set(encodeSuperblockCopy(0, 3, text('x')), SUPERBLOCK_COPY_BYTES);
  t.match(decodeSuperblockCopy(file, 1), /misdirected/);
});

t.test('create, write in turn, reopen with the newest state', async (t) => {
  const dir = await tempDir(t, 'superblock');
  const path = join(dir, 'superblock');
  await t.rejects(Superblock.open(path), { code: 'SuperblockMissing', message: new RegExp(path) });
  const sb = await Superblock.create(path, text('state 1'));
  t.equal(sb.sequence, 1);
  await t.rejects(Superblock.create(path, text('again')), { code: 'SuperblockExists' });
  await Promise.all([sb.write(text('state 2')), sb.write(text('state 3'))]);
  t.equal(sb.sequence, 3, 'concurrent writes are serialised');
  await sb.close();
  const again = await Superblock.open(path);
  t.equal(decode(again.payload), 'state 3');
  t.equal(again.sequence, 3);
  t.same(again.badCopies, []);
  await again.close();
});

t.test('a torn or corrupt copy still opens with the newest good state', async (t) => {
  const dir = await tempDir(t, 'superblock');
  const path = join(dir, 'superblock');
  const sb = await Superblock.create(path, text('old'));
  await sb.write(text('newest'));
  await sb.close();
  const rng = new Prng(seed);
  const good = await readFile(path);
  for (let copy = 0; copy < limits.superblockCopies; copy++) {
    // Corrupt one random byte of one copy.
    const damaged = Buffer.from(good);
    const at = copy * SUPERBLOCK_COPY_BYTES + rng.int(56 + 6);
    damaged[at] = (damaged[at] as number) ^ (1 + rng.int(255));
    await writeFile(path, damaged);
    const opened = await Superblock.open(path);
    t.equal(decode(opened.payload), 'newest', `copy ${copy} corrupt`);
    t.same(opened.badCopies.map((b) => b.copy), [copy]);
    await opened.close();
  }
  // A torn write of the next state: copy 0 half new (garbage tail), the rest old.
  const torn = Buffer.from(good);
  const next = encodeSuperblockCopy(0, 3, text('never acknowledged'));
  torn.set(next.subarray(0, next.length >> 1), 0);
  await writeFile(path, torn);
  const afterTear = await Superblock.open(path);
  t.equal(decode(afterTear.payload), 'newest', 'torn copy skipped');
  t.equal(afterTear.sequence, 2);
  // The next write rewrites every copy, including the torn one.
  await afterTear.write(text('after repair'));
  await afterTear.close();
  const repaired = await Superblock.open(path);
  t.same(repaired.badCopies, []);
  t.equal(decode(repaired.payload), 'after repair');
  await repaired.close();
  // A crash part-way through a write: copies 0-1 new, 2-3 old, picks the new one.
  const half = Buffer.from(await readFile(path));
  for (const copy of [0, 1]) half.set(encodeSuperblockCopy(copy, 5, text('half written')), copy * SUPERBLOCK_COPY_BYTES);
  await writeFile(path, half);
  const halfOpened = await Superblock.open(path);
  t.equal(decode(halfOpened.payload), 'half written');
  await halfOpened.close();
});

t.test('all copies bad: refuses with an error naming the file', async (t) => {
  const dir = await tempDir(t, 'superblock');
  const path = join(dir, 'superblock');
  const sb = await Superblock.create(path, text('state'));
  await sb.close();
  const bytes = await readFile(path);
  for (let copy = 0; copy < limits.superblockCopies; copy++) bytes.writeUInt8(bytes.readUInt8(copy * SUPERBLOCK_COPY_BYTES + 30) ^ 0x40, copy * SUPERBLOCK_COPY_BYTES + 30);
  await writeFile(path, bytes);
  await t.rejects(Superblock.open(path), { code: 'SuperblockCorrupt', message: new RegExp(`${path}.*none of its ${limits.superblockCopies} copies is valid`) });
  await writeFile(path, new Uint8Array(10));
  await t.rejects(Superblock.open(path), { code: 'SuperblockCorrupt', message: /cut short/ });
});
