import { optionsForSeed, simulate } from './cluster.js';

/**
 * How fast the simulator explores: simulated client requests and ticks per wall-clock second,
 * running the real replica and kernel on the default fault profiles of a fixed seed range.
 *   node sim/dist/src/bench.js [--seeds 20] [--first 1]
 * Prints one JSON line per cluster size (3 and 5 replicas).
 */
function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index < 0 ? undefined : process.argv[index + 1];
  return value === undefined ? fallback : Number(value);
}

function bench(replicas: number, first: number, seeds: number): void {
  let requests = 0;
  let replies = 0;
  let committedOps = 0;
  let ticks = 0;
  let failed = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (let seed = first; seed < first + seeds; seed++) {
    const result = simulate(optionsForSeed(seed, { replicaCount: replicas }));
    requests += result.stats.requestsSubmitted;
    replies += result.stats.acceptedReplies;
    committedOps += result.stats.committedOps;
    ticks += result.tick;
    if (!result.ok) failed += 1;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  // CPU time as well: on a shared machine wall time measures the neighbours too.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({
    bench: 'sim', replicas, seeds, first,
    simulated_requests_per_s: Math.round(requests / seconds),
    accepted_replies_per_s: Math.round(replies / seconds),
    committed_ops_per_s: Math.round(committedOps / seconds),
    ticks_per_s: Math.round(ticks / seconds),
    seconds_per_seed: Number((seconds / seeds).toFixed(3)),
    cpu_seconds_per_seed: Number((cpuSeconds / seeds).toFixed(3)),
    simulated_requests_per_cpu_s: Math.round(requests / cpuSeconds),
    failed,
  }) + '\n');
}

const seeds = argument('seeds', 20);
const first = argument('first', 1);
for (const replicas of [3, 5]) bench(replicas, first, seeds);
