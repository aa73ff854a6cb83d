import t from 'tap';
import { CHECKSUM_ZERO, checksumHex, position, Prng, tenantId, type TenantId } from '@veritydb/types';
import { encodeEnvelope, encodeReply, Kernel, type Param, type Reply } from '@veritydb/kernel';
import { Checker, SafetyViolation } from '../src/checker.js';
import { optionsForSeed, Simulator } from '../src/cluster.js';
import { KernelMachine } from '../src/kernel-machine.js';
import { checkReply, checkStateAtReply, markerOf, nextRequest, TABLE_DDL, type WorkRequest } from '../src/workload.js';

t.test('the simulator runs the real kernel: every replica ends in the same state, __events carries the log hashes', async (t) => {
  const simulator = new Simulator(optionsForSeed(3, { replicaCount: 3 }));
  const result = simulator.run();
  t.ok(result.ok, result.failure ?? 'ok');
  t.ok(result.stats.stateHashChecks > 3, `${result.stats.stateHashChecks} state hash comparisons`);
  t.ok(result.stats.stateReads > 50, `${result.stats.stateReads} reads checked at reply positions`);
  const kernel = simulator.kernel(0);
  t.ok(kernel !== undefined);
  if (kernel === undefined) return;
  t.equal(kernel.head, result.stats.committedOps, 'the kernel position is the VSR op');
  const tenantsWithRows: TenantId[] = [];
  let rejected = 0;
  let events = 0;
  const wrongHashes: string[] = [];
  for (const tenant of [tenantId(1), tenantId(2), tenantId(3)]) {
    const read = kernel.read(tenant, 'SELECT position, event_type, hash FROM __events', []);
    if (!read.ok) continue;
    for (const row of read.rows) {
      const header = simulator.checker.committedAt(Number(row[0]));
      if (header === undefined || checksumHex(header.checksum) !== row[2]) wrongHashes.push(String(row[0]));
      if (row[1] === 'rejected') rejected += 1;
      events += 1;
    }
    const items = kernel.read(tenant, 'SELECT count(*) FROM items', []);
    if (items.ok && Number(items.rows[0]?.[0]) > 0) tenantsWithRows.push(tenant);
  }
  t.ok(events > 50, `${events} events`);
  t.same(wrongHashes, [], '__events.hash is the log header checksum at every position');
  t.ok(tenantsWithRows.length >= 2, `tenants with rows: ${tenantsWithRows.join(',')}`);
  t.ok(rejected > 0, `${rejected} rejected entries recorded`);
});

/** A kernel with tenants 1 and 2 and their tables, applied by hand. */
function twoTenants(): { kernel: Kernel; apply: (tenant: TenantId, sql: string, params: Param[]) => Reply } {
  const kernel = Kernel.create();
  const step = (body: Uint8Array): Reply =>
    kernel.apply({ position: position(kernel.head + 1), timestampMicros: 1000 * (kernel.head + 1), hash: CHECKSUM_ZERO }, body).reply;
  for (const tenant of [tenantId(1), tenantId(2)]) {
    step(encodeEnvelope({ tenant, actor: 't', command: { kind: 'tenant_create', id: tenant, name: `t${tenant}` } }));
    step(encodeEnvelope({ tenant, actor: 't', command: { kind: 'sql', statements: [{ sql: TABLE_DDL, params: [] }] } }));
  }
  const apply = (tenant: TenantId, sql: string, params: Param[]): Reply =>
    step(encodeEnvelope({ tenant, actor: 't', command: { kind: 'sql', statements: [{ sql, params }] } }));
  return { kernel, apply };
}

function insertRequest(tenant: TenantId, id: number): WorkRequest {
  const statements = [{ sql: 'INSERT INTO items (id, v, marker) VALUES ($1, $2, $3)', params: [id, 1, markerOf(tenant)] }];
  return { kind: 'insert', tenant, ids: [id], statements, body: encodeEnvelope({ tenant, actor: 't', command: { kind: 'sql', statements } }) };
}

