import { chmod, mkdir, open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { Verity } from 'veritydb';
import { blake3 } from '@veritydb/crypto';
import { BACKUP_SKIPPED } from '@veritydb/runtime';
import { syncDirectory, writeFully } from '@veritydb/storage';
import { checksumHex, VerityError } from '@veritydb/types';
import { EXIT_OK, required, UsageError, withDb, type Flags, type Io, type Target } from './command.js';
import { clusterOf, inUse, writeAtomically } from './export.js';

/**
 * `backup --out DIR` and `restore --from DIR --data-dir DIR2`. An embedded backup is taken with
 * the data dir opened the way `Verity.open` opens it — its lock held, so no server or other
 * process writes meanwhile — after a fresh checkpoint, and records the state hash and position
 * it saw. A remote one (`--addresses`) is the server's consistent cut taken while it serves (a
 * checkpoint, the log up to its position, its other files: `Verity.backup`), written as it
 * arrives. Either way the layout is:
 *
 *   DIR/data/…          every file of the data dir except lock and temp files, modes kept
 *   DIR/MANIFEST.json   written last: format, version, cluster, position, stateHash, and per
 *                       file its path, bytes, mode and BLAKE3-256
 *
 * Restore checks every file against the manifest before writing anything, refuses a non-empty
 * target, copies, then opens the result and requires the same state hash and position.
 */
export const MANIFEST_FILE = 'MANIFEST.json';
const DATA_DIR = 'data';

export interface BackupManifest {
  readonly format: 'veritydb-backup';
  readonly version: 1;
  readonly createdAt: string;
  readonly cluster: string;
  /** The last applied position in the backup. */
  readonly position: number;
  /** Hex BLAKE3-256 of the whole state (`Verity.stateHash`). */
  readonly stateHash: string;
  readonly files: readonly BackupFile[];
}

export interface BackupFile {
  /** Relative to the data dir, '/'-separated. */
  readonly path: string;
  readonly bytes: number;
  readonly mode: number;
  readonly blake3: string;
}

export async function backupCommand(target: Target, values: Flags, json: boolean, io: Io): Promise<number> {
  const out = required(values.out, '--out');
  const manifest = target.addresses === null ? await backup(target.dataDir, out) : await withDb(target, (db) => backupRemote(db, out));
  const source = target.addresses === null ? target.dataDir : target.addresses.join(',');
  io.stdout(json
    ? `${JSON.stringify({ out, position: manifest.position, stateHash: manifest.stateHash, files: manifest.files.length, bytes: totalBytes(manifest) })}\n`
    : `backed up ${source} at position ${manifest.position} (state ${manifest.stateHash}): ${manifest.files.length} file(s), ${totalBytes(manifest)} bytes -> ${out}\n`);
  return EXIT_OK;
}

export async function restoreCommand(values: Flags, json: boolean, io: Io): Promise<number> {
  const from = required(values.from, '--from');
  if (values['data-dir'] === undefined) throw new UsageError('restore needs --data-dir DIR (the new, empty data dir)');
  if (values.addresses !== undefined) throw new UsageError('restore is embedded only: it writes a data dir');
  const dataDir = values['data-dir'];
  const manifest = await restore(from, dataDir);
  io.stdout(json
    ? `${JSON.stringify({ dataDir, position: manifest.position, stateHash: manifest.stateHash, files: manifest.files.length })}\n`
    : `restored ${from} into ${dataDir}: position ${manifest.position}, state ${manifest.stateHash} verified\n`);
  return EXIT_OK;
}

/** Takes a consistent backup of `dataDir` into the new or empty directory `out`. */
export async function backup(dataDir: string, out: string): Promise<BackupManifest> {
  const cluster = await clusterOf(dataDir);
  await requireEmpty(out, '--out');
  const db = await Verity.open(dataDir).catch((error: unknown) => { throw inUse(error, dataDir); });
  try {
    await db.checkpoint();
    const position = db.position;
    const stateHash = db.stateHash();
    const files: BackupFile[] = [];
    for (const path of await listFiles(dataDir)) {
      if (BACKUP_SKIPPED.test(path)) continue; // lock files are their holder's, temp files a write's in progress
      const bytes = await readFile(join(dataDir, path));
      const mode = (await stat(join(dataDir, path))).mode & 0o777;
      await writeFileDurably(join(out, DATA_DIR, path), bytes, mode);
      files.push({ path, bytes: bytes.length, mode, blake3: checksumHex(blake3(bytes)) });
    }
    return await writeManifest(out, { cluster: `0x${cluster.toString(16)}`, position, stateHash, files });
  } finally {
    await db.close();
  }
}

/**
 * Writes the backup `db` (a server) streams into the new or empty directory `out`: each file
 * under DIR/data as it arrives (its BLAKE3 already checked by the SDK), fsynced with its mode,
 * then every directory written to, then the manifest last. A backup that breaks off leaves no
 * manifest, which restore refuses.
 */
export async function backupRemote(db: Verity, out: string): Promise<BackupManifest> {
  await requireEmpty(out, '--out');
  const root = resolve(out, DATA_DIR);
  const directories = new Set<string>([resolve(out), root]);
  const files: BackupFile[] = [];
  let writing: { readonly file: FileHandle; readonly path: string } | null = null;
  try {
    for await (const part of db.backup()) {
      if (part.kind === 'done') {
        for (const directory of directories) await syncDirectory(directory);
        return await writeManifest(out, { cluster: part.cluster, position: part.position, stateHash: part.stateHash, files });
      }
      const path = resolve(root, part.path);
      if (!path.startsWith(`${root}${sep}`)) throw new VerityError('DamagedBackup', `the server sent a file outside the data dir: ${part.path}`);
      if (part.offset === 0) {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        for (let dir = dirname(path); dir !== root && dir.startsWith(root); dir = dirname(dir)) directories.add(dir);
        writing = { file: await open(path, 'wx', part.mode), path };
      }
      const current = writing as { readonly file: FileHandle; readonly path: string };
      await writeFully(current.file, part.data, part.offset);
      if (part.blake3 === null) continue;
      writing = null;
      await current.file.sync();
      await current.file.close();
      await chmod(path, part.mode);
      files.push({ path: part.path, bytes: part.bytes, mode: part.mode, blake3: part.blake3 });
    }
  } finally {
    await writing?.file.close();
  }
  throw new VerityError('DamagedBackup', 'the backup stream ended without its summary');
}

/** Restores a backup into `dataDir` (new or empty) and proves the state is the one backed up. */
export async function restore(from: string, dataDir: string): Promise<BackupManifest> {
  const manifest = parseManifest(await readFile(join(from, MANIFEST_FILE), 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new VerityError('NotABackup', `${from} holds no ${MANIFEST_FILE}: not a backup, or one that did not finish`);
    throw error;
  }), from);
  const contents = new Map<string, Buffer>();
  for (const file of manifest.files) {
    const bytes = await readFile(join(from, DATA_DIR, file.path)).catch(() => null);
    if (bytes === null) throw new VerityError('DamagedBackup', `${from}: ${file.path} is missing`);
    if (bytes.length !== file.bytes || checksumHex(blake3(bytes)) !== file.blake3) {
      throw new VerityError('DamagedBackup', `${from}: ${file.path} does not match the manifest (${bytes.length === file.bytes ? 'hash' : 'size'} differs): the backup is damaged`);
    }
    contents.set(file.path, bytes);
  }
  await requireEmpty(dataDir, '--data-dir');
  for (const file of manifest.files) await writeFileDurably(join(dataDir, file.path), contents.get(file.path) as Buffer, file.mode);
  const db = await Verity.open(dataDir);
  try {
    const stateHash = db.stateHash();
    if (stateHash !== manifest.stateHash || db.position !== manifest.position) {
      throw new VerityError('RestoreMismatch', `${dataDir} opened at position ${db.position} with state ${stateHash}, the backup recorded position ${manifest.position} with state ${manifest.stateHash}`);
    }
  } finally {
    await db.close();
  }
  return manifest;
}

