import t from 'tap';
import type { Session } from '@veritydb/client';
import { IndeterminateError, Verity } from '../src/index.js';

// The client's scripted wire server (packages/client/testing), loaded from its build: it lets a
// test lose a reply, which a real server does not do on demand.
type FakeServerModule = typeof import('../../client/testing/fake-server.js');
const { FakeServer, intResult } = await import(new URL('../../../client/dist/testing/fake-server.js', import.meta.url).href) as FakeServerModule;

type Request = Awaited<ReturnType<FakeServerModule['FakeServer']['start']>>['requests'][number];

const TOKEN = 'good-token';

function sessionOf(request: Request): Session | null {
  return request.body.kind === 'execute' ? request.body.session : null;
}

t.test('a write whose reply is lost is sent again with the same session and request number', async (t) => {
  let dropped = false;
  const server = await FakeServer.start({
    token: TOKEN,
    onRequest: (request, connection) => {
      if (request.body.kind === 'register') return connection.send(intResult(request.id, [], true, 0, 1));
      if (request.body.kind !== 'execute') return undefined;
      if (!dropped) {
        dropped = true;
        connection.socket.destroy(); // the write may have happened; its reply never arrives
        return undefined;
      }
      return connection.send(intResult(request.id, [], true, 0, 9));
    },
  });
  t.teardown(() => server.stop());
  const db = await Verity.connect({ addresses: [server.address], token: TOKEN });
  t.teardown(() => db.close());
  const w = await db.tenant(1).execute('INSERT INTO p VALUES (1)', [], { timeoutMs: 5_000 });
  t.equal(w.position, 9, 'the retry got the reply');
  const executes = server.requests.filter((r) => r.body.kind === 'execute');
  t.equal(executes.length, 2);
  const [first, second] = executes.map(sessionOf);
  t.ok(first !== null && first !== undefined && first.clientId !== 0n);
  t.same(second, first, 'the retry carries the same client id and request number');
  t.equal(first?.requestNumber, 1);
  t.equal(server.requests.filter((r) => r.body.kind === 'register').length, 1);
  t.equal(server.connections.length, 2, 'the retry went over a new connection');

  await db.tenant(1).execute('INSERT INTO p VALUES (2)');
  const third = server.requests.filter((r) => r.body.kind === 'execute').map(sessionOf)[2];
  t.same(third, { clientId: first?.clientId, requestNumber: 2 }, 'the next write takes the next number');
});

t.test('without server sessions, writes go without one and a lost reply is indeterminate', async (t) => {
  const server = await FakeServer.start({
    token: TOKEN,
    onRequest: (request, connection) => {
      if (request.body.kind === 'register') {
        return connection.send({ requestId: request.id, body: { kind: 'error', error: { code: 'SqlError', message: 'not implemented', sqlState: '0A000', line: 0, column: 0 } } });
      }
      if (request.body.kind !== 'execute') return undefined;
      if (request.body.statements[0]?.sql.includes('lost') === true) {
        connection.socket.destroy();
        return undefined;
      }
      return connection.send(intResult(request.id, [], true, 0, 4));
    },
  });
  t.teardown(() => server.stop());
  const db = await Verity.connect({ addresses: [server.address], token: TOKEN });
  t.teardown(() => db.close());
  const writes = await Promise.all([1, 2, 3].map((i) => db.tenant(1).execute(`INSERT INTO p VALUES (${i})`)));
  t.same(writes.map((w) => w.position), [4, 4, 4]);
  await t.rejects(db.tenant(1).execute("INSERT INTO p VALUES ('lost')"), IndeterminateError);
  const executes = server.requests.filter((r) => r.body.kind === 'execute');
  t.equal(executes.length, 4, 'the lost write was not retried');
  t.ok(executes.every((r) => sessionOf(r) === null));
  t.equal(server.requests.filter((r) => r.body.kind === 'register').length, 1, 'the server is asked once');
});

t.test('concurrent writes share at most sessionsMax sessions, one write in flight on each', async (t) => {
  const inFlight = new Map<bigint, number>();
  let overlap = false;
  const server = await FakeServer.start({
    token: TOKEN,
    onRequest: (request, connection) => {
      if (request.body.kind === 'register') return connection.send(intResult(request.id, [], true, 0, 1));
      const session = sessionOf(request);
      if (session === null) return undefined;
      const count = (inFlight.get(session.clientId) ?? 0) + 1;
      if (count > 1) overlap = true;
      inFlight.set(session.clientId, count);
      setTimeout(() => {
        inFlight.set(session.clientId, (inFlight.get(session.clientId) ?? 1) - 1);
        connection.send(intResult(request.id, [], true, 0, 2));
      }, 5);
      return undefined;
    },
  });
  t.teardown(() => server.stop());
  const db = await Verity.connect({ addresses: [server.address], token: TOKEN, sessionsMax: 2 });
  t.teardown(() => db.close());
  await Promise.all(Array.from({ length: 7 }, (_, i) => db.tenant(1).execute(`INSERT INTO p VALUES (${i})`)));
  t.notOk(overlap, 'never two writes in flight on one session');
  t.equal(server.requests.filter((r) => r.body.kind === 'register').length, 2);
  const numbers = new Map<bigint, number[]>();
  for (const session of server.requests.map(sessionOf)) {
    if (session !== null) numbers.set(session.clientId, [...(numbers.get(session.clientId) ?? []), session.requestNumber]);
  }
  t.equal([...numbers.values()].flat().length, 7);
  t.equal(numbers.size, 2);
  for (const list of numbers.values()) t.same(list, list.map((_, i) => i + 1), 'each session numbers its writes 1, 2, 3, …');
});
