import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { seedFrom } from '@veritydb/types';
import { decodeReply, encodeReply } from '../src/codec/reply.js';
import { Driver } from '../testing/driver.js';
import { history } from '../testing/histories.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);

t.test('every reply of random histories round-trips and re-encodes to identical bytes', async (t) => {
  let replies = 0;
  fc.assert(fc.property(history(30), (steps) => {
    const d = new Driver();
    for (const s of steps) {
      const { reply } = d.submit(s.tenant, s.command);
      const bytes = encodeReply(reply);
      const decoded = decodeReply(bytes);
      if (!decoded.ok || !isDeepStrictEqual(structuredClone(decoded.value), structuredClone(reply))) return false;
      if (!Buffer.from(encodeReply(decoded.value)).equals(Buffer.from(bytes))) return false;
      replies++;
    }
    return true;
  }), { seed, numRuns: 30 });
  t.ok(replies > 100, `${replies} replies`);
});

t.test('RETURNING rows, registrations and rejections with positions survive the codec', async (t) => {
  const d = new Driver();
  d.createTenant(1);
  d.sql(1, 'CREATE TABLE p (id BIGINT PRIMARY KEY, doc JSON, b BYTES, at TIMESTAMP)');
  const returning = d.sql(1, "INSERT INTO p VALUES (1, '{\"a\":[1]}', '\\x0102', '2024-01-01 00:00:00.5') RETURNING *").reply;
  t.same(decodeReply(encodeReply(returning)), { ok: true, value: returning });
  const syntax = d.sql(1, 'SELEC 1').reply;
  t.match(decodeReply(encodeReply(syntax)), { ok: true, value: { kind: 'rejected', error: { code: 'SyntaxError', line: 1, statement: 0 } } });
  const registered = d.submit(0, { kind: 'client_register', client: 12n as never }).reply;
  t.same(decodeReply(encodeReply(registered)), { ok: true, value: registered });
  t.match(decodeReply(new Uint8Array([2, 0])), { ok: false, reason: /version 2/ });
  t.match(decodeReply(new Uint8Array([1, 9])), { ok: false, reason: /kind/ });
  const bytes = encodeReply(returning);
  t.match(decodeReply(bytes.subarray(0, bytes.length - 1)), { ok: false });
});
