/**
 * Log append benchmark: group commit against a raw write + fdatasync loop on the same disk.
 * Prints one JSON line per group size (records per fdatasync):
 *   {"bench":"log","group":64,"record_bytes":256,"records_per_s":…,"mb_per_s":…,"baseline_records_per_s":…,…}
 * `record_bytes` is the body size; on disk each record also carries its 232-byte frame
 * (`frame_bytes`) plus a 236-byte index slot. `baseline_records_per_s` writes `record_bytes` per
 * record; `baseline_frame_records_per_s` writes `frame_bytes` per record (the same on-disk record,
 * without the index). Log and baselines alternate in short rounds so that load changes on a
 * shared machine hit all alike.
 * Usage: node packages/storage/dist/bench/log.js [secondsPerGroup=3]
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCrypto } from '@veritydb/crypto';
import { clientId, clusterId, position, tenantId, view, type Position } from '@veritydb/types';
import { Log, recordFrameBytes, type RecordFields } from '../src/index.js';

const RECORD_BYTES = 256;
const GROUPS = [1, 8, 64, 512] as const;
const ROUNDS = 4;
const CLUSTER = clusterId(0xbe9c4n);

interface Measure {
  records: number;
  seconds: number;
}

function record(at: number, body: Uint8Array): RecordFields {
  return {
    view: view(1), position: position(at), commit: position(at - 1), timestamp: 1_700_000_000_000_000 + at,
    client: clientId(7n), request: at & 0xffff_ffff, tenant: tenantId(at & 7), operation: 1, body,
  };
}

/**
 * Appends batches of `group` records for `seconds`, keeping two appends in flight so that
 * encoding the next batch overlaps the fdatasync of the current one. The second append is
 * started a turn after the first, so each group commit covers exactly one batch (`group`
 * records per fdatasync, as in the baseline); the output reports the measured ratio.
 */
async function runLog(log: Log, group: number, seconds: number, body: Uint8Array): Promise<Measure> {
  const batches: RecordFields[][] = [];
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
        submitOne();
      }, reject);
    };
    submitOne();
    setImmediate(submitOne);
  });
  return { records, seconds: (performance.now() - started) / 1000 };
}

/** The physical reference: one write of `group` records then fdatasync, appending to a file. */
async function runBaseline(path: string, group: number, recordBytes: number, seconds: number): Promise<Measure> {
  const handle = await open(path, 'a+');
  const buffer = new Uint8Array(group * recordBytes).fill(0x5a);
  let offset = (await handle.stat()).size;
  let records = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    while (performance.now() < deadline) {
      await handle.write(buffer, 0, buffer.length, offset);
      await handle.datasync();
      offset += buffer.length;
      records += group;
    }
  } finally {
    await handle.close();
  }
  return { records, seconds: (performance.now() - started) / 1000 };
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
      // Warm up the JIT and the files.
      await runLog(log, group, 0.1, body);
      const commitsBefore = log.stats();
      const logTotal: Measure = { records: 0, seconds: 0 };
      const baseTotal: Measure = { records: 0, seconds: 0 };
      const frameTotal: Measure = { records: 0, seconds: 0 };
      const add = (total: Measure, measured: Measure): void => {
        total.records += measured.records;
        total.seconds += measured.seconds;
      };
      for (let round = 0; round < ROUNDS; round++) {
        add(baseTotal, await runBaseline(join(dir, 'baseline.dat'), group, RECORD_BYTES, roundSeconds / 2));
        add(frameTotal, await runBaseline(join(dir, 'baseline-frame.dat'), group, recordFrameBytes(RECORD_BYTES), roundSeconds / 2));
        add(logTotal, await runLog(log, group, roundSeconds, body));
      }
      const head: Position = log.head().position;
      const commits = log.stats().groupCommits - commitsBefore.groupCommits;
      await log.close();
      const recordsPerSecond = logTotal.records / logTotal.seconds;
      const baselinePerSecond = baseTotal.records / baseTotal.seconds;
      console.log(JSON.stringify({
        bench: 'log', group, record_bytes: RECORD_BYTES, records_per_s: Math.round(recordsPerSecond),
        mb_per_s: Number((recordsPerSecond * RECORD_BYTES / 1e6).toFixed(2)),
        baseline_records_per_s: Math.round(baselinePerSecond),
        ratio: Number((recordsPerSecond / baselinePerSecond).toFixed(3)),
        baseline_frame_records_per_s: Math.round(frameTotal.records / frameTotal.seconds),
        frame_bytes: recordFrameBytes(RECORD_BYTES), records: logTotal.records,
        records_per_fdatasync: Number((logTotal.records / Math.max(1, commits)).toFixed(1)), head,
      }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

await main();
