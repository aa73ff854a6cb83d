/**
 * Log append benchmark: group commit against a raw write + fdatasync loop on the same disk.
 * Prints one JSON line per group size (records per fdatasync):
 *   {"bench":"log","group":64,"record_bytes":256,"records_per_s":…,"mb_per_s":…,"baseline_records_per_s":…,…}
 * `record_bytes` is the body size; on disk each record also carries its 232-byte frame
 * (`frame_bytes`) plus a 236-byte index slot. `baseline_records_per_s` writes `record_bytes` per
 * record; `baseline_frame_records_per_s` writes `frame_bytes` per record (the same on-disk record,
 * without the index); `baseline_log_io_records_per_s` does the log's own I/O without its CPU work
 * (frames to one file and slots to another, written concurrently, both fdatasynced). Every
 * baseline writes like the log: positional writes (no O_APPEND) through the same helper, one
 * group per fdatasync, after the same warm-up. Log and baselines alternate in short rounds so
 * that load changes on a shared machine hit all alike. `cpu_us_per_record` is the process CPU
 * time (all threads) per record while the log ran; `load_avg` is the 1-minute load average at
 * the end.
 * Usage: node packages/storage/dist/bench/log.js [secondsPerGroup=3]
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3Backend, initCrypto } from '@veritydb/crypto';
import { clientId, clusterId, position, tenantId, view, type Position } from '@veritydb/types';
import { writeFully } from '../src/files.js';
import { Log, recordFrameBytes, type RecordFields } from '../src/index.js';
import { INDEX_SLOT_BYTES } from '../src/segment-index.js';

const RECORD_BYTES = 256;
const GROUPS = [1, 8, 64, 512] as const;
const ROUNDS = 4;
const CLUSTER = clusterId(0xbe9c4n);

interface Measure {
  records: number;
  seconds: number;
  /** Process CPU time (user + system, all threads), microseconds. */
  cpuMicros: number;
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

function record(at: number, body: Uint8Array): RecordFields {
  return {
    view: view(1), position: position(at), commit: position(at - 1), timestamp: 1_700_000_000_000_000 + at,
    client: clientId(7n), request: at & 0xffff_ffff, tenant: tenantId(at & 7), operation: 1, body,
  };
}

/**
 * Appends batches of `group` records for `seconds`, keeping two appends in flight so that
 * encoding the next batch overlaps the fdatasync of the current one. Every append is started in
 * its own turn (the second a turn after the first, each replacement a turn after the append it
 * replaces resolved), so each group commit covers exactly one batch (`group` records per
 * fdatasync, as in the baseline); the output reports the measured ratio. Without that, two
 * batches resolved by one fdatasync (a batch split by a segment roll does that) would be
 * replaced in the same turn, coalesce into one group commit, and stay paired from then on.
 */
async function runLog(log: Log, group: number, seconds: number, body: Uint8Array): Promise<Measure> {
  const batches: RecordFields[][] = [];
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let next = log.head().position + 1;
  let records = 0;
  const makeBatch = (): RecordFields[] => {
    const batch = batches.pop() ?? Array.from({ length: group }, () => record(1, body));
    for (let i = 0; i < group; i++) batch[i] = record(next + i, body);
    next += group;
    return batch;
  };
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    const submitOne = (): void => {
      if (inFlight >= 2 || performance.now() >= deadline) {
        if (inFlight === 0) resolve();
        return;
      }
      const batch = makeBatch();
      inFlight++;
      log.append(batch).then(() => {
        inFlight--;
        records += group;
        batches.push(batch);
        setImmediate(submitOne);
      }, reject);
    };
    submitOne();
    setImmediate(submitOne);
  });
  return { records, seconds: (performance.now() - started) / 1000, cpuMicros: cpuMicros(cpuStarted) };
}

/**
 * The physical reference: one positional write of `group` records then fdatasync, extending a
 * file, as the log writes its segment. With `slotBytes`, also writes `group` index slots to a
 * second file concurrently and fdatasyncs both, as the log does.
 */
