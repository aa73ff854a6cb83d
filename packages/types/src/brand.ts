import { assert } from './assert.js';

declare const brand: unique symbol;
/** A nominal type: a `Position` is a number, but a number is not a `Position`. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Op number of a log entry in its cluster: starts at 1, dense, strictly increasing. 0 = none. */
export type Position = Brand<number, 'Position'>;
/** A VSR view number. */
export type View = Brand<number, 'View'>;
/** Index of a replica in the cluster configuration, 0-based. */
export type ReplicaIndex = Brand<number, 'ReplicaIndex'>;
/** Numeric tenant id (u64 on disk, a safe integer in memory). 0 is the system tenant. */
export type TenantId = Brand<number, 'TenantId'>;
/** A client session id (u128). */
export type ClientId = Brand<bigint, 'ClientId'>;
/** A cluster id (u128). */
export type ClusterId = Brand<bigint, 'ClusterId'>;
/** A 32-byte BLAKE3-256 digest. */
export type Checksum = Brand<Uint8Array, 'Checksum'>;

export const CHECKSUM_BYTES = 32;
export const U128_MAX = (1n << 128n) - 1n;

function safeUint(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} must be a non-negative safe integer, got ${value}`);
}

export function position(value: number): Position {
  safeUint(value, 'position');
  return value as Position;
}
export function view(value: number): View {
  assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `view must be a u32, got ${value}`);
  return value as View;
}
export function replicaIndex(value: number): ReplicaIndex {
  assert(Number.isInteger(value) && value >= 0 && value < 256, `replica index must be in [0, 256), got ${value}`);
  return value as ReplicaIndex;
}
export function tenantId(value: number): TenantId {
  safeUint(value, 'tenant id');
  return value as TenantId;
}
export function clientId(value: bigint): ClientId {
  assert(value >= 0n && value <= U128_MAX, `client id must be a u128, got ${value}`);
  return value as ClientId;
}
export function clusterId(value: bigint): ClusterId {
  assert(value >= 0n && value <= U128_MAX, `cluster id must be a u128, got ${value}`);
  return value as ClusterId;
}
export function checksum(bytes: Uint8Array): Checksum {
  assert(bytes.length === CHECKSUM_BYTES, `checksum must be ${CHECKSUM_BYTES} bytes, got ${bytes.length}`);
  return bytes as Checksum;
}
/** The all-zero checksum: `prevHash` of the first record, `tenantPrevHash` of a tenant's first. */
export const CHECKSUM_ZERO: Checksum = checksum(new Uint8Array(CHECKSUM_BYTES));

export function checksumEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function checksumHex(value: Uint8Array): string {
  // One flat string: `+=` builds a rope of one piece per byte, which is what stays alive when the
  // result is stored (every entry's `__events` hash) — several hundred bytes each.
  const pairs = new Array<string>(value.length);
  for (let i = 0; i < value.length; i++) pairs[i] = HEX[value[i] as number] as string;
  return pairs.join('');
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
