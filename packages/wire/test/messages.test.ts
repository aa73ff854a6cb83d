import t from 'tap';
import fc from 'fast-check';
import { isVerityError, seedFrom, type ClusterId, type Position, type TenantId } from '@veritydb/types';
import {
  DEFAULT_REQUEST_OPTIONS, FrameDecoder, decodeClientMessage, decodeRequest, decodeResponse, decodeServerMessage,
  encodeClientMessage, encodeFrame, encodeRequest, encodeResponse, encodeServerMessage, isFinalResponse,
  type BackupFileChunk, type ClientMessage, type Request, type Response, type ServerMessage, type VerifyOutcome,
} from '../src/index.js';
import * as arb from './arbitraries.js';

const seed = seedFrom(process.env, arb.freshSeed);
t.comment(`SEED=${seed}`);
const runs = { seed, numRuns: 300 };

function roundTripClient(message: ClientMessage): void {
  const payload = encodeClientMessage(message);
  const decoded = decodeClientMessage(payload);
  if (!decoded.ok) throw new Error(`rejected its own encoding: ${decoded.reason}`);
  if (arb.canon(decoded.value) !== arb.canon(message)) throw new Error(`changed in transit:\n${arb.canon(message)}\n${arb.canon(decoded.value)}`);
  const again = encodeClientMessage(decoded.value);
  if (Buffer.compare(again, payload) !== 0) throw new Error('re-encoding gave different bytes');
}

function roundTripServer(message: ServerMessage): void {
  const payload = encodeServerMessage(message);
  const decoded = decodeServerMessage(payload);
  if (!decoded.ok) throw new Error(`rejected its own encoding: ${decoded.reason}`);
  if (arb.canon(decoded.value) !== arb.canon(message)) throw new Error(`changed in transit:\n${arb.canon(message)}\n${arb.canon(decoded.value)}`);
  const again = encodeServerMessage(decoded.value);
  if (Buffer.compare(again, payload) !== 0) throw new Error('re-encoding gave different bytes');
}

t.test('every message kind round-trips exactly', async (t) => {
  const kinds: [string, fc.Arbitrary<unknown>, (m: never) => void][] = [
    ['client hello', arb.clientHello.map((hello): ClientMessage => ({ kind: 'hello', hello })), roundTripClient],
    ['server hello', arb.serverHello.map((hello): ServerMessage => ({ kind: 'hello', hello })), roundTripServer],
  ];
  for (const body of ['execute', 'query', 'subscribe', 'admin', 'cancel', 'register'] as const) {
    kinds.push([`request ${body}`, arb.request.filter((r) => r.body.kind === body)
      .map((request): ClientMessage => ({ kind: 'request', request })), roundTripClient]);
  }
  for (const body of ['result', 'error', 'tenants', 'status', 'token', 'verify', 'exportChunk', 'backupFile', 'backupDone'] as const) {
    kinds.push([`response ${body}`, arb.response.filter((r) => r.body.kind === body)
      .map((response): ServerMessage => ({ kind: 'response', response })), roundTripServer]);
  }
  for (const [name, arbitrary, check] of kinds) {
    t.doesNotThrow(() => fc.assert(fc.property(arbitrary, (m) => check(m as never)), runs), name);
  }
});

t.test('every admin operation and error code is covered by the arbitraries', async (t) => {
  const seen = new Set<string>();
  fc.assert(fc.property(arb.request, arb.response, (request, response) => {
    if (request.body.kind === 'admin') seen.add(`admin:${request.body.admin.op}`);
    if (response.body.kind === 'error') seen.add(`error:${response.body.error.code}`);
  }), { seed, numRuns: 4000 });
  t.ok(seen.has('admin:createToken') && seen.has('admin:listTenants') && seen.has('admin:verify') && seen.has('admin:exportTenant') && seen.has('admin:backup') &&
    seen.has('error:NotPrimary') && seen.has('error:SqlError'),
    [...seen].sort().join(' '));
});

