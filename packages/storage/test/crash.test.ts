import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initCrypto } from '@veritydb/crypto';
import { Prng, position, seedFrom, tenantId, limits } from '@veritydb/types';
import { Log } from '../src/index.js';
import { CLUSTER, crashRecord, tempDir } from './helpers.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
await initCrypto();
const SEGMENT_BYTES = 64 * limits.segmentBytesMin;
const writer = fileURLToPath(new URL('./fixtures/crash-writer.js', import.meta.url));

interface ChildRun {
  readonly readyHead: number;
  readonly durable: number[];
  readonly stderr: string;
}

/**
 * Runs the writer and kills it with SIGKILL at a seeded moment: once it has reported
 * `afterDurable` durable appends (0 = right after it opened its log), plus `delayMs`.
 */
function runAndKill(dir: string, childSeed: number, afterDurable: number, delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(childSeed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let readyHead = -1;
    let armed = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (readyHead < 0) {
        const match = /^ready (\d+)\n/.exec(stdout);
        if (match !== null) readyHead = Number(match[1]);
      }
      const durableLines = stdout.split('durable ').length - 1;
      if (!armed && readyHead >= 0 && durableLines >= afterDurable) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`writer exited without being killed (signal ${signal}): ${stderr}`));
        return;
      }
      const durable = [...stdout.matchAll(/^durable (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ readyHead, durable, stderr });
    });
  });
}

/** One directory killed `kills` times in a row; returns what it observed. */
async function killLane(t: Test, dir: string, rng: Prng, kills: number, lane: number): Promise<{ durable: number; head: number; torn: number }> {
  let previousHead = 0;
  let totalDurable = 0;
  let tornTails = 0;
  for (let k = 0; k < kills; k++) {
    const label = `lane ${lane} kill ${k}`;
    const afterDurable = rng.int(40);
    const delayMs = rng.int(15);
    const run = await runAndKill(dir, rng.u32(), afterDurable, delayMs);
    if (run.readyHead !== previousHead) t.fail(`${label}: the child reopened at ${run.readyHead}, the parent saw ${previousHead}`);
    const reportedMax = Math.max(previousHead, ...run.durable);
    const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: SEGMENT_BYTES });
    if (log.recovery.truncated !== undefined) tornTails++;
    const head = log.head().position;
    if (head < reportedMax) t.fail(`${label} (after ${afterDurable} acks + ${delayMs} ms): head ${head} < durable ${reportedMax}`);
    // The prefix up to the previous head was verified after the previous kill; check it still
    // links (from its last record) and everything the child added since.
    const from = Math.max(1, previousHead);
    const verified = await log.verify({ from });
    if (!verified.ok || verified.checked !== head - from + 1) t.fail(`${label}: verify ${JSON.stringify(verified)}`);
    // Content check on the reported positions (sampled).
    for (const at of run.durable.filter((_, i) => i % 7 === 0)) {
      const record = await log.read(position(at));
      const expected = crashRecord(at);
      if (record === undefined || Buffer.compare(record.body, expected.body) !== 0 || record.tenant !== expected.tenant) {
        t.fail(`${label}: record ${at} differs`);
      }
    }
    if (k === kills - 1) {
      t.same(await log.verify(), { ok: true, checked: head }, `lane ${lane}: the whole chain verifies at the end`);
      for (const tenant of [0, 1, 2, 3]) t.match(await log.verify({ tenant: tenantId(tenant) }), { ok: true }, `lane ${lane}: tenant ${tenant} chain verifies`);
    }
    totalDurable += run.durable.length;
    previousHead = head;
    await log.close();
  }
  return { durable: totalDurable, head: previousHead, torn: tornTails };
}

t.test('SIGKILL at random moments never loses a position reported durable', async (t) => {
  const rng = new Prng(seed);
  // Two directories killed in parallel: half the wall time for the same number of crashes.
  const lanes = 2;
  const killsPerLane = 10;
  const results = await Promise.all(Array.from({ length: lanes }, async (_, lane) =>
    killLane(t, await tempDir(t, `crash-${lane}`), rng.split(), killsPerLane, lane)));
  for (const [lane, result] of results.entries()) {
    t.comment(`lane ${lane}: ${killsPerLane} kills, ${result.durable} durable acknowledgements, final head ${result.head}, ${result.torn} torn tails cut`);
    t.ok(result.head > 0 && result.durable > 0, `lane ${lane}: the child made progress`);
  }
});
