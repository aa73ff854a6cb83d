import t from 'tap';
import fc from 'fast-check';
import { position, seedFrom, tenantId } from '@veritydb/types';
import { Kernel } from '../src/kernel.js';
import { Driver, hex, replay } from '../testing/driver.js';
import { history, HISTORY_TABLES, type HistoryStep } from '../testing/histories.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

function drive(steps: readonly HistoryStep[]): Driver {
  const d = new Driver();
  for (const s of steps) d.submit(s.tenant, s.command);
  return d;
}

/** A read's observable outcome: rows, or the error code. */
function observe(kernel: Kernel, tenant: number, sql: string, at?: number): string {
  const r = kernel.read(tenantId(tenant), sql, [], at === undefined ? undefined : position(at));
  return r.ok ? JSON.stringify(r.rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) : `error ${r.error.code}`;
}

t.test('replaying a log twice, or from a checkpoint, gives identical state hashes', async (t) => {
  let rejections = 0;
  fc.assert(fc.property(history(40), fc.nat(), (steps, cut) => {
    const d = drive(steps);
    const full = hex(d.kernel.stateHash());
    rejections += d.log.filter((_e, i) => replayReplyKind(d, i) === 'rejected').length;
    if (hex(replay(d.log).stateHash()) !== full) return false;
    if (hex(replay(d.log).stateHash()) !== full) return false;
    const k = cut % (d.log.length + 1);
    const prefix = replay(d.log, k);
    const restored = Kernel.restore(prefix.checkpoint());
    if (!restored.ok) return false;
    if (hex(restored.kernel.stateHash()) !== hex(prefix.stateHash())) return false;
    return hex(replay(d.log, d.log.length, restored.kernel).stateHash()) === full;
  }), { seed, numRuns: 60 });
  t.ok(rejections > 0, `histories include rejected entries (${rejections})`);
});

t.test('the state hash notices a different history', async (t) => {
  const a = new Driver();
  const b = new Driver();
  for (const d of [a, b]) {
    d.createTenant(1);
    d.sql(1, 'CREATE TABLE p (id INTEGER PRIMARY KEY, v TEXT)');
  }
  a.sql(1, "INSERT INTO p VALUES (1, 'x')");
  b.sql(1, "INSERT INTO p VALUES (1, 'y')");
  t.not(hex(a.kernel.stateHash()), hex(b.kernel.stateHash()));
  const c = new Driver();
  c.createTenant(1);
  c.sql(1, 'CREATE TABLE p (id INTEGER PRIMARY KEY, v TEXT)');
  c.submit(1, { kind: 'sql', statements: [{ sql: "INSERT INTO p VALUES (1, 'x')", params: [] }] }, 'someone else');
  t.not(hex(a.kernel.stateHash()), hex(c.kernel.stateHash()), 'the actor is part of the state (via __events)');
});

t.test('SELECT … AS OF POSITION p equals the same SELECT on a replay of the prefix up to p', async (t) => {
  let compared = 0;
  fc.assert(fc.property(history(25), (steps) => {
    const d = drive(steps);
    for (let p = 2; p <= d.log.length; p++) {
      const prefix = replay(d.log, p);
      const stamp = d.log[p - 1]?.timestampMicros as number;
      for (const tenant of [1, 2]) {
        for (const table of HISTORY_TABLES) {
          const order = table === '__events' ? 'position, index' : 'id';
          const expected = observe(prefix, tenant, `SELECT * FROM ${table} ORDER BY ${order}`);
          const asOf = observe(d.kernel, tenant, `SELECT * FROM ${table} AS OF POSITION ${p} ORDER BY ${order}`);
          const atPosition = observe(d.kernel, tenant, `SELECT * FROM ${table} ORDER BY ${order}`, p);
          const micros = stamp % 1_000_000;
          const date = new Date(Math.floor(stamp / 1000)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
          const asOfTime = observe(d.kernel, tenant, `SELECT * FROM ${table} AS OF TIMESTAMP '${date}.${String(micros).padStart(6, '0')}' ORDER BY ${order}`);
          if (expected !== asOf || expected !== atPosition || expected !== asOfTime) {
            t.fail(`p=${p} tenant=${tenant} ${table}: prefix ${expected} / AS OF ${asOf} / at ${atPosition} / AS OF TIMESTAMP ${asOfTime}`);
            return false;
          }
          compared++;
        }
      }
    }
    return true;
  }), { seed, numRuns: 25 });
  t.ok(compared > 100, `compared ${compared} reads`);
});

function replayReplyKind(d: Driver, index: number): string {
  return d.replies[index]?.reply.kind ?? 'missing';
}
