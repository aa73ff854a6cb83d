import { harshOptionsForSeed, optionsForSeed, simulate, type SimulatorOptions } from './cluster.js';

/**
 * Simulator CLI.
 *   npm run sim -- --seed 42 [--replicas 3|5] [--trace]
 *   npm run sim -- --seeds 100 [--first 1000] [--replicas 3|5]
 *   --bug ackBeforeDurable|commitWithoutQuorum|viewChangeByOpOnly|sessionAtPrepare  (expect failures)
 */
function parse(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) args.set(arg.slice(2), 'true');
    else { args.set(arg.slice(2), next); i += 1; }
  }
  return args;
}

function replayCommand(seed: number, replicas: number, bug?: string): string {
  return `npm run sim -- --seed ${seed} --replicas ${replicas}${bug === undefined ? '' : ` --bug ${bug} --harsh`} --trace`;
}

function main(): number {
  const args = parse(process.argv.slice(2));
  const profile = args.has('harsh') ? harshOptionsForSeed : optionsForSeed;
  const replicasArg = args.get('replicas');
  const bug = args.get('bug');
  const overrides: Partial<SimulatorOptions> = {
    ...(replicasArg === undefined ? {} : { replicaCount: Number(replicasArg) }),
    ...(bug === undefined ? {} : { bugs: { [bug]: true } }),
  };
  const seedArg = args.get('seed');
  if (seedArg !== undefined) {
    const seed = Number(seedArg);
    const options = profile(seed, {
      ...overrides, ...(args.has('trace') ? { trace: (line: string) => { process.stdout.write(line + '\n'); } } : {}),
    });
    const result = simulate(options);
    process.stdout.write(JSON.stringify({ ...result, faults: options.faults, replicas: options.replicaCount }) + '\n');
    if (!result.ok) process.stdout.write(`FAILED seed ${seed}: ${result.failure}\nreplay: ${replayCommand(seed, options.replicaCount, bug)}\n`);
    return result.ok ? 0 : 1;
  }
  const count = Number(args.get('seeds') ?? '20');
  const first = Number(args.get('first') ?? String(Date.now() % 1_000_000_000));
  let failed = 0;
  let livenessTicksMax = 0;
  let committedOps = 0;
  for (let seed = first; seed < first + count; seed++) {
    const options = profile(seed, overrides);
    const result = simulate(options);
    livenessTicksMax = Math.max(livenessTicksMax, result.stats.livenessTicks);
    committedOps += result.stats.committedOps;
    if (!result.ok) {
      failed += 1;
      process.stdout.write(`FAILED seed ${seed} (${result.phase}, tick ${result.tick}): ${result.failure}\n  replay: ${replayCommand(seed, options.replicaCount, bug)}\n`);
    }
  }
  process.stdout.write(`seeds ${first}..${first + count - 1}: ${committedOps} ops committed, slowest liveness phase ${livenessTicksMax} ticks\n`);
  process.stdout.write(`${count - failed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
