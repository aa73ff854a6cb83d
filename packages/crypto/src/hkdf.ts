import { hkdfSync } from 'node:crypto';
import { assert } from '@veritydb/types';

/** Longest output HKDF-SHA256 can derive (255 blocks of 32 bytes). */
export const HKDF_SHA256_OUTPUT_BYTES_MAX = 255 * 32;

/**
 * HKDF-SHA256 (RFC 5869): derives `length` bytes from input key material, a salt and a
 * context label. Used to derive key-encryption keys from the cluster master key.
 *
 * @example const kek = hkdfSha256(masterKey, salt, new TextEncoder().encode('veritydb kek v1'), 32);
 */
export function hkdfSha256(inputKeyMaterial: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assert(Number.isInteger(length) && length > 0 && length <= HKDF_SHA256_OUTPUT_BYTES_MAX, `HKDF length must be in [1, ${HKDF_SHA256_OUTPUT_BYTES_MAX}], got ${length}`);
  return new Uint8Array(hkdfSync('sha256', inputKeyMaterial, salt, info, length));
}