async function runBaseline(path: string, group: number, recordBytes: number, seconds: number, slotBytes = 0): Promise<Measure> {
  // Like the log's segment, one file per kind grows across rounds.
  const data = await open(path, 'a+').then((created) => created.close()).then(() => open(path, 'r+'));
  const index = slotBytes > 0 ? await open(`${path}.index`, 'a+').then((created) => created.close()).then(() => open(`${path}.index`, 'r+')) : undefined;
  const buffer = new Uint8Array(group * recordBytes).fill(0x5a);
  const slots = new Uint8Array(group * slotBytes).fill(0xa5);
  let offset = (await data.stat()).size;
  let slotOffset = index === undefined ? 0 : (await index.stat()).size;
  let records = 0;
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    while (performance.now() < deadline) {
      if (index === undefined) {
        await writeFully(data, buffer, offset);
        await data.datasync();
      } else {
        await Promise.all([writeFully(data, buffer, offset), writeFully(index, slots, slotOffset)]);
        await Promise.all([data.datasync(), index.datasync()]);
      }
      offset += buffer.length;
      slotOffset += slots.length;
      records += group;
    }
  } finally {
    await data.close();
    await index?.close();
  }
  return { records, seconds: (performance.now() - started) / 1000, cpuMicros: cpuMicros(cpuStarted) };
}

async function main(): Promise<void> {
  const secondsPerGroup = Number(process.argv[2] ?? 3);
  const roundSeconds = secondsPerGroup / ROUNDS / 2;
  await initCrypto();
  const body = new Uint8Array(RECORD_BYTES).map((_, i) => (i * 13) & 0xff);
  for (const group of GROUPS) {
    const dir = await mkdtemp(join(tmpdir(), 'veritydb-bench-log-'));
    try {
      const log = await Log.open(dir, { cluster: CLUSTER });
      const frameBytes = recordFrameBytes(RECORD_BYTES);
      const baseline = (name: string, bytes: number, seconds: number, slotBytes = 0): Promise<Measure> =>
        runBaseline(join(dir, name), group, bytes, seconds, slotBytes);
      // Warm up the JIT and the files, the baselines' as well as the log's.
      await runLog(log, group, 0.1, body);
      await baseline('warm-up.dat', frameBytes, 0.05, INDEX_SLOT_BYTES);
      const commitsBefore = log.stats();
      const logTotal: Measure = { records: 0, seconds: 0, cpuMicros: 0 };
      const baseTotal: Measure = { records: 0, seconds: 0, cpuMicros: 0 };
      const frameTotal: Measure = { records: 0, seconds: 0, cpuMicros: 0 };
      const logIoTotal: Measure = { records: 0, seconds: 0, cpuMicros: 0 };
      const add = (total: Measure, measured: Measure): void => {
        total.records += measured.records;
        total.seconds += measured.seconds;
        total.cpuMicros += measured.cpuMicros;
      };
      for (let round = 0; round < ROUNDS; round++) {
        add(baseTotal, await baseline('baseline.dat', RECORD_BYTES, roundSeconds / 2));
        add(frameTotal, await baseline('baseline-frame.dat', frameBytes, roundSeconds / 4));
        add(logIoTotal, await baseline('baseline-log-io.dat', frameBytes, roundSeconds / 4, INDEX_SLOT_BYTES));
        add(logTotal, await runLog(log, group, roundSeconds, body));
      }
      const head: Position = log.head().position;
      const commits = log.stats().groupCommits - commitsBefore.groupCommits;
      await log.close();
      const recordsPerSecond = logTotal.records / logTotal.seconds;
      const baselinePerSecond = baseTotal.records / baseTotal.seconds;
      const perRecord = (total: Measure): number => Number((total.cpuMicros / Math.max(1, total.records)).toFixed(2));
      console.log(JSON.stringify({
        bench: 'log', group, record_bytes: RECORD_BYTES, records_per_s: Math.round(recordsPerSecond),
        mb_per_s: Number((recordsPerSecond * RECORD_BYTES / 1e6).toFixed(2)),
        baseline_records_per_s: Math.round(baselinePerSecond),
        ratio: Number((recordsPerSecond / baselinePerSecond).toFixed(3)),
        baseline_frame_records_per_s: Math.round(frameTotal.records / frameTotal.seconds),
        baseline_log_io_records_per_s: Math.round(logIoTotal.records / logIoTotal.seconds),
        frame_bytes: frameBytes, records: logTotal.records,
        records_per_fdatasync: Number((logTotal.records / Math.max(1, commits)).toFixed(1)), head,
        cpu_us_per_record: perRecord(logTotal), baseline_cpu_us_per_record: perRecord(baseTotal),
        blake3: blake3Backend(), load_avg: Number((loadavg()[0] ?? 0).toFixed(2)),
      }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

await main();
