/**
 * Projection maintenance cost (DESIGN §8, issue 6): single-row INSERT entries into a base table
 * applied by the kernel with zero, one and three projections defined over it. Prints JSON lines
 * `{"bench":"projection","case":…,"ops_per_s":…,"cpu_ops_per_s":…}` (medians over interleaved
 * rounds, by wall and by process CPU time); the last line gives the ratio of apply time with one
 * join + group projection to apply time with none (target ≤ 2), by both measures.
 *
 *   npx tsc -b packages/kernel && node packages/kernel/dist/bench/projection.js [inserts] [case name]
 */
import { performance } from 'node:perf_hooks';
import { position, tenantId } from '@veritydb/types';
import { Kernel } from '../src/kernel.js';
import { encodeEnvelope, type Statement } from '../src/codec/command.js';
import { fakeHash } from '../testing/driver.js';

const PATIENTS = 1_000;
const WARMUP_INSERTS = 3_000;
const INSERTS = Number(process.argv[2] ?? 20_000);
const EPOCH_MICROS = 1_700_000_000_000_000;

const SUMMARY = `CREATE PROJECTION patient_summary AS SELECT p.id, p.name, COUNT(v.id) AS visits, SUM(v.cost) AS total, MAX(v.cost) AS max_cost
  FROM patients p LEFT JOIN visits v ON v.patient_id = p.id GROUP BY p.id, p.name`;
const BY_COUNTRY = `CREATE PROJECTION by_country AS SELECT c.country, COUNT(*) AS n, SUM(v.cost) AS total, MIN(v.cost) AS lo
  FROM visits v JOIN patients p ON p.id = v.patient_id JOIN cities c ON c.name = p.city GROUP BY c.country`;
const BY_DAY = 'CREATE PROJECTION by_day AS SELECT v.day, COUNT(*) AS n, AVG(v.cost) AS mean, MIN(v.cost) AS lo, MAX(v.cost) AS hi FROM visits v GROUP BY v.day';

const CASES: readonly { readonly name: string; readonly projections: readonly string[] }[] = [
  { name: 'no projection', projections: [] },
  { name: 'one join+group projection', projections: [SUMMARY] },
  { name: 'three projections', projections: [SUMMARY, BY_COUNTRY, BY_DAY] },
];

class Bench {
  readonly kernel = Kernel.create();

  apply(statements: readonly Statement[]): void {
    const at = this.kernel.head + 1;
    const body = encodeEnvelope({ tenant: tenantId(1), actor: 'bench', command: { kind: 'sql', statements } });
    const r = this.kernel.apply({ position: position(at), timestampMicros: EPOCH_MICROS + at, tenant: tenantId(1), hash: fakeHash(at) }, body);
    if (r.reply.kind === 'rejected') throw new Error(r.reply.error.message);
  }

  sql(sql: string, params: Statement['params'] = []): void {
    this.apply([{ sql, params }]);
  }
}

function setup(projections: readonly string[]): Bench {
  const b = new Bench();
  b.kernel.apply({ position: position(1), timestampMicros: EPOCH_MICROS, tenant: tenantId(1), hash: fakeHash(1) },
    encodeEnvelope({ tenant: tenantId(1), actor: 'bench', command: { kind: 'tenant_create', id: tenantId(1), name: 'clinic' } }));
  b.apply([
    { sql: 'CREATE TABLE cities (name TEXT PRIMARY KEY, country TEXT)', params: [] },
    { sql: 'CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT)', params: [] },
    { sql: 'CREATE TABLE visits (id INTEGER PRIMARY KEY, patient_id INTEGER, day DATE, cost BIGINT)', params: [] },
  ]);
  for (let c = 0; c < 20; c++) b.sql('INSERT INTO cities VALUES ($1, $2)', [`city${c}`, `country${c % 5}`]);
  for (let p = 0; p < PATIENTS; p++) b.sql('INSERT INTO patients VALUES ($1, $2, $3)', [p, `patient ${p}`, `city${p % 20}`]);
  for (const sql of projections) b.sql(sql);
  return b;
}

function insertVisit(b: Bench, i: number): void {
  const day = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
  b.sql('INSERT INTO visits (id, patient_id, day, cost) VALUES ($1, $2, $3, $4)', [i, (i * 7919) % PATIENTS, day, BigInt((i * 31) % 500)]);
}

// The cases run interleaved in rounds (the order rotating each round), so drifting machine
// load hits them alike; each case reports the median of its per-round rates. Wall time and
// process CPU time are both measured: on a shared machine CPU time is the steadier measure of
// apply cost (it still includes GC, which is part of the cost).
const only = process.argv[3];
const cases = CASES.filter((x) => only === undefined || x.name === only)
  .map((c) => ({ ...c, bench: setup(c.projections), wall: [] as number[], cpu: [] as number[] }));
for (const c of cases) for (let i = 0; i < WARMUP_INSERTS; i++) insertVisit(c.bench, i);
const ROUNDS = 20;
const perRound = Math.ceil(INSERTS / ROUNDS);
for (let round = 0; round < ROUNDS; round++) {
  for (let j = 0; j < cases.length; j++) {
    const c = cases[(round + j) % cases.length] as (typeof cases)[number];
    const first = WARMUP_INSERTS + round * perRound;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    for (let i = first; i < first + perRound; i++) insertVisit(c.bench, i);
    const wallSeconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    c.wall.push(perRound / wallSeconds);
    c.cpu.push(perRound / ((cpu.user + cpu.system) / 1e6));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const results = new Map<string, { wall: number; cpu: number }>();
for (const c of cases) {
  const wall = Math.round(median(c.wall));
  const cpu = Math.round(median(c.cpu));
  results.set(c.name, { wall, cpu });
  console.log(JSON.stringify({
    bench: 'projection', case: c.name, projections: c.projections.length, inserts: ROUNDS * perRound, rounds: ROUNDS,
    ops_per_s: wall, cpu_ops_per_s: cpu,
  }));
}
if (only !== undefined) process.exit(0);
const none = results.get('no projection') as { wall: number; cpu: number };
const one = results.get('one join+group projection') as { wall: number; cpu: number };
const three = results.get('three projections') as { wall: number; cpu: number };
const ratio = (a: number, b: number): number => Number((a / b).toFixed(2));
console.log(JSON.stringify({
  bench: 'projection', case: 'apply time ratio',
  one_vs_none: ratio(none.wall, one.wall), three_vs_none: ratio(none.wall, three.wall),
  cpu_one_vs_none: ratio(none.cpu, one.cpu), cpu_three_vs_none: ratio(none.cpu, three.cpu), target_one_vs_none: 2,
}));
