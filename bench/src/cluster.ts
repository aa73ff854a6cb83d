/**
 * `npm run bench:cluster`: write throughput and latency of a 3-replica VerityDB cluster beside a
 * 3-member etcd cluster, both on loopback with their data on the same disk, in the same run.
 *
 * For each system, each mode (`single`: one row per request; `batch100`: 100 rows per request,
 * atomically) and each client count (1, 8, 32, 128 closed-loop clients), it runs a warm-up and
 * then a measured window, and prints one JSON line:
 *   {"bench":"cluster","system":"veritydb","mode":"single","clients":32,"writes_per_s":…,"rows_per_s":…,"p50_ms":…,"p99_ms":…,…}
 * then one ratio line per mode × client count (veritydb / etcd) and a final line checking the
 * targets of DESIGN §14 / issue 5. The systems run one after the other, never at once.
 *
 * Usage: node bench/dist/cluster.js [--seconds S=10] [--warmup S=2] [--clients 1,8,32,128] [--modes single,batch100]
 *          [--systems veritydb,etcd] [--batch-form values|statements] [--no-install] [--cpu-prof DIR] [--node-flags "FLAGS"]
 */
import { loadavg, cpus } from 'node:os';
import { resolve } from 'node:path';
import { EtcdCluster, ensureEtcd, etcdVersion } from './etcd.js';
import { runCell, type CellResult, type Operation } from './load.js';
import { cpuSeconds, installCleanup, interruptedBy, sleep, stopAll } from './processes.js';
import { VALUE_BYTES, VerityCluster, type BatchForm } from './veritydb.js';

const BATCH_ROWS = 100;
const MODES = ['single', 'batch100'] as const;
type Mode = (typeof MODES)[number];
type System = 'veritydb' | 'etcd';
const TARGET_CLIENTS = 32;
const TARGET_WRITES_RATIO = 3;
const TARGET_BATCH_ROWS_PER_S = 50_000;
/** Lets the previous cell's in-flight work and the servers' background work settle. */
const PAUSE_BETWEEN_CELLS_MS = 500;

interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly clients: readonly number[];
  readonly modes: readonly Mode[];
  readonly systems: readonly System[];
  readonly batchForm: BatchForm;
  readonly install: boolean;
  readonly cpuProfileDirectory: string | null;
  /** Extra `node` flags for the replicas (`--node-flags "--max-semi-space-size=64"`), for experiments. */
  readonly nodeFlags: readonly string[];
}

