/**
 * Micro-benchmark of the wire codec: one JSON line per measurement on stdout.
 *
 *   npx tsc -b packages/wire && node packages/wire/dist/bench/codec.bench.js
 */
import type { Position, TenantId } from '@veritydb/types';
import {
  DEFAULT_REQUEST_OPTIONS, FrameDecoder, decodeRequest, decodeResponse, encodeFrame, encodeRequest, encodeResponse,
  type Request, type Response, type WireValue,
} from '../src/index.js';

function measure(name: string, iterations: number, bytesPerOp: number, run: () => void): void {
  for (let i = 0; i < Math.min(iterations, 1000); i++) run();
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const line: Record<string, unknown> = {
    bench: `wire.${name}`, iterations, opsPerSec: Math.round(iterations / seconds), microsPerOp: +(seconds * 1e6 / iterations).toFixed(2),
  };
  if (bytesPerOp > 0) line['megabytesPerSec'] = +(bytesPerOp * iterations / seconds / 1e6).toFixed(1);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const request: Request = {
  id: 1n,
  body: {
    kind: 'execute', tenant: 1 as TenantId, atomic: true, session: null, options: DEFAULT_REQUEST_OPTIONS,
    statements: [{ sql: 'INSERT INTO patients (id, name, born) VALUES ($1, $2, $3)', params: [
      { kind: 'int64', value: 17n }, { kind: 'text', value: 'Ann Example' }, { kind: 'date', value: '1980-05-17' },
    ] }],
  },
};
const requestPayload = encodeRequest(request);
measure('encodeRequest.small', 20_000, requestPayload.length, () => encodeRequest(request));
measure('decodeRequest.small', 20_000, requestPayload.length, () => decodeRequest(requestPayload));

const rows: WireValue[][] = Array.from({ length: 1000 }, (_, i) => [
  { kind: 'int64', value: BigInt(i) }, { kind: 'text', value: `name ${i}` }, { kind: 'float64', value: i / 3 },
]);
const response: Response = {
  requestId: 1n,
  body: {
    kind: 'result',
    result: {
      statementIndex: 0, rows, rowsAffected: 0, position: 100 as Position, final: true,
      columns: [{ name: 'id', type: 'BIGINT' }, { name: 'name', type: 'TEXT' }, { name: 'score', type: 'DOUBLE' }],
    },
  },
};
const responsePayload = encodeResponse(response);
measure('encodeResponse.1000rows', 500, responsePayload.length, () => encodeResponse(response));
measure('decodeResponse.1000rows', 500, responsePayload.length, () => decodeResponse(responsePayload));

const stream = Buffer.concat(Array.from({ length: 1000 }, () => encodeFrame(requestPayload)));
measure('FrameDecoder.push.1000frames', 200, stream.length, () => {
  const decoder = new FrameDecoder();
  for (let offset = 0; offset < stream.length; offset += 1460) decoder.push(stream.subarray(offset, offset + 1460));
});
