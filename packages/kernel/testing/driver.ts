import { checksum, position, tenantId, type Checksum, type TenantId } from '@veritydb/types';
import { Kernel, type ApplyResult } from '../src/kernel.js';
import { encodeEnvelope, type Command } from '../src/codec/command.js';
import type { Param } from '../src/codec/value.js';

/** One logged entry as the tests keep it: what a log would hold. */
export interface Entry {
  readonly tenant: TenantId;
  readonly timestampMicros: number;
  readonly body: Uint8Array;
}

export const EPOCH_MICROS = 1_700_000_000_000_000;

/** A fake entry hash that differs per position (the kernel only records it). */
export function fakeHash(at: number): Checksum {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, at, true);
  bytes[31] = 0xab;
  return checksum(bytes);
}

/** Drives a kernel the way the runtime does: a log of entries, applied in order. */
export class Driver {
  readonly log: Entry[] = [];
  readonly replies: ApplyResult[] = [];
  kernel = Kernel.create();

  submit(tenant: number, command: Command, actor = 'tester'): ApplyResult {
    const entry: Entry = { tenant: tenantId(tenant), timestampMicros: EPOCH_MICROS + (this.log.length + 1) * 1000, body: encodeEnvelope({ tenant: tenantId(tenant), actor, command }) };
    this.log.push(entry);
    const result = applyEntry(this.kernel, entry, this.log.length);
    this.replies.push(result);
    return result;
  }

  createTenant(id: number, name = `t${id}`): ApplyResult {
    return this.submit(id, { kind: 'tenant_create', id: tenantId(id), name });
  }

  sql(tenant: number, sql: string, params: readonly Param[] = []): ApplyResult {
    return this.submit(tenant, { kind: 'sql', statements: [{ sql, params }] });
  }

  batch(tenant: number, statements: readonly { sql: string; params?: readonly Param[] }[]): ApplyResult {
    return this.submit(tenant, { kind: 'sql', statements: statements.map((s) => ({ sql: s.sql, params: s.params ?? [] })) });
  }
}

export function applyEntry(kernel: Kernel, entry: Entry, at: number): ApplyResult {
  return kernel.apply({ position: position(at), timestampMicros: entry.timestampMicros, tenant: entry.tenant, hash: fakeHash(at) }, entry.body);
}

/** A fresh kernel that applied `log[0, upTo)`. */
export function replay(log: readonly Entry[], upTo = log.length, from?: Kernel): Kernel {
  const kernel = from ?? Kernel.create();
  for (let at = kernel.head + 1; at <= upTo; at++) applyEntry(kernel, log[at - 1] as Entry, at);
  return kernel;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
