import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, randomBytes, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { assert } from '@veritydb/types';

/**
 * Ed25519 signatures. Keys are raw bytes: a 32-byte secret seed and a 32-byte public key;
 * signatures are 64 bytes (RFC 8032). Signing and verifying run on `node:crypto` (~20× faster
 * than pure JavaScript); `ed25519Portable` offers the same operations via `@noble/curves` for
 * code that must run outside Node (offline verifiers). Both produce identical signatures.
 */

export const ED25519_SECRET_KEY_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

export interface Ed25519KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

// DER prefixes that wrap a raw Ed25519 key as PKCS#8 (private) and SPKI (public).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function concat(a: Uint8Array, b: Uint8Array): Buffer {
  return Buffer.concat([a, b]);
}

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  assert(secretKey.length === ED25519_SECRET_KEY_BYTES, `ed25519 secret key must be 32 bytes, got ${secretKey.length}`);
  return createPrivateKey({ key: concat(PKCS8_PREFIX, secretKey), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  assert(publicKey.length === ED25519_PUBLIC_KEY_BYTES, `ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  return createPublicKey({ key: concat(SPKI_PREFIX, publicKey), format: 'der', type: 'spki' });
}

/**
 * The key id of a public key: the first 16 hex digits of its SHA-256 (named in tokens and in
 * export head statements).
 *
 * @example ed25519KeyId(publicKey) // e.g. '3f2a9c0d11b7e845'
 */
export function ed25519KeyId(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16);
}

/** The public key of a secret seed. */
export function ed25519PublicKey(secretKey: Uint8Array): Uint8Array {
  const der = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(SPKI_PREFIX.length));
}

/**
 * A fresh key pair from the operating system's CSPRNG.
 *
 * @example const { secretKey, publicKey } = ed25519Keygen();
 */
export function ed25519Keygen(): Ed25519KeyPair {
  const secretKey = new Uint8Array(randomBytes(ED25519_SECRET_KEY_BYTES));
  return { secretKey, publicKey: ed25519PublicKey(secretKey) };
}

/**
 * Signs `message`; deterministic (same key and message, same signature).
 *
 * @example const signature = ed25519Sign(secretKey, message);
 */
export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, privateKeyObject(secretKey)));
}

/**
 * True when `signature` is a valid signature of `message` by `publicKey`. Malformed keys or
 * signatures (wrong length) are rejected with `false`, since they arrive from outside.
 *
 * @example ed25519Verify(publicKey, message, signature) === true
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    return nodeVerify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The same operations in portable JavaScript (`@noble/curves`), for code outside Node. */
export const ed25519Portable = Object.freeze({
  publicKey(secretKey: Uint8Array): Uint8Array {
    assert(secretKey.length === ED25519_SECRET_KEY_BYTES, 'ed25519 secret key must be 32 bytes');
    return ed25519.getPublicKey(secretKey);
  },
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
    assert(secretKey.length === ED25519_SECRET_KEY_BYTES, 'ed25519 secret key must be 32 bytes');
    return ed25519.sign(message, secretKey);
  },
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return false;
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
});
