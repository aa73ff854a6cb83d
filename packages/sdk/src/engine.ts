import { mkdir } from 'node:fs/promises';
import { initCrypto } from '@veritydb/crypto';
import { Log, type VerifyOptions, type VerifyProgress, type VerifyResult } from '@veritydb/storage';
import { encodeEnvelope, Kernel, OPERATION, validateCommand, type ApplyResult, type Envelope } from '@veritydb/kernel';
import {
  assert, CHECKSUM_ZERO, checksum, checksumEqual, clientId, clusterId, limits, position, VerityError, view,
  type Checksum, type Position, type TenantId,
} from '@veritydb/types';
import {
  readCheckpointFile, removeStaleCheckpointTemp, writeCheckpointFile, type CheckpointFile,
} from './checkpoint-file.js';
import { ClosedError, InvalidArgument } from './errors.js';
import { lockDirectory, type DirectoryLock } from './lock.js';
import type { CallProgress } from './options.js';

/**
 * The embedded engine: the same append → apply → read path a replica runs, in-process, as a
 * one-replica cluster (DESIGN §5.7). Writes are appended to the log, acknowledged only once an
 * fdatasync covers them (group commit: concurrent writes share one), applied by the kernel in
 * position order, and their replies handed back. Checkpoints of the whole state are written
 * every `checkpointIntervalEntries` entries and on close; open loads the latest and replays
 * the log after it.
 */
export interface EngineOptions {
  readonly checkpointIntervalEntries: number;
  readonly segmentBytes?: number;
}

/**
 * A checkpoint encodes the whole state synchronously (the store has no incremental
 * checkpoints yet), so its cost grows with the data. Periodic checkpoints therefore also wait
 * until the time since the last one is at least its cost divided by this share: checkpointing
 * never takes more than ~5% of the engine's time, whatever the data size (replay after a crash
 * grows accordingly, and is bounded the same way).
 */
export const CHECKPOINT_TIME_SHARE_MAX = 0.05;

/** The embedded engine is a one-replica cluster with a fixed id. */
export const EMBEDDED_CLUSTER = clusterId(0x5644_4201n);

interface PendingEntry {
  readonly position: Position;
  readonly timestampMicros: number;
  readonly tenant: TenantId;
  readonly hash: Checksum;
  readonly body: Uint8Array;
  readonly resolve: (result: ApplyResult) => void;
  readonly reject: (error: unknown) => void;
}