function parseOptions(argv: readonly string[]): Options {
  let seconds = 10;
  let warmupSeconds = 2;
  let clients = [1, 8, 32, 128];
  let modes: Mode[] = [...MODES];
  let systems: System[] = ['veritydb', 'etcd'];
  let batchForm: BatchForm = 'values';
  let install = true;
  let cpuProfileDirectory: string | null = null;
  let nodeFlags: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const positive = (text: string): number => {
      const number = Number(text);
      if (!(Number.isFinite(number) && number > 0)) throw new Error(`${flag}: expected a positive number, got ${text}`);
      return number;
    };
    switch (flag) {
      case '--seconds': seconds = positive(value()); break;
      case '--warmup': warmupSeconds = Number(value()); break;
      case '--clients': clients = value().split(',').map((text) => Math.floor(positive(text))); break;
      case '--modes': modes = value().split(',').map((text) => {
        if (text !== 'single' && text !== 'batch100') throw new Error(`--modes: unknown mode ${text}`);
        return text;
      }); break;
      case '--systems': systems = value().split(',').map((text) => {
        if (text !== 'veritydb' && text !== 'etcd') throw new Error(`--systems: unknown system ${text}`);
        return text;
      }); break;
      case '--batch-form': {
        const form = value();
        if (form !== 'values' && form !== 'statements') throw new Error(`--batch-form: values or statements, got ${form}`);
        batchForm = form;
        break;
      }
      case '--no-install': install = false; break;
      case '--cpu-prof': cpuProfileDirectory = resolve(value()); break;
      case '--node-flags': nodeFlags = value().split(' ').filter((flag) => flag !== ''); break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  if (!(Number.isFinite(warmupSeconds) && warmupSeconds >= 0)) throw new Error('--warmup: expected a number ≥ 0');
  return { seconds, warmupSeconds, clients, modes, systems, batchForm, install, cpuProfileDirectory, nodeFlags };
}

interface Line {
  readonly system: System;
  readonly mode: Mode;
  readonly result: CellResult;
}

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'cluster', ...record })}\n`);
}

const round = (value: number, digits: number): number | null => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);

function printCell(line: Line, extra: Record<string, unknown>): void {
  const { result } = line;
  const rows = line.mode === 'single' ? 1 : BATCH_ROWS;
  print({
    system: line.system, mode: line.mode, clients: result.clients,
    writes_per_s: round(result.writesPerSecond, 1), rows_per_s: round(result.writesPerSecond * rows, 1),
    p50_ms: round(result.p50Ms, 3), p99_ms: round(result.p99Ms, 3), max_ms: round(result.maxMs, 3),
    requests: result.requests, errors: result.errors, ...(result.firstError === null ? {} : { first_error: result.firstError }),
    client_cpu_pct: round(result.cpuPercent[0] ?? Number.NaN, 1), server_cpu_pct: result.cpuPercent.slice(1).map((pct) => round(pct, 1)),
    // CPU per request is what a busy shared machine distorts least (it does not count time spent waiting for a core).
    server_cpu_ms_per_request: result.cpuPercent.slice(1).map((pct) => round((10 * pct * result.seconds) / result.requests, 3)),
    seconds: result.seconds, rows_per_request: rows, value_bytes: VALUE_BYTES, load_avg_1m: round(loadavg()[0] ?? Number.NaN, 2),
    ...extra,
  });
}

/** Runs every mode × client count for one system; `operations(mode, clients)` builds the clients' requests. */
async function runSystem(system: System, options: Options, cluster: { cpuSeconds(): number[] }, operations: (mode: Mode, clients: number) => Promise<Operation[]>, extra: Record<string, unknown>): Promise<Line[]> {
  const lines: Line[] = [];
  // The bench process (the clients) first, then the servers in index order.
  const sampleCpu = (): number[] => [cpuSeconds(process.pid), ...cluster.cpuSeconds()];
  for (const mode of options.modes) {
    for (const clients of options.clients) {
      const result = await runCell(await operations(mode, clients), options.warmupSeconds, options.seconds, sampleCpu);
      const line = { system, mode, result };
      printCell(line, extra);
      lines.push(line);
      await sleep(PAUSE_BETWEEN_CELLS_MS);
    }
  }
  return lines;
}

async function runVerity(options: Options): Promise<Line[]> {
  const nodeFlags = [...options.nodeFlags, ...(options.cpuProfileDirectory === null ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDirectory])];
  const cluster = await VerityCluster.start({ nodeFlags });
  try {
    return await runSystem('veritydb', options, cluster, async (mode, clients) => {
      const handles = await cluster.handles(clients);
      return handles.map((db) => (mode === 'single' ? cluster.singleInsert(db) : cluster.batchInsert(db, BATCH_ROWS, options.batchForm)));
    }, { batch_form: options.batchForm });
  } finally {
    await cluster.stop();
  }
}

async function runEtcd(options: Options): Promise<Line[]> {
  const skipped = ensureEtcd(options.install);
  if (skipped !== null) {
    print({ system: 'etcd', skipped: true, reason: skipped });
    return [];
  }
  const cluster = await EtcdCluster.start(VALUE_BYTES);
  try {
    return await runSystem('etcd', options, cluster, async (mode, clients) => Array.from({ length: clients }, () => (mode === 'single' ? cluster.put() : cluster.txn(BATCH_ROWS))),
      { etcd_version: etcdVersion(), batch_form: 'txn' });
  } finally {
    await cluster.stop();
  }
}

function find(lines: readonly Line[], system: System, mode: Mode, clients: number): CellResult | undefined {
  return lines.find((line) => line.system === system && line.mode === mode && line.result.clients === clients)?.result;
}

function printRatios(lines: readonly Line[], options: Options): void {
  for (const mode of options.modes) {
    for (const clients of options.clients) {
      const verity = find(lines, 'veritydb', mode, clients);
      const etcd = find(lines, 'etcd', mode, clients);
      if (verity === undefined || etcd === undefined) continue;
      print({
        ratio: 'veritydb/etcd', mode, clients,
        writes_per_s: round(verity.writesPerSecond / etcd.writesPerSecond, 3),
        p50: round(verity.p50Ms / etcd.p50Ms, 3), p99: round(verity.p99Ms / etcd.p99Ms, 3),
      });
    }
  }
}

function printSummary(lines: readonly Line[], options: Options): void {
  const verity = find(lines, 'veritydb', 'single', TARGET_CLIENTS);
  const etcd = find(lines, 'etcd', 'single', TARGET_CLIENTS);
  const writesRatio = verity !== undefined && etcd !== undefined ? verity.writesPerSecond / etcd.writesPerSecond : Number.NaN;
  const p99Ratio = verity !== undefined && etcd !== undefined ? verity.p99Ms / etcd.p99Ms : Number.NaN;
  const batched = lines.filter((line) => line.system === 'veritydb' && line.mode === 'batch100');
  const best = batched.reduce<CellResult | null>((top, line) => (top === null || line.result.writesPerSecond > top.writesPerSecond ? line.result : top), null);
  const bestRows = best === null ? Number.NaN : best.writesPerSecond * BATCH_ROWS;
  const atTarget = find(lines, 'veritydb', 'batch100', TARGET_CLIENTS);
  print({
    summary: 'targets',
    single_clients: TARGET_CLIENTS,
    writes_ratio: round(writesRatio, 3), writes_ratio_target: TARGET_WRITES_RATIO,
    writes_ratio_met: Number.isFinite(writesRatio) ? writesRatio >= TARGET_WRITES_RATIO : null,
    p99_ratio: round(p99Ratio, 3), p99_ratio_target: 1, p99_met: Number.isFinite(p99Ratio) ? p99Ratio <= 1 : null,
    batch_rows_per_s_best: round(bestRows, 1), batch_rows_per_s_best_clients: best?.clients ?? null,
    batch_rows_per_s_at_32: atTarget === undefined ? null : round(atTarget.writesPerSecond * BATCH_ROWS, 1),
    batch_rows_per_s_target: TARGET_BATCH_ROWS_PER_S, batch_rows_met: Number.isFinite(bestRows) ? bestRows >= TARGET_BATCH_ROWS_PER_S : null,
    seconds: options.seconds, warmup_seconds: options.warmupSeconds, cpus: cpus().length, node: process.version,
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installCleanup();
  const lines: Line[] = [];
  if (options.systems.includes('veritydb')) lines.push(...await runVerity(options));
  if (options.systems.includes('etcd')) lines.push(...await runEtcd(options));
  printRatios(lines, options);
  printSummary(lines, options);
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (error: unknown) => {
    // Interrupted: the signal handler stops everything and exits; requests cut short by it are not failures.
    if (interruptedBy() !== null) return;
    process.stderr.write(`bench:cluster failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
