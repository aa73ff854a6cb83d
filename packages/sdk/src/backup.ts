import type { BackupDone, BackupFileChunk } from '@veritydb/client';
import { createBlake3Hasher, type Blake3Hasher } from '@veritydb/crypto';
import { checksumHex, VerityError } from '@veritydb/types';

/**
 * One part of a backup as `Verity.backup` yields it: the data dir's files one after the other,
 * each as `data` chunks in order from offset 0, then one `done`.
 */
export type BackupPart =
  | {
    readonly kind: 'data';
    /** Relative to the data dir, '/'-separated, never leaving it. */
    readonly path: string;
    /** Permission bits (0..0o777). */
    readonly mode: number;
    /** The whole file's size. */
    readonly bytes: number;
    /** Where `data` goes in the file. */
    readonly offset: number;
    readonly data: Uint8Array;
    /**
     * On the file's last chunk: its BLAKE3-256 (hex), as the server sent it and already checked
     * against the bytes received; null on the other chunks.
     */
    readonly blake3: string | null;
  }
  | {
    readonly kind: 'done';
    /** The cluster the data dir belongs to, as `0x…` hex. */
    readonly cluster: string;
    /** The copy opens at this position… */
    readonly position: number;
    /** …with this state hash (hex BLAKE3-256, what `Verity.stateHash` returns). */
    readonly stateHash: string;
    readonly files: number;
    readonly bytes: number;
  };

type WirePart = { readonly kind: 'backupFile'; readonly file: BackupFileChunk } | { readonly kind: 'backupDone'; readonly done: BackupDone };

interface OpenFile {
  readonly path: string;
  readonly bytes: number;
  readonly hasher: Blake3Hasher;
  received: number;
}

/**
 * The server's backup stream, checked as it passes: every file's chunks contiguous from 0 and
 * its bytes hashing to the BLAKE3 the server names; a file complete before the next begins; no
 * path twice; the summary's counts equal to what arrived; nothing after it, and nothing missing
 * (a stream that ends without a summary fails). Any mismatch throws `DamagedBackup`.
 */
export async function* checkedBackup(parts: AsyncIterable<WirePart>): AsyncGenerator<BackupPart> {
  const damaged = (why: string): never => { throw new VerityError('DamagedBackup', `the server's backup stream is damaged: ${why}`); };
  const seen = new Set<string>();
  let current: OpenFile | null = null;
  let files = 0;
  let bytes = 0;
  for await (const part of parts) {
    if (part.kind === 'backupDone') {
      const done = part.done;
      if (current !== null) damaged(`it ended inside ${current.path} (${current.received} of ${current.bytes} bytes)`);
      if (done.files !== files || done.bytes !== bytes) damaged(`the summary counts ${done.files} files and ${done.bytes} bytes, ${files} and ${bytes} arrived`);
      yield { kind: 'done', cluster: `0x${done.clusterId.toString(16)}`, position: done.position, stateHash: checksumHex(done.stateHash), files, bytes };
      return;
    }
    const chunk = part.file;
    if (current === null) {
      if (chunk.offset !== 0) damaged(`${chunk.path} begins at offset ${chunk.offset}`);
      if (seen.has(chunk.path)) damaged(`${chunk.path} is sent twice`);
      seen.add(chunk.path);
      current = { path: chunk.path, bytes: chunk.bytes, hasher: await createBlake3Hasher(), received: 0 };
    } else if (chunk.path !== current.path || chunk.bytes !== current.bytes || chunk.offset !== current.received) {
      damaged(`${chunk.path} at offset ${chunk.offset} arrived while ${current.path} awaited offset ${current.received}`);
    }
    const file = current as OpenFile;
    file.hasher.update(chunk.data);
    file.received += chunk.data.length;
    let blake3: string | null = null;
    if (chunk.blake3 !== null) {
      const received = checksumHex(file.hasher.digest());
      blake3 = checksumHex(chunk.blake3);
      if (received !== blake3) damaged(`${file.path}: the bytes received hash to ${received}, the server says ${blake3}`);
      files++;
      bytes += file.bytes;
      current = null;
    }
    yield { kind: 'data', path: chunk.path, mode: chunk.mode, bytes: chunk.bytes, offset: chunk.offset, data: chunk.data, blake3 };
  }
  damaged('it ended without its summary');
}
