export { assert, assertNever, AssertionError } from './assert.js';
export {
  type Brand, type Position, type View, type ReplicaIndex, type TenantId, type ClientId, type ClusterId,
  type Checksum, CHECKSUM_BYTES, CHECKSUM_ZERO, U128_MAX, position, view, replicaIndex, tenantId, clientId,
  clusterId, checksum, checksumEqual, checksumHex,
} from './brand.js';
export { VerityError, isVerityError } from './errors.js';
export { limits, type Limits } from './limits.js';
export { Prng, seedFrom } from './prng.js';