t.test('a stream of frames decodes the same in any chunking as whole', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(
    fc.array(arb.clientMessage, { minLength: 1, maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
    (messages, cuts) => {
      const stream = Buffer.concat(messages.map((m) => encodeFrame(encodeClientMessage(m))));
      const whole = new FrameDecoder().push(stream);
      if (whole.error !== null || whole.frames.length !== messages.length) throw new Error('whole-buffer decode failed');
      const chunked = new FrameDecoder();
      const frames: Uint8Array[] = [];
      let offset = 0;
      for (let i = 0; offset < stream.length; i++) {
        const size = cuts[i % cuts.length] as number;
        const step = chunked.push(stream.subarray(offset, offset + size));
        if (step.error !== null) throw new Error(step.error.message);
        frames.push(...step.frames.map((f) => f.payload));
        offset += size;
      }
      if (chunked.finish() !== null) throw new Error('bytes left over');
      if (frames.length !== messages.length) throw new Error(`${frames.length} frames for ${messages.length} messages`);
      frames.forEach((payload, i) => {
        const decoded = decodeClientMessage(payload);
        if (!decoded.ok || arb.canon(decoded.value) !== arb.canon(messages[i])) throw new Error(`message ${i} differs`);
        if (Buffer.compare(payload, whole.frames[i]?.payload ?? new Uint8Array()) !== 0) throw new Error(`frame ${i} differs`);
      });
    }), { seed, numRuns: 200 }));
});

t.test('encoders refuse messages the peer would reject, with a typed error', async (t) => {
  const base: Request = {
    id: 1n,
    body: { kind: 'query', tenant: 1 as TenantId, statement: { sql: 'SELECT 1', params: [] }, options: DEFAULT_REQUEST_OPTIONS },
  };
  const cases: [string, Request][] = [
    ['request id 0', { ...base, id: 0n }],
    ['request id above u64', { ...base, id: 1n << 64n }],
    ['empty SQL', { ...base, body: { ...base.body, statement: { sql: '', params: [] } } as Request['body'] }],
    ['atPosition without a position', { ...base, body: { ...base.body, options: { ...DEFAULT_REQUEST_OPTIONS, consistency: 'atPosition' } } as Request['body'] }],
    ['eventual with a position', { ...base, body: { ...base.body, options: { ...DEFAULT_REQUEST_OPTIONS, consistency: 'eventual', position: 5 as Position } } as Request['body'] }],
    ['tenant beyond 2^53', { ...base, body: { ...base.body, tenant: 2 ** 53 as TenantId } as Request['body'] }],
    ['no statements', { id: 1n, body: { kind: 'execute', tenant: 1 as TenantId, statements: [], atomic: true, session: null, options: DEFAULT_REQUEST_OPTIONS } }],
    ['lone surrogate in SQL', { ...base, body: { ...base.body, statement: { sql: 'SELECT \ud800', params: [] } } as Request['body'] }],
    ['int64 out of range', { ...base, body: { ...base.body, statement: { sql: 'SELECT $1', params: [{ kind: 'int64', value: 1n << 63n }] } } as Request['body'] }],
    ['impossible date', { ...base, body: { ...base.body, statement: { sql: 'SELECT $1', params: [{ kind: 'date', value: '2023-02-29' }] } } as Request['body'] }],
    ['register with a request number', { id: 1n, body: { kind: 'register', session: { clientId: 1n as never, requestNumber: 3 } } }],
  ];
  for (const [name, request] of cases) {
    t.ok(throwsBadRequest(() => encodeRequest(request)), name);
  }
  t.ok(decodeRequest(encodeRequest(base)).ok, 'the base case itself is valid');
});

t.test('a streamed result: several frames with one request id, the last one final', async (t) => {
  const frames = [0, 1, 2].map((i) => encodeFrame(encodeResponse({
    requestId: 9n,
    body: {
      kind: 'result',
      result: {
        statementIndex: 0, columns: [{ name: 'n', type: 'BIGINT' }], rows: [[{ kind: 'int64', value: BigInt(i) }]],
        rowsAffected: 0, position: 4 as Position, final: i === 2,
      },
    },
  })));
  const { frames: decoded, error } = new FrameDecoder().push(Buffer.concat(frames));
  t.equal(error, null);
  const responses = decoded.map((frame) => decodeResponse(frame.payload));
  t.same(responses.map((r) => r.ok && r.value.requestId), [9n, 9n, 9n]);
  t.same(responses.map((r) => r.ok && isFinalResponse(r.value)), [false, false, true]);
});

