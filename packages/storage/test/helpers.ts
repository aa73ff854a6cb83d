import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  clientId, clusterId, position, tenantId, view, type ClusterId, type Position,
} from '@veritydb/types';
import type { RecordFields } from '../src/index.js';

export const CLUSTER: ClusterId = clusterId(0x0123_4567_89ab_cdef_0011_2233_4455_6677n);

/** A fresh directory under the OS temp dir, removed when the test ends. */
export async function tempDir(t: { teardown(fn: () => Promise<void> | void): void }, label = 'storage'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `veritydb-${label}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface RecordSpec {
  readonly tenant: number;
  readonly bodyBytes: number;
}

/** A deterministic record for `at`: the body bytes derive from the position. */
export function makeRecord(at: number, spec: RecordSpec = { tenant: 1, bodyBytes: 32 }): RecordFields {
  const body = new Uint8Array(spec.bodyBytes);
  for (let i = 0; i < body.length; i++) body[i] = (at * 131 + i * 7) & 0xff;
  return {
    view: view(at % 7),
    position: position(at),
    commit: position(Math.max(0, at - 3)),
    timestamp: 1_700_000_000_000_000 + at,
    client: clientId(BigInt(at % 5) << 100n),
    request: at % 1000,
    tenant: tenantId(spec.tenant),
    operation: at % 256,
    body,
  };
}

export function makeRecords(first: number, specs: readonly RecordSpec[]): RecordFields[] {
  return specs.map((spec, i) => makeRecord(first + i, spec));
}

export function asPosition(value: number): Position {
  return position(value);
}

/** The record the crash-test child writes at each position (so the parent can check content). */
export function crashRecord(at: number): RecordFields {
  return makeRecord(at, { tenant: at % 4, bodyBytes: (at * 37) % 500 });
}