export class EmbeddedEngine {
  readonly #dir: string;
  readonly #log: Log;
  readonly #kernel: Kernel;
  readonly #lock: DirectoryLock;
  readonly #options: EngineOptions;
  readonly #pending: PendingEntry[] = [];
  #lastTimestampMicros: number;
  #lastAppliedHash: Checksum;
  #checkpointPosition: number;
  /** Checkpoint writes run one at a time (they share a temporary file). */
  #checkpointQueue: Promise<void> = Promise.resolve();
  #checkpointDue = false;
  /** Wall-clock end and duration of the last checkpoint, for `CHECKPOINT_TIME_SHARE_MAX`. */
  #lastCheckpointEndMs = 0;
  #lastCheckpointCostMs = 0;
  #applied = signal();
  #failure: unknown;
  #state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(init: {
    dir: string; log: Log; kernel: Kernel; lock: DirectoryLock; options: EngineOptions; lastHash: Checksum; checkpointPosition: number;
  }) {
    this.#dir = init.dir;
    this.#log = init.log;
    this.#kernel = init.kernel;
    this.#lock = init.lock;
    this.#options = init.options;
    this.#lastAppliedHash = init.lastHash;
    this.#checkpointPosition = init.checkpointPosition;
    this.#lastTimestampMicros = init.kernel.lastTimestampMicros;
  }

  static async open(dir: string, options: EngineOptions): Promise<EmbeddedEngine> {
    assert(Number.isSafeInteger(options.checkpointIntervalEntries) && options.checkpointIntervalEntries >= 1, 'checkpoint interval is a positive integer');
    await mkdir(dir, { recursive: true });
    const lock = await lockDirectory(dir);
    try {
      await initCrypto();
      await removeStaleCheckpointTemp(dir);
      const log = await Log.open(dir, options.segmentBytes === undefined ? { cluster: EMBEDDED_CLUSTER } : { cluster: EMBEDDED_CLUSTER, segmentBytes: options.segmentBytes });
      try {
        const loaded = await loadCheckpoint(dir, log);
        let lastHash = loaded.lastHash;
        const kernel = loaded.kernel;
        for await (const record of log.scan(position(kernel.head + 1))) {
          kernel.apply({ position: record.position, timestampMicros: record.timestamp, tenant: record.tenant, hash: record.hash }, record.body);
          lastHash = record.hash;
        }
        assert(kernel.head === log.head().position, `replay reached ${kernel.head}, log head is ${log.head().position}`);
        log.setCommitted(kernel.head);
        return new EmbeddedEngine({ dir, log, kernel, lock, options, lastHash, checkpointPosition: loaded.position });
      } catch (error) {
        await log.close();
        throw error;
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** The kernel, for reads. Reads are synchronous and see every acknowledged write. */
  get kernel(): Kernel {
    return this.#kernel;
  }

  /** The last applied position. */
  get head(): Position {
    return this.#kernel.head;
  }

  /** The last position handed to the log (applied or about to be). */
  get logHead(): Position {
    return this.#log.head().position;
  }

  /** Open and not failed: usable for reads and writes. */
  get isOpen(): boolean {
    return this.#state === 'open' && this.#failure === undefined;
  }

  /** Throws why the engine cannot be used (failed, or closed). */
  checkUsable(): void {
    this.#checkUsable();
  }

  /**
   * Appends one entry and resolves with what applying it did, once it is durable and applied.
   * Sets `progress.submitted` the moment the entry is in the log's hands.
   */
  submit(envelope: Envelope, progress: CallProgress): Promise<ApplyResult> {
    this.#checkUsable();
    const problem = validateCommand(envelope);
    if (problem !== undefined) throw new InvalidArgument(problem);
    const body = encodeEnvelope(envelope);
    if (body.length > limits.recordBodyBytesMax) throw new InvalidArgument(`request of ${body.length} bytes exceeds ${limits.recordBodyBytesMax}`);
    const at = position(this.#log.head().position + 1);
    const timestampMicros = this.#stamp();
    const durable = this.#log.append([{
      view: view(0), position: at, commit: this.#log.committedPosition(), timestamp: timestampMicros, client: clientId(0n), request: 0,
      tenant: envelope.tenant, operation: OPERATION[envelope.command.kind], body,
    }]);
    progress.submitted = true;
    const hash = this.#log.head().hash;
    const result = new Promise<ApplyResult>((resolve, reject) => {
      this.#pending.push({ position: at, timestampMicros, tenant: envelope.tenant, hash, body, resolve, reject });
    });
    durable.then((upTo) => this.#applyDurable(upTo), (error: unknown) => this.#fail(error));
    return result;
  }

  /** Checks the log's chains (see `Log.verify`). */
  async verify(options: VerifyOptions, onProgress?: VerifyProgress): Promise<VerifyResult> {
    this.#checkUsable();
    return this.#log.verify(options, onProgress);
  }

  /** Resolves at the next apply (or close): for followers of the log. */
  nextApplied(): Promise<void> {
    return this.#applied.promise;
  }

  /** Writes a checkpoint of everything applied so far. */
  async checkpoint(): Promise<Position> {
    this.#checkUsable();
    await this.#queueCheckpoint();
    return position(this.#checkpointPosition);
  }

  /** Waits for in-flight writes, writes a final checkpoint, closes the log. Idempotent. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    try {
      if (this.#failure === undefined) {
        await this.#log.sync().catch((error: unknown) => this.#fail(error));
        if (this.#failure === undefined) this.#applyDurable(this.#log.durablePosition());
        await this.#checkpointQueue;
        if (this.#failure === undefined && this.#kernel.head > this.#checkpointPosition) await this.#queueCheckpoint();
      }
    } finally {
      this.#state = 'closed';
      await this.#log.close();
      await this.#lock.release();
      this.#wake();
    }
  }

  #checkUsable(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state !== 'open') throw new ClosedError();
  }

  /** Strictly increasing µs timestamps near the wall clock (DESIGN §3). */
  #stamp(): number {
    this.#lastTimestampMicros = Math.max(Date.now() * 1000, this.#lastTimestampMicros + 1);
    return this.#lastTimestampMicros;
  }

  #applyDurable(upTo: number): void {
    if (this.#failure !== undefined) return;
    if (upTo > this.#log.committedPosition()) this.#log.setCommitted(position(upTo));
    let applied = false;
    while (this.#pending.length > 0 && (this.#pending[0] as PendingEntry).position <= upTo) {
      const entry = this.#pending.shift() as PendingEntry;
      let result: ApplyResult;
      try {
        result = this.#kernel.apply({ position: entry.position, timestampMicros: entry.timestampMicros, tenant: entry.tenant, hash: entry.hash }, entry.body);
      } catch (error) {
        entry.reject(error);
        this.#fail(error);
        return;
      }
      this.#lastAppliedHash = entry.hash;
      applied = true;
      entry.resolve(result);
    }
    if (!applied) return;
    this.#wake();
    if (this.#checkpointIsDue()) {
      this.#checkpointDue = true;
      this.#queueCheckpoint()
        .catch((error: unknown) => this.#fail(error))
        .finally(() => { this.#checkpointDue = false; });
    }
  }

  #checkpointIsDue(): boolean {
    if (this.#checkpointDue || this.#state !== 'open') return false;
    if (this.#kernel.head - this.#checkpointPosition < this.#options.checkpointIntervalEntries) return false;
    return Date.now() - this.#lastCheckpointEndMs >= this.#lastCheckpointCostMs / CHECKPOINT_TIME_SHARE_MAX;
  }

  #queueCheckpoint(): Promise<void> {
    const run = this.#checkpointQueue.then(() => this.#writeCheckpoint());
    this.#checkpointQueue = run.catch(() => undefined);
    return run;
  }

  /** Captures the state now (synchronously, so it is one consistent position), then writes it. */
  async #writeCheckpoint(): Promise<void> {
    const startedMs = Date.now();
    const file: CheckpointFile = { position: this.#kernel.head, recordHash: this.#lastAppliedHash, payload: this.#kernel.checkpoint() };
    await writeCheckpointFile(this.#dir, file);
    this.#checkpointPosition = Math.max(this.#checkpointPosition, file.position);
    this.#lastCheckpointEndMs = Date.now();
    this.#lastCheckpointCostMs = this.#lastCheckpointEndMs - startedMs;
  }

  /** A failed fsync or a broken invariant stops the engine: nothing more is acknowledged. */
  #fail(error: unknown): void {
    if (this.#failure === undefined) {
      this.#failure = error instanceof Error ? error : new VerityError('EngineFailed', String(error));
    }
    for (const entry of this.#pending.splice(0)) entry.reject(this.#failure);
    this.#wake();
  }

  #wake(): void {
    const current = this.#applied;
    this.#applied = signal();
    current.resolve();
  }
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

async function loadCheckpoint(dir: string, log: Log): Promise<{ kernel: Kernel; position: number; lastHash: Checksum }> {
  const file = await readCheckpointFile(dir);
  if (file === undefined) return { kernel: Kernel.create(), position: 0, lastHash: CHECKSUM_ZERO };
  const refuse = (why: string): never => {
    throw new VerityError('CheckpointMismatch', `checkpoint in ${dir} at position ${file.position} cannot be used: ${why}`, { dir, position: file.position });
  };
  if (file.position > log.head().position) refuse(`the log ends at ${log.head().position}: entries the checkpoint covers are missing from the log`);
  const restored = Kernel.restore(file.payload);
  if (!restored.ok) return refuse(restored.reason);
  if (restored.kernel.head !== file.position) refuse(`its state is at position ${restored.kernel.head}`);
  if (file.position > 0) {
    const record = await log.read(position(file.position));
    if (record === undefined || !checksumEqual(record.hash, file.recordHash)) refuse('it was taken from a different log');
  }
  return { kernel: restored.kernel, position: file.position, lastHash: checksum(file.recordHash) };
}