t.test('verify reports and export chunks: final only at the end; bounds are enforced both ways', async (t) => {
  const report = (outcome: VerifyOutcome): Response => ({ requestId: 4n, body: { kind: 'verify', verify: { checked: 10, total: 20, head: 20 as Position, outcome } } });
  t.notOk(isFinalResponse(report({ kind: 'progress' })), 'a progress report is not final');
  t.ok(isFinalResponse(report({ kind: 'ok' })), 'ok is final');
  t.ok(isFinalResponse(report({ kind: 'broken', position: 7 as Position, reason: 'crc', detail: 'x', file: '/f' })), 'broken is final');
  const chunk = (data: Uint8Array, final: boolean): Response => ({ requestId: 5n, body: { kind: 'exportChunk', chunk: { data, final } } });
  t.notOk(isFinalResponse(chunk(new Uint8Array(3), false)));
  t.ok(isFinalResponse(chunk(new Uint8Array(0), true)));
  const largest = chunk(new Uint8Array(1024 * 1024).fill(7), true);
  const decoded = decodeResponse(encodeResponse(largest));
  t.ok(decoded.ok && decoded.value.body.kind === 'exportChunk' && decoded.value.body.chunk.data.length === 1024 * 1024, 'a 1 MiB chunk round-trips');
  t.ok(throwsBadRequest(() => encodeResponse(chunk(new Uint8Array(1024 * 1024 + 1), false))), 'a chunk above 1 MiB is refused');
  t.ok(throwsBadRequest(() => encodeResponse(report({ kind: 'broken', position: 0 as Position, reason: 'crc', detail: '', file: '' }))), 'a broken position 0 is refused');
  t.ok(throwsBadRequest(() => encodeResponse(report({ kind: 'broken', position: 3 as Position, reason: '', detail: '', file: '' }))), 'a fault needs a reason');
  t.ok(throwsBadRequest(() => encodeRequest({ id: 1n, body: { kind: 'admin', admin: { op: 'exportTenant', tenant: 0 as TenantId } } })), 'export of tenant 0 is refused');
  const whole = decodeRequest(encodeRequest({ id: 1n, body: { kind: 'admin', admin: { op: 'verify', tenant: null } } }));
  t.same(whole.ok && whole.value.body, { kind: 'admin', admin: { op: 'verify', tenant: null } }, 'a whole-log verify is tenant 0 on the wire');
});

t.test('backup chunks and the backup summary: final only at the summary; paths, offsets, hashes and bounds are enforced both ways', async (t) => {
  const hash = new Uint8Array(32).fill(9);
  const file = (fields: Partial<BackupFileChunk>): Response => ({
    requestId: 6n, body: { kind: 'backupFile', file: { path: 'log/00000000.segment', mode: 0o600, bytes: 10, offset: 0, data: new Uint8Array(10), blake3: hash, ...fields } },
  });
  const done = (stateHash: Uint8Array): Response => ({
    requestId: 6n, body: { kind: 'backupDone', done: { clusterId: 7n as ClusterId, position: 12 as Position, stateHash, files: 3, bytes: 100 } },
  });
  t.notOk(isFinalResponse(file({})), 'a file chunk is not final (even a file\'s last)');
  t.ok(isFinalResponse(done(hash)), 'the summary is final');
  const decoded = decodeResponse(encodeResponse(file({ bytes: 3 * 1024 * 1024, offset: 1024 * 1024, data: new Uint8Array(1024 * 1024).fill(5), blake3: null })));
  t.ok(decoded.ok && decoded.value.body.kind === 'backupFile' && decoded.value.body.file.data.length === 1024 * 1024 && decoded.value.body.file.blake3 === null,
    'a 1 MiB chunk in the middle of a file round-trips, without a hash');
  t.ok(throwsBadRequest(() => encodeResponse(file({ bytes: 2 * 1024 * 1024 + 2, data: new Uint8Array(1024 * 1024 + 1), blake3: null }))), 'a chunk above 1 MiB is refused');
  t.ok(throwsBadRequest(() => encodeResponse(file({ blake3: null }))), 'a file\'s last chunk carries its hash');
  t.ok(throwsBadRequest(() => encodeResponse(file({ bytes: 20 }))), 'only the last chunk carries a hash');
  t.ok(throwsBadRequest(() => encodeResponse(file({ blake3: new Uint8Array(31) }))), 'a hash is 32 bytes');
  t.ok(throwsBadRequest(() => encodeResponse(file({ offset: 5 }))), 'a chunk ends inside its file');
  t.ok(throwsBadRequest(() => encodeResponse(file({ bytes: 0, data: new Uint8Array(0), mode: 0o1777 }))), 'mode is permission bits only');
  t.ok(throwsBadRequest(() => encodeResponse(file({ bytes: 4, offset: 2, data: new Uint8Array(0), blake3: null }))), 'an empty chunk is an empty file only');
  for (const path of ['/etc/passwd', '../x', 'log/../../x', 'a//b', './a', 'a/', '', 'a\\b']) {
    t.ok(throwsBadRequest(() => encodeResponse(file({ path }))), `path ${JSON.stringify(path)} is refused`);
  }
  t.ok(throwsBadRequest(() => encodeResponse(done(new Uint8Array(16)))), 'a state hash is 32 bytes');
  const request = decodeRequest(encodeRequest({ id: 2n, body: { kind: 'admin', admin: { op: 'backup' } } }));
  t.same(request.ok && request.value.body, { kind: 'admin', admin: { op: 'backup' } }, 'the backup request round-trips');
});

