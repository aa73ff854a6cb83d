import type { ClientId, ClusterId, Position, ReplicaIndex, TenantId } from '@veritydb/types';
import type { ClientMessage, ServerMessage, WireValue } from '../src/index.js';

/**
 * The messages behind the byte vectors in PROTOCOL.md, by vector name. The test encodes each
 * and compares with the document byte for byte, and decodes the document's bytes back.
 */
export const VALUE_LIST_VECTOR: readonly WireValue[] = [
  { kind: 'null' },
  { kind: 'bool', value: false },
  { kind: 'bool', value: true },
  { kind: 'int64', value: -1n },
  { kind: 'int64', value: 300n },
  { kind: 'float64', value: 1.5 },
  { kind: 'text', value: 'é' },
  { kind: 'bytes', value: new Uint8Array([0xca, 0xfe]) },
  { kind: 'date', value: '2024-02-29' },
  { kind: 'timestamp', value: 1_700_000_000_000_000n },
  { kind: 'json', value: { b: [1, null], a: 'x' } },
];

export const ROW_BLOCK_VECTOR = {
  columns: [{ name: 'id', type: 'BIGINT' }, { name: 'name', type: 'TEXT' }] as const,
  rows: [
    [{ kind: 'int64', value: 1n }, { kind: 'text', value: 'Ann' }],
    [{ kind: 'int64', value: 2n }, { kind: 'null' }],
  ] as WireValue[][],
};

export const CLIENT_VECTORS: Readonly<Record<string, ClientMessage>> = {
  'client-hello': {
    kind: 'hello',
    hello: {
      versions: [1], role: 'client', token: 'secret', clientName: 'sdk', clusterId: 0n as ClusterId,
      replicaIndex: 0 as ReplicaIndex,
    },
  },
  'execute': {
    kind: 'request',
    request: {
      id: 1n,
      body: {
        kind: 'execute', tenant: 7 as TenantId, atomic: true,
        statements: [{ sql: 'INSERT INTO p VALUES ($1)', params: [{ kind: 'int64', value: 42n }] }],
        session: { clientId: 0x1234n as ClientId, requestNumber: 1 },
        options: { consistency: 'causal', position: 10 as Position, timeoutMs: 5000, rowsLimit: 0 },
      },
    },
  },
};

export const SERVER_VECTORS: Readonly<Record<string, ServerMessage>> = {
  'verify-broken': {
    kind: 'response',
    response: {
      requestId: 4n,
      body: {
        kind: 'verify',
        verify: {
          checked: 41, total: 100, head: 100 as Position,
          outcome: { kind: 'broken', position: 42 as Position, reason: 'crc', detail: 'bad crc', file: 'log/0.seg' },
        },
      },
    },
  },
  'server-hello': {
    kind: 'hello',
    hello: {
      version: 1, clusterId: 0x1n as ClusterId, replicaIndex: 0 as ReplicaIndex, replicaCount: 3,
      primary: { index: 0 as ReplicaIndex, address: '10.0.0.1:7420' },
    },
  },
  'result': {
    kind: 'response',
    response: {
      requestId: 2n,
      body: {
        kind: 'result',
        result: {
          statementIndex: 0, columns: ROW_BLOCK_VECTOR.columns, rows: ROW_BLOCK_VECTOR.rows, rowsAffected: 0,
          position: 11 as Position, final: true,
        },
      },
    },
  },
  'error-not-primary': {
    kind: 'response',
    response: {
      requestId: 1n,
      body: {
        kind: 'error',
        error: { code: 'NotPrimary', message: 'not the primary', primary: { index: 2 as ReplicaIndex, address: '10.0.0.3:7420' } },
      },
    },
  },
  'error-bad-frame': {
    kind: 'response',
    response: { requestId: 0n, body: { kind: 'error', error: { code: 'BadFrame', message: 'bad magic' } } },
  },
};
