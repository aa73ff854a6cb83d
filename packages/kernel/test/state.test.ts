import t from 'tap';
import { clientId, limits, position, tenantId } from '@veritydb/types';
import { emptyCatalog, applyCatalogChange } from '@veritydb/query';
import { KernelState } from '../src/state.js';

t.test('kernel state encodes canonically and decodes to the same bytes', async (t) => {
  const build = (order: readonly number[]): KernelState => {
    const state = new KernelState();
    for (let p = 1; p <= 6; p++) state.timestamps.append(position(p), 1000 + p * 7);
    for (const id of order) state.addTenant({ id: tenantId(id), name: `t${id}`, createdAt: position(id), droppedAt: null });
    state.setCatalog(tenantId(2), position(5), applyCatalogChange(emptyCatalog(), {
      kind: 'createTable', table: { name: 'p', columns: [{ name: 'id', type: 'BIGINT', notNull: true, default: null }], primaryKey: ['id'], indexes: [] },
    }));
    state.dropTenant(tenantId(3), position(6));
    for (const client of order) state.registerSession(clientId(BigInt(client) * 1000n), position(client));
    return state;
  };
  const a = build([1, 2, 3]);
  const b = build([3, 1, 2]);
  t.same(Buffer.from(a.encode()), Buffer.from(b.encode()), 'insertion order does not change the bytes');
  const decoded = KernelState.decode(a.encode());
  if (!decoded.ok) throw new Error(decoded.reason);
  t.same(Buffer.from(decoded.value.encode()), Buffer.from(a.encode()));
  t.equal(decoded.value.catalogAt(tenantId(2), position(4))?.tables.length, 0, 'catalog before the DDL');
  t.equal(decoded.value.catalogAt(tenantId(2), position(5))?.tables.length, 1, 'catalog from the DDL on');
  t.equal(decoded.value.catalogAt(tenantId(2), position(1)), undefined, 'no catalog before the tenant');
  t.equal(decoded.value.tenantAt(tenantId(2), position(5))?.name, 't2');
  t.equal(decoded.value.tenantAt(tenantId(2), position(1)), undefined, 'not created yet');
  t.equal(decoded.value.tenantAt(tenantId(3), position(5)), undefined, 'dropped at 6: its past is erased too');
  t.equal(decoded.value.tenants.get(tenantId(3))?.droppedAt, 6);
  t.equal(decoded.value.liveTenant(tenantId(3)), undefined);
  t.match(KernelState.decode(new Uint8Array([9])), { ok: false, reason: /version 9/ });
  const truncated = a.encode().subarray(0, 20);
  t.match(KernelState.decode(truncated), { ok: false });
});

t.test('the session table evicts the least recently registered session when full', async (t) => {
  const state = new KernelState();
  let early = 0;
  for (let i = 0; i < limits.clientSessionsMax; i++) if (state.registerSession(clientId(BigInt(i + 10)), position(i + 1)) !== undefined) early++;
  t.equal(early, 0, 'no eviction below the limit');
  state.registerSession(clientId(10n), position(limits.clientSessionsMax + 1));
  const evicted = state.registerSession(clientId(99_999n), position(limits.clientSessionsMax + 2));
  t.equal(evicted, 11n, 'client 10 re-registered, so 11 is the oldest');
  t.equal(state.sessions.size, limits.clientSessionsMax);
});