t.test('decodeRequest and decodeResponse refuse the other kind of message', async (t) => {
  const hello = encodeClientMessage({
    kind: 'hello',
    hello: { versions: [1], role: 'client', token: 'tok', clientName: '', clusterId: 0n as never, replicaIndex: 0 as never },
  });
  const decoded = decodeRequest(hello);
  t.notOk(decoded.ok);
  t.match(decoded.ok ? '' : decoded.reason, /hello/);
  const serverHello = encodeServerMessage({
    kind: 'hello', hello: { version: 1, clusterId: 1n as never, replicaIndex: 0 as never, replicaCount: 1, primary: null },
  });
  t.notOk(decodeResponse(serverHello).ok);
});

function throwsBadRequest(action: () => unknown): boolean {
  try {
    action();
    return false;
  } catch (error) {
    return isVerityError(error, 'BadRequest');
  }
}

t.test('overlapping Cap\'n Proto pointers cannot amplify the decoding work', async (t) => {
  // One large statement and 200 small ones; then every small statement's sql pointer is bent to
  // the large text, so 18 kB of payload would decode as ~3.6 MB of SQL.
  const big = 'A'.repeat(18_000);
  const statements = [{ sql: big, params: [] }, ...Array.from({ length: 200 }, () => ({ sql: 'B', params: [] }))];
  const request: Request = {
    id: 1n,
    body: { kind: 'execute', tenant: 1 as TenantId, statements, atomic: true, session: null, options: DEFAULT_REQUEST_OPTIONS },
  };
  const payload = encodeRequest(request);
  t.ok(decodeRequest(payload).ok, 'the honest message decodes');

  const words = new DataView(payload.buffer, payload.byteOffset + 8);
  const segmentWords = (payload.length - 8) / 8;
  const startsWith = (word: number, text: string): boolean =>
    Buffer.from(payload.subarray(8 + word * 8, 8 + word * 8 + text.length)).toString('latin1') === text;
  let bigTarget = -1;
  const smallPointers: number[] = [];
  for (let w = 0; w < segmentWords; w++) {
    const low = words.getUint32(w * 8, true);
    if ((low & 3) !== 1) continue; // list pointers only
    const target = w + 1 + (low >> 2);
    if (startsWith(target, 'AAAA')) bigTarget = target;
    else if (startsWith(target, 'B\u0000')) smallPointers.push(w);
  }
  t.ok(bigTarget > 0 && smallPointers.length === 200, `found the texts (${smallPointers.length} small pointers)`);
  const bigPointerHigh = (() => {
    for (let w = 0; w < segmentWords; w++) {
      const low = words.getUint32(w * 8, true);
      if ((low & 3) === 1 && w + 1 + (low >> 2) === bigTarget) return words.getUint32(w * 8 + 4, true);
    }
    return 0;
  })();
  for (const w of smallPointers) {
    words.setUint32(w * 8, (((bigTarget - w - 1) << 2) | 1) >>> 0, true);
    words.setUint32(w * 8 + 4, bigPointerHigh, true);
  }
  const decoded = decodeRequest(payload);
  t.notOk(decoded.ok, 'the amplified message is rejected');
  t.match(decoded.ok ? '' : decoded.reason, /overlapping pointers/);
});

t.test('Cap\'n Proto text must be valid UTF-8 with its NUL terminator', async (t) => {
  const query = (sql: string): Request => ({
    id: 3n, body: { kind: 'query', tenant: 1 as TenantId, statement: { sql, params: [] }, options: DEFAULT_REQUEST_OPTIONS },
  });
  const accented = encodeRequest(query('SELECT \u00e9'));
  const at = Buffer.from(accented).indexOf(Buffer.from('SELECT \u00e9'));
  t.ok(at > 0);
  accented[at + 7] = 0xff;
  const bad = decodeRequest(accented);
  t.match(bad.ok ? '' : bad.reason, /invalid UTF-8/);

  const plain = encodeRequest(query('SELECT 1'));
  const end = Buffer.from(plain).indexOf(Buffer.from('SELECT 1')) + 8;
  t.equal(plain[end], 0, 'the terminator is where expected');
  plain[end] = 0x20;
  const unterminated = decodeRequest(plain);
  t.match(unterminated.ok ? '' : unterminated.reason, /NUL/);
});