t.test('a restarted replica replays its durable log into a fresh kernel and reaches the state it crashed in', async (t) => {
  const result = new Simulator(optionsForSeed(1, { replicaCount: 3 })).run();
  t.ok(result.ok, result.failure ?? 'ok');
  t.ok(result.stats.crashes > 0, `${result.stats.crashes} crashes`);
  t.ok(result.stats.restartStateHashChecks > 0, `${result.stats.restartStateHashChecks} replayed states compared with the state before the crash`);
});

t.test('the isolation check fails when a tenant sees another tenant\'s row', async (t) => {
  const { kernel, apply } = twoTenants();
  const reply = apply(tenantId(1), 'INSERT INTO items (id, v, marker) VALUES ($1, $2, $3)', [1, 1, markerOf(tenantId(1))]);
  checkStateAtReply(kernel, insertRequest(tenantId(1), 1), reply, kernel.head, [tenantId(1), tenantId(2)], new Map());
  const leak = apply(tenantId(1), 'INSERT INTO items (id, v, marker) VALUES ($1, $2, $3)', [2, 1, markerOf(tenantId(2))]);
  t.throws(() => checkStateAtReply(kernel, insertRequest(tenantId(1), 2), leak, kernel.head, [tenantId(1), tenantId(2)], new Map()),
    new SafetyViolation(`tenant 1 read at op ${kernel.head}: sees row 2 with marker ${markerOf(tenantId(2))}`));
});

t.test('the state check fails when a reply reports an insert the state does not hold', async (t) => {
  const { kernel, apply } = twoTenants();
  const reply = apply(tenantId(1), 'INSERT INTO items (id, v, marker) VALUES ($1, $2, $3)', [1, 1, markerOf(tenantId(1))]);
  t.throws(() => checkStateAtReply(kernel, insertRequest(tenantId(1), 7), reply, kernel.head, [tenantId(1)], new Map()), /inserted key 7 is missing/);
});

t.test('a reply that says a failing batch applied is caught', async (t) => {
  const prng = new Prng(1);
  const progress = { tenantExists: true, tableExists: true };
  let request = nextRequest(tenantId(1), 'c1', progress, prng);
  while (request.kind !== 'failing_batch') request = nextRequest(tenantId(1), 'c1', progress, prng);
  const applied = encodeReply({ kind: 'sql', statements: request.statements.map(() => ({ rowsAffected: 1, columns: [], rows: [] })) });
  t.throws(() => checkReply(request, applied, 9), /a batch with a failing statement was applied/);
  t.throws(() => checkReply(request, new Uint8Array([0xff]), 9), /does not decode/);
});

t.test('replicas that disagree on the state hash at an op fail the checker', async (t) => {
  const checker = new Checker(4);
  t.ok(checker.wantsStateHash(8));
  t.notOk(checker.wantsStateHash(9));
  checker.onStateHash(0, 9, 'aa', true);
  t.ok(checker.wantsStateHash(9), 'a crash point is compared too');
  checker.onStateHash(1, 9, 'aa');
  t.throws(() => checker.onStateHash(0, 9, 'bb'), /state hash at op 9/);
});

t.test('the kernel machine applies executed ops, skips the rest as noops, and records the header checksum', async (t) => {
  const seen: number[] = [];
  const machine = new KernelMachine((op) => seen.push(op));
  const tenant = tenantId(1);
  const checksum = new Uint8Array(32).fill(7) as typeof CHECKSUM_ZERO;
  machine.skip({ op: 1, timestampUs: 10, client: 1n, body: new Uint8Array(0), checksum: CHECKSUM_ZERO });
  const reply = machine.apply({
    op: 2, timestampUs: 20, client: 1n, checksum,
    body: encodeEnvelope({ tenant, actor: 'c1', command: { kind: 'tenant_create', id: tenant, name: 'one' } }),
  });
  t.same(reply, encodeReply({ kind: 'tenant_created', tenant }));
  t.same(seen, [1, 2]);
  const events = machine.kernel.read(tenant, 'SELECT position, hash FROM __events', []);
  t.ok(events.ok);
  if (events.ok) t.same(events.rows, [[2, checksumHex(checksum)]]);
});
