import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { assert, VerityError } from '@veritydb/types';

/**
 * AES-256-GCM authenticated encryption with associated data. A sealed box is
 * `nonce (12) | ciphertext | tag (16)`; the nonce is random per seal, so one key may seal up to
 * ~2^32 messages before nonce collisions become a concern (rotate data keys well before).
 */

export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
/** Bytes a sealed box adds to its plaintext. */
export const AEAD_OVERHEAD_BYTES = AEAD_NONCE_BYTES + AEAD_TAG_BYTES;

/**
 * Encrypts and authenticates `plaintext`, binding `associatedData` (authenticated, not stored).
 * `nonce` is for tests only; omit it in production.
 *
 * @example const box = aeadSeal(key, plaintext, tenantIdBytes);
 */
export function aeadSeal(key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array, nonce?: Uint8Array): Uint8Array {
  assert(key.length === AEAD_KEY_BYTES, `AES-256-GCM key must be 32 bytes, got ${key.length}`);
  const iv = nonce ?? randomBytes(AEAD_NONCE_BYTES);
  assert(iv.length === AEAD_NONCE_BYTES, `AES-256-GCM nonce must be 12 bytes, got ${iv.length}`);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(associatedData);
  const out = new Uint8Array(plaintext.length + AEAD_OVERHEAD_BYTES);
  out.set(iv, 0);
  const body = cipher.update(plaintext);
  out.set(body, AEAD_NONCE_BYTES);
  const final = cipher.final();
  out.set(final, AEAD_NONCE_BYTES + body.length);
  out.set(cipher.getAuthTag(), AEAD_NONCE_BYTES + plaintext.length);
  return out;
}

/**
 * Decrypts a sealed box. A box that was altered, sealed under another key or with other
 * associated data is rejected with `VerityError` code `DecryptionFailed`.
 *
 * @example const plaintext = aeadOpen(key, box, tenantIdBytes);
 */
export function aeadOpen(key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array): Uint8Array {
  assert(key.length === AEAD_KEY_BYTES, `AES-256-GCM key must be 32 bytes, got ${key.length}`);
  if (sealed.length < AEAD_OVERHEAD_BYTES) {
    throw new VerityError('DecryptionFailed', `sealed box of ${sealed.length} bytes is shorter than its ${AEAD_OVERHEAD_BYTES}-byte overhead`);
  }
  const iv = sealed.subarray(0, AEAD_NONCE_BYTES);
  const tagOffset = sealed.length - AEAD_TAG_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: AEAD_TAG_BYTES });
  decipher.setAAD(associatedData);
  decipher.setAuthTag(sealed.subarray(tagOffset));
  const body = decipher.update(sealed.subarray(AEAD_NONCE_BYTES, tagOffset));
  try {
    const final = decipher.final();
    return final.length === 0 ? new Uint8Array(body) : new Uint8Array(Buffer.concat([body, final]));
  } catch {
    throw new VerityError('DecryptionFailed', 'sealed box failed authentication (tampered, wrong key or wrong associated data)');
  }
}
