/**
 * Closed-loop load: N workers, each issuing one request at a time for warm-up + measured
 * seconds. Throughput counts the requests that complete inside the measured window (so slow
 * requests straddling its edges do not bias it); their latencies give the percentiles.
 */

/** One worker's request; resolves when acknowledged. */
export type Operation = () => Promise<void>;

export interface CellResult {
  readonly clients: number;
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly writesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The first error message seen, if any. */
  readonly firstError: string | null;
  /** CPU use during the measured window, percent of one core, per sampled process (see `runCell`). */
  readonly cpuPercent: readonly number[];
}

/** Pause after a failed request, so a broken peer does not turn the loop into a spin. */
const ERROR_PAUSE_MS = 10;

/**
 * `sampleCpu` returns CPU seconds used so far by each process of interest; it is called when the
 * measured window opens and when it closes.
 */
export async function runCell(operations: readonly Operation[], warmupSeconds: number, seconds: number, sampleCpu: () => number[]): Promise<CellResult> {
  const start = performance.now();
  const measureFrom = start + warmupSeconds * 1_000;
  const measureUntil = measureFrom + seconds * 1_000;
  let cpuFrom: number[] = [];
  let cpuUntil: number[] = [];
  const opened = setTimeout(() => { cpuFrom = sampleCpu(); }, measureFrom - start);
  const closed = setTimeout(() => { cpuUntil = sampleCpu(); }, measureUntil - start);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const worker = async (operation: Operation): Promise<void> => {
    while (performance.now() < measureUntil) {
      const begun = performance.now();
      try {
        await operation();
      } catch (error) {
        const ended = performance.now();
        if (ended >= measureFrom && ended <= measureUntil) errors += 1;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        await new Promise((resolve) => setTimeout(resolve, ERROR_PAUSE_MS));
        continue;
      }
      const ended = performance.now();
      if (ended >= measureFrom && ended <= measureUntil) latencies.push(ended - begun);
    }
  };
  await Promise.all(operations.map(worker));
  clearTimeout(opened);
  clearTimeout(closed);
  if (cpuUntil.length === 0) cpuUntil = sampleCpu();
  latencies.sort((a, b) => a - b);
  return {
    clients: operations.length,
    requests: latencies.length,
    errors,
    seconds,
    writesPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.length === 0 ? Number.NaN : latencies[latencies.length - 1]!,
    firstError,
    cpuPercent: cpuUntil.map((used, i) => (100 * (used - (cpuFrom[i] ?? Number.NaN))) / seconds),
  };
}

/** Nearest-rank percentile of sorted values; NaN when empty. */
function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank]!;
}
