import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initCrypto } from '@veritydb/crypto';
import { Prng, position, seedFrom, tenantId, limits } from '@veritydb/types';
import { Log } from '../src/index.js';
import { CLUSTER, crashRecord, tempDir } from './helpers.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
await initCrypto();
const writer = fileURLToPath(new URL('./fixtures/crash-writer.js', import.meta.url));

interface ChildRun {
  readonly readyHead: number;
  readonly durable: number[];
  readonly stderr: string;
}

/** Runs the writer, kills it with SIGKILL `delayMs` after it reports ready. */
function runAndKill(dir: string, childSeed: number, delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(childSeed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let readyHead = -1;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (readyHead < 0) {
        const match = /^ready (\d+)\n/.exec(stdout);
        if (match !== null) {
          readyHead = Number(match[1]);
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
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

t.test('SIGKILL at random moments never loses a position reported durable', async (t) => {
  const dir = await tempDir(t, 'crash');
  const rng = new Prng(seed);
  const kills = 20;
  let previousHead = 0;
  let totalDurable = 0;
  let tornTails = 0;
  for (let k = 0; k < kills; k++) {
    const delayMs = rng.range(1, 120);
    const run = await runAndKill(dir, rng.u32(), delayMs);
    t.equal(run.readyHead, previousHead, `kill ${k}: the child reopened at the head the parent saw`);
    const reportedMax = Math.max(previousHead, ...run.durable);
    const log = await Log.open(dir, { cluster: CLUSTER, segmentBytes: 16 * limits.segmentBytesMin });
    if (log.recovery.truncated !== undefined) tornTails++;
    const head = log.head().position;
    if (head < reportedMax) t.fail(`kill ${k} after ${delayMs} ms: head ${head} < durable ${reportedMax}`);
    // The prefix up to the previous head was verified after the previous kill; check it still
    // links (from its last record) and everything the child added since.
    const from = Math.max(1, previousHead);
    const verified = await log.verify({ from });
    if (!verified.ok || verified.checked !== head - from + 1) t.fail(`kill ${k}: verify ${JSON.stringify(verified)}`);
    if (k === kills - 1) {
      t.same(await log.verify(), { ok: true, checked: head }, 'the whole chain verifies at the end');
      for (const tenant of [0, 1, 2, 3]) t.match(await log.verify({ tenant: tenantId(tenant) }), { ok: true }, `tenant ${tenant} chain verifies`);
    }
    // Content check on the reported positions (sampled).
    for (const at of run.durable.filter((_, i) => i % 7 === 0)) {
      const record = await log.read(position(at));
      const expected = crashRecord(at);
      if (record === undefined || Buffer.compare(record.body, expected.body) !== 0 || record.tenant !== expected.tenant) {
        t.fail(`kill ${k}: record ${at} differs`);
      }
    }
    totalDurable += run.durable.length;
    previousHead = head;
    await log.close();
  }
  t.comment(`${kills} kills, ${totalDurable} durable acknowledgements, final head ${previousHead}, ${tornTails} torn tails cut`);
  t.ok(previousHead > 0 && totalDurable > kills, 'the child made progress');
});
