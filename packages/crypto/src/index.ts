export { initCrypto, cryptoReady, blake3, blake3Into, blake3Backend, blake3Reference, createBlake3Hasher, createBlake3ReferenceHasher, type Blake3Hasher } from './blake3.js';
export { crc32 } from './crc32.js';
export {
  ed25519Keygen, ed25519KeyId, ed25519PublicKey, ed25519Sign, ed25519Verify, ed25519Portable, type Ed25519KeyPair,
  ED25519_SECRET_KEY_BYTES, ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES,
} from './ed25519.js';
export { aeadSeal, aeadOpen, AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AEAD_OVERHEAD_BYTES } from './aead.js';
export { hkdfSha256, HKDF_SHA256_OUTPUT_BYTES_MAX } from './hkdf.js';