/** Writes the manifest last (the backup exists once it does), atomically. */
async function writeManifest(out: string, fields: Pick<BackupManifest, 'cluster' | 'position' | 'stateHash' | 'files'>): Promise<BackupManifest> {
  const manifest: BackupManifest = { format: 'veritydb-backup', version: 1, createdAt: new Date().toISOString(), ...fields };
  await writeAtomically(join(out, MANIFEST_FILE), (write) => write(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)));
  return manifest;
}

function totalBytes(manifest: BackupManifest): number {
  return manifest.files.reduce((sum, f) => sum + f.bytes, 0);
}

/** The manifest, checked field by field; paths must stay inside the data dir. */
function parseManifest(text: string, from: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new VerityError('DamagedBackup', `${from}/${MANIFEST_FILE} is not JSON`);
  }
  const m = value as Partial<BackupManifest> | null;
  const bad = (why: string): never => { throw new VerityError('DamagedBackup', `${from}/${MANIFEST_FILE}: ${why}`); };
  if (m === null || typeof m !== 'object' || m.format !== 'veritydb-backup') bad('not a VerityDB backup manifest');
  const manifest = m as BackupManifest;
  if (manifest.version !== 1) bad(`unknown backup version ${String(manifest.version)}`);
  if (!Number.isSafeInteger(manifest.position) || manifest.position < 0) bad('position is not a count');
  if (typeof manifest.stateHash !== 'string' || !/^[0-9a-f]{64}$/.test(manifest.stateHash)) bad('stateHash is not 64 hex digits');
  if (!Array.isArray(manifest.files)) bad('files is not a list');
  for (const file of manifest.files) {
    const path = typeof file?.path === 'string' ? file.path : '';
    if (path === '' || isAbsolute(path) || normalize(path) !== path || path.split('/').includes('..')) bad(`file path ${JSON.stringify(file?.path)} leaves the data dir`);
    if (!Number.isSafeInteger(file.bytes) || !Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o777) bad(`${path}: bytes or mode malformed`);
    if (typeof file.blake3 !== 'string' || !/^[0-9a-f]{64}$/.test(file.blake3)) bad(`${path}: blake3 is not 64 hex digits`);
  }
  return manifest;
}

async function requireEmpty(dir: string, flag: string): Promise<void> {
  try {
    const entries = await readdir(dir);
    if (entries.length > 0) throw new VerityError('NotEmpty', `${flag} ${dir} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}): refusing to overwrite anything`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') throw new VerityError('NotEmpty', `${flag} ${dir} is a file`);
    throw error;
  }
}

/** Every file under `dir`, relative and '/'-separated, sorted. Bounded by the tree itself. */
async function listFiles(dir: string, base = dir): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...await listFiles(path, base));
    else if (entry.isFile()) found.push(relative(base, path).split(sep).join('/'));
  }
  return found.sort();
}

/** Writes a file with its mode, fsyncs it and its directory (created as needed). */
async function writeFileDurably(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true, mode: 0o700 });
  const file = await open(path, 'wx', mode);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await chmod(path, mode);
  await syncDirectory(dirname(resolve(path)));
}
