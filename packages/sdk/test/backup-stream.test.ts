import t from 'tap';
import { blake3, initCrypto } from '@veritydb/crypto';
import type { BackupDone, BackupFileChunk } from '@veritydb/client';
import type { ClusterId, Position } from '@veritydb/types';
import { checkedBackup, type BackupPart } from '../src/backup.js';

/** `checkedBackup`: what `Verity.backup` yields from a server's stream, and every way it refuses one. */
await initCrypto();
type Wire = { kind: 'backupFile'; file: BackupFileChunk } | { kind: 'backupDone'; done: BackupDone };

const a = new Uint8Array([1, 2, 3, 4, 5]);
const chunk = (path: string, whole: Uint8Array, offset: number, length: number, hash: Uint8Array | null = null): Wire => {
  const last = offset + length === whole.length;
  return { kind: 'backupFile', file: { path, mode: 0o600, bytes: whole.length, offset, data: whole.subarray(offset, offset + length), blake3: last ? hash ?? blake3(whole) : null } };
};
const done = (files: number, bytes: number): Wire => ({
  kind: 'backupDone', done: { clusterId: 0x2an as ClusterId, position: 9 as Position, stateHash: new Uint8Array(32).fill(1), files, bytes },
});

async function collect(parts: Wire[]): Promise<BackupPart[]> {
  const out: BackupPart[] = [];
  async function* source(): AsyncGenerator<Wire> { yield* parts; }
  for await (const part of checkedBackup(source())) out.push(part);
  return out;
}

t.test('a whole stream passes through, hashes named on each file\'s last chunk', async (t) => {
  const parts = await collect([chunk('a', a, 0, 2), chunk('a', a, 2, 3), chunk('empty', new Uint8Array(0), 0, 0), done(2, 5)]);
  t.same(parts.map((p) => p.kind === 'data' ? [p.path, p.offset, p.blake3 !== null] : [p.kind, p.position, p.cluster]),
    [['a', 0, false], ['a', 2, true], ['empty', 0, true], ['done', 9, '0x2a']]);
  const last = parts[3];
  t.equal(last?.kind === 'done' ? last.stateHash : '', '01'.repeat(32));
});

t.test('a damaged stream fails with DamagedBackup', async (t) => {
  const cases: [string, Wire[]][] = [
    ['bytes that do not hash to the named BLAKE3', [chunk('a', a, 0, 5, new Uint8Array(32)), done(1, 5)]],
    ['a gap inside a file', [chunk('a', a, 0, 2), chunk('a', a, 3, 2), done(1, 5)]],
    ['a file that starts past 0', [chunk('a', a, 2, 3), done(1, 5)]],
    ['another file before one is complete', [chunk('a', a, 0, 2), chunk('b', a, 0, 5), done(2, 10)]],
    ['a path twice', [chunk('a', a, 0, 5), chunk('a', a, 0, 5), done(2, 10)]],
    ['a summary that counts otherwise', [chunk('a', a, 0, 5), done(2, 5)]],
    ['the summary inside a file', [chunk('a', a, 0, 2), done(0, 0)]],
    ['no summary', [chunk('a', a, 0, 5)]],
  ];
  for (const [what, parts] of cases) await t.rejects(collect(parts), { code: 'DamagedBackup' }, what);
});
