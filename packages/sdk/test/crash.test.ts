import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Verity } from '../src/index.js';

const CHILD = fileURLToPath(new URL('../testing/load-child.js', import.meta.url));
/** Acknowledged writes to wait for before the kill: enough to cross several checkpoints. */
const ACKS_BEFORE_KILL = 300;

/** Runs the load child until it has acknowledged `acks` writes, then SIGKILLs it. */
async function loadThenKill(dir: string, firstId: number, acks: number): Promise<Set<number>> {
  const child = spawn(process.execPath, [CHILD, dir, '16', String(firstId)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acknowledged = new Set<number>();
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /^ack (\d+)$/.exec(line);
    if (match !== null) acknowledged.add(Number(match[1]));
    if (acknowledged.size === acks) child.kill('SIGKILL');
  }
  const signal = await exited;
  if (signal !== 'SIGKILL') throw new Error(`load child ended with ${String(signal)} before the kill`);
  return acknowledged;
}

t.test('a writer killed with SIGKILL mid-load loses no acknowledged write', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'verity-crash-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await loadThenKill(dir, 0, ACKS_BEFORE_KILL);
  const second = await loadThenKill(dir, 1_000_000, ACKS_BEFORE_KILL);
  t.comment(`acknowledged ${first.size} + ${second.size} writes before the kills`);
  const db = await Verity.open(dir);
  t.teardown(() => db.close());
  const present = new Set((await db.tenant(1).query('SELECT id FROM r')).rows.map((r) => r['id'] as number));
  const lost = [...first, ...second].filter((id) => !present.has(id));
  t.same(lost, [], 'every acknowledged row is present after reopen');
  t.ok(present.size >= first.size + second.size);
  const events = await db.tenant(1).query("SELECT count(*) AS n FROM __events WHERE stream = 'r' AND event_type = 'insert'");
  t.same(events.rows, [{ n: present.size }], 'one insert event per row');
  const again = await Verity.open(dir).catch((e: unknown) => e);
  t.match(again, { code: 'DirectoryLocked' });
});
