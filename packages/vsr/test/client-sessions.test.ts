import t from 'tap';
import { Client, SessionTable, type ClientEffect } from '../src/index.js';

const body = new Uint8Array([1]);
const sent = (effects: ClientEffect[]) => effects.filter((e) => e.kind === 'send');

t.test('session table: register, duplicate, stale, eviction of the least recently committed', async (t) => {
  const table = new SessionTable(2);
  t.same(table.check(1n, 0, 0), { kind: 'new' });
  t.equal(table.register(1n, 10), undefined);
  t.equal(table.register(2n, 11), undefined);
  t.match(table.check(1n, 0, 0), { kind: 'duplicate', op: 10 });
  t.same(table.check(1n, 10, 1), { kind: 'new' });
  table.commit(1n, 1, new Uint8Array([7]), 12);
  t.match(table.check(1n, 10, 1), { kind: 'duplicate', op: 12, reply: new Uint8Array([7]) });
  t.same(table.check(1n, 10, 0), { kind: 'stale' });
  t.same(table.check(1n, 99, 2), { kind: 'evicted' }, 'another session of the same client');
  t.equal(table.register(3n, 13), 2n, 'client 2 committed least recently');
  t.same(table.check(2n, 11, 1), { kind: 'evicted' });
  t.equal(table.size, 2);
  t.throws(() => table.commit(1n, 1, body, 14), 'a request commits once');
});

t.test('client: register, numbered requests, same number on retry, discovery, indeterminate', async (t) => {
  const client = new Client({ client: 5n, replicaCount: 3, retryTicks: 2, timeoutTicks: 7 });
  const [first] = sent(client.register());
  t.match(first, { to: 0, message: { request: 0, operation: 'register' } });
  t.same(client.onMessage({ kind: 'reply', from: 1, view: 4, client: 6n, request: 0, session: 3, op: 3, body }), [], 'not ours');
  t.same(client.onMessage({ kind: 'reply', from: 1, view: 4, client: 5n, request: 0, session: 3, op: 3, body }), [{ kind: 'registered', session: 3 }]);
  t.ok(client.registered);
  const [request] = sent(client.submit(body));
  t.match(request, { to: 1, message: { request: 1, session: 3 } }, 'goes to the primary of the view learned from the reply');
  client.onTick();
  const [retry] = sent(client.onTick());
  t.match(retry, { to: 2, message: { request: 1, session: 3 } }, 'retries keep the request number, next replica');
  for (let i = 0; i < 4; i++) client.onTick();
  t.same(client.onTick(), [{ kind: 'indeterminate', request: 1 }]);
  t.notOk(client.busy);
  const [next] = sent(client.submit(body));
  t.match(next, { message: { request: 2 } }, 'a new request gets a new number');
  t.same(client.onMessage({ kind: 'eviction', from: 1, view: 4, client: 5n, session: 9 }), [], 'eviction of another session ignored');
  t.same(client.onMessage({ kind: 'eviction', from: 1, view: 4, client: 5n, session: 3 }), [{ kind: 'evicted', request: 2 }]);
  t.notOk(client.registered);
});
