import { createBLAKE3, type IHasher } from 'hash-wasm';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { assert, checksum, type Checksum, CHECKSUM_BYTES } from '@veritydb/types';

/**
 * BLAKE3-256. The hot path runs hash-wasm's WebAssembly build, which must be instantiated
 * asynchronously once per process: `await initCrypto()` at startup. Until then `blake3`
 * computes with the reference implementation (`@noble/hashes`): identical digests (a property
 * test proves it), about ten times slower. Nothing else differs, so a forgotten `initCrypto`
 * costs speed, never correctness.
 */

let shared: IHasher | undefined;
let initializing: Promise<void> | undefined;

/**
 * Instantiates the WebAssembly hashers. Idempotent; safe to call concurrently.
 *
 * @example await initCrypto(); const digest = blake3(bytes);
 */
export function initCrypto(): Promise<void> {
  initializing ??= createBLAKE3(CHECKSUM_BYTES * 8).then((hasher) => {
    shared = hasher;
  });
  return initializing;
}

/** True once `initCrypto()` has resolved and `blake3` runs on the WebAssembly build. */
export function cryptoReady(): boolean {
  return shared !== undefined;
}

/**
 * BLAKE3-256 of `bytes`, synchronous.
 *
 * @example const digest = blake3(new TextEncoder().encode('abc')); // 32 bytes
 */
export function blake3(bytes: Uint8Array): Checksum {
  if (shared === undefined) return blake3Reference(bytes);
  const digest = shared.init().update(bytes).digest('binary');
  assert(digest.length === CHECKSUM_BYTES, 'blake3 digest is 32 bytes');
  return digest as Checksum;
}

/**
 * BLAKE3-256 by `@noble/hashes`: pure JavaScript, portable (browsers, offline verifiers).
 *
 * @example checksumEqual(blake3Reference(b), blake3(b)) === true
 */
export function blake3Reference(bytes: Uint8Array): Checksum {
  return checksum(nobleBlake3(bytes, { dkLen: CHECKSUM_BYTES }));
}

/** An incremental BLAKE3-256 hasher: `update` any number of times, then `digest` once. */
export interface Blake3Hasher {
  update(bytes: Uint8Array): Blake3Hasher;
  digest(): Checksum;
}

/**
 * A fresh incremental hasher with its own WebAssembly instance (so several can be in use at
 * once without sharing state). Async because instantiation is.
 *
 * @example const h = await createBlake3Hasher(); h.update(a).update(b); const d = h.digest();
 */
export async function createBlake3Hasher(): Promise<Blake3Hasher> {
  const hasher = (await createBLAKE3(CHECKSUM_BYTES * 8)).init();
  let done = false;
  const wrapper: Blake3Hasher = {
    update(bytes) {
      assert(!done, 'blake3 hasher used after digest');
      hasher.update(bytes);
      return wrapper;
    },
    digest() {
      assert(!done, 'blake3 hasher digested twice');
      done = true;
      return checksum(hasher.digest('binary'));
    },
  };
  return wrapper;
}

/** The reference incremental hasher (`@noble/hashes`), synchronous. */
export function createBlake3ReferenceHasher(): Blake3Hasher {
  const hasher = nobleBlake3.create({ dkLen: CHECKSUM_BYTES });
  const wrapper: Blake3Hasher = {
    update(bytes) {
      hasher.update(bytes);
      return wrapper;
    },
    digest() {
      return checksum(hasher.digest());
    },
  };
  return wrapper;
}
