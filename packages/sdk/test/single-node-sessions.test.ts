import t from 'tap';
import { Verity } from '../src/index.js';
import { startServer } from '../testing/vdb-server.js';

// The server's reply-losing relay (packages/server/testing/lossy-relay.ts), loaded from its build
// (the SDK's project does not reference the server's).
interface LossyRelay { readonly address: string; loseNextReply(): void; lost(): number }
type RelayModule = { lossyRelay(teardown: (fn: () => Promise<void> | void) => void, target: string): Promise<LossyRelay> };
const { lossyRelay } = await import(new URL('../../../server/dist/testing/lossy-relay.js', import.meta.url).href) as RelayModule;

t.test('SDK against a single-node vdb-server: a write whose reply is lost is retried and applied once', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  const relay = await lossyRelay(t.teardown, server.address);
  const db = await Verity.connect({ addresses: [relay.address], token: server.token });
  t.teardown(() => db.close());
  await db.createTenant({ id: 1, name: 'clinic' });
  const tn = db.tenant(1);
  await tn.execute('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT)'); // registers the handle's session

  relay.loseNextReply();
  const w = await tn.execute('INSERT INTO p (id, name) VALUES ($1, $2) RETURNING id, name', [1, 'Ann'], { timeoutMs: 10_000 });
  t.equal(relay.lost(), 1, 'the first reply was lost');
  t.same(w.rows, [{ id: 1, name: 'Ann' }], 'the retry got the original RETURNING rows (a second execution would violate the key)');
  const events = await tn.query("SELECT position FROM __events WHERE stream = 'p' AND event_type = 'insert'");
  t.same(events.rows, [{ position: w.position }], 'one insert, at the position the SDK reports');
  t.same((await tn.query('SELECT count(*) AS n FROM p')).rows, [{ n: 1 }]);
});
