export { assert, assertNever, AssertionError } from './assert.js';
export {
  type Brand, type Position, type View, type ReplicaIndex, type TenantId, type ClientId, type ClusterId,
  type Checksum, CHECKSUM_BYTES, CHECKSUM_ZERO, U128_MAX, position, view, replicaIndex, tenantId, clientId,
  clusterId, checksum, checksumEqual, checksumHex,
} from './brand.js';
export { VerityError, isVerityError } from './errors.js';
export { limits, type Limits } from './limits.js';
export { Prng, seedFrom } from './prng.js';
export {
  SQL_TYPES, type SqlType, type JsonValue, type Value, type Row, type Key, compareValues, compareKeys,
  compareBytes, canonicalJson,
} from './value.js';
export type {
  KeyBound, KeyRange, ScanOptions, TableLayout, IndexLayout, TableReader, TableWriter,
} from './table.js';
