import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createBLAKE3, type IHasher } from 'hash-wasm';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { assert, checksum, type Checksum, CHECKSUM_BYTES } from '@veritydb/types';

/**
 * BLAKE3-256. The hot path runs hash-wasm's WebAssembly build, which must be instantiated
 * asynchronously once per process: `await initCrypto()` at startup. Until then `blake3`
 * computes with the reference implementation (`@noble/hashes`): identical digests (a property
 * test proves it), about ten times slower. Nothing else differs, so a forgotten `initCrypto`
 * costs speed, never correctness.
 *
 * The log hashes two small inputs per record (a body and a 192-byte header), where hash-wasm's
 * JavaScript wrapper costs as much as the hashing itself (a view, a subarray and a digest copy
 * per call, three calls into WebAssembly). So `initCrypto` instantiates hash-wasm's own BLAKE3
 * module a second time and drives its exports directly: the input is copied into the module's
 * buffer, one call hashes it, the digest is copied out to where the caller wants it. The module
 * is loaded from the installed hash-wasm and is used only if it has the expected exports and
 * agrees with the reference on known inputs; otherwise the wrapper is used (slower, same digests).
 */

/** The exports of hash-wasm's BLAKE3 module (hash-wasm `src/blake3.c`). */
interface Blake3Exports {
  readonly memory: { readonly buffer: ArrayBuffer };
  Hash_GetBuffer(): number;
  Hash_Init(keyBytes: number): void;
  Hash_Update(bytes: number): void;
  Hash_Final(digestBytes: number): void;
  Hash_Calculate(bytes: number, keyBytes: number, digestBytes: number): void;
}

/** The part of the WebAssembly global used here (the compiler options load no DOM types). */
interface WebAssemblyApi {
  instantiate(bytes: Uint8Array): Promise<{ instance: { exports: Record<string, unknown> } }>;
}

/** Size of the module's input buffer (`MAIN_BUFFER_SIZE` in hash-wasm's `hash-wasm.h`). */
const MODULE_BUFFER_BYTES = 16 * 1024;
/** Inputs checked against the reference before the direct module is trusted. */
const SELF_TEST_LENGTHS = [0, 1, 63, 64, 65, 192, 256, 1023, 1024, 1025, MODULE_BUFFER_BYTES, MODULE_BUFFER_BYTES + 1, 40_000];

/** hash-wasm's BLAKE3 module driven through its exports: no allocation per digest. */
class DirectBlake3 {
  readonly #exports: Blake3Exports;
  #input = new Uint8Array(0);
  #digest = new Uint8Array(0);

  constructor(exports: Blake3Exports) {
    this.#exports = exports;
    this.#mapBuffer();
  }

  /** Writes BLAKE3-256 of `bytes` to `target[offset, offset + 32)`. */
  hashInto(bytes: Uint8Array, target: Uint8Array, offset: number): void {
    // A grown memory detaches the old views (this module never grows it; stay correct anyway).
    if (this.#input.byteLength === 0) this.#mapBuffer();
    const wasm = this.#exports;
    if (bytes.length <= MODULE_BUFFER_BYTES) {
      this.#input.set(bytes);
      wasm.Hash_Calculate(bytes.length, 0, CHECKSUM_BYTES);
    } else {
      wasm.Hash_Init(0);
      for (let at = 0; at < bytes.length; at += MODULE_BUFFER_BYTES) {
        const chunk = bytes.subarray(at, at + MODULE_BUFFER_BYTES);
        this.#input.set(chunk);
        wasm.Hash_Update(chunk.length);
      }
      wasm.Hash_Final(CHECKSUM_BYTES);
    }
    target.set(this.#digest, offset);
  }

  #mapBuffer(): void {
    const buffer = this.#exports.memory.buffer;
    const start = this.#exports.Hash_GetBuffer();
    assert(start + MODULE_BUFFER_BYTES <= buffer.byteLength, 'blake3 module buffer lies inside its memory');
    this.#input = new Uint8Array(buffer, start, MODULE_BUFFER_BYTES);
    this.#digest = new Uint8Array(buffer, start, CHECKSUM_BYTES);
  }
}

let direct: DirectBlake3 | undefined;
let shared: IHasher | undefined;
let initializing: Promise<void> | undefined;

/**
 * Instantiates the WebAssembly hashers. Idempotent; safe to call concurrently.
 *
 * @example await initCrypto(); const digest = blake3(bytes);
 */
export function initCrypto(): Promise<void> {
  initializing ??= Promise.all([createBLAKE3(CHECKSUM_BYTES * 8), loadDirectBlake3()]).then(([hasher, module]) => {
    shared = hasher;
    direct = module;
  });
  return initializing;
}

/** Which implementation `blake3` runs on: the bench and the tests check the fast one is in use. */
export function blake3Backend(): 'wasm-direct' | 'hash-wasm' | 'reference' {
  return direct !== undefined ? 'wasm-direct' : shared !== undefined ? 'hash-wasm' : 'reference';
}

async function loadDirectBlake3(): Promise<DirectBlake3 | undefined> {
  try {
    // hash-wasm ships each algorithm's module as base64 inside its per-algorithm bundle.
    const path = createRequire(import.meta.url).resolve('hash-wasm/dist/blake3.umd.min.js');
    const found = /"(AGFzbQ[A-Za-z0-9+/]+={0,2})"/.exec(await readFile(path, 'utf8'));
    if (found?.[1] === undefined) return undefined;
    const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const { instance } = await wasm.instantiate(Buffer.from(found[1], 'base64'));
    const exports = instance.exports;
    const functions = ['Hash_GetBuffer', 'Hash_Init', 'Hash_Update', 'Hash_Final', 'Hash_Calculate'];
    if (!functions.every((name) => typeof exports[name] === 'function')) return undefined;
    if (!(typeof exports['memory'] === 'object' && exports['memory'] !== null)) return undefined;
    const module = new DirectBlake3(exports as unknown as Blake3Exports);
    return agreesWithReference(module) ? module : undefined;
  } catch {
    return undefined;
  }
}

function agreesWithReference(module: DirectBlake3): boolean {
  const digest = new Uint8Array(CHECKSUM_BYTES);
  for (const length of SELF_TEST_LENGTHS) {
    const input = Uint8Array.from({ length }, (_, i) => (i * 251 + length) & 0xff);
    module.hashInto(input, digest, 0);
    if (Buffer.compare(digest, blake3Reference(input)) !== 0) return false;
  }
  return true;
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
  if (direct !== undefined) {
    const digest = new Uint8Array(CHECKSUM_BYTES);
    direct.hashInto(bytes, digest, 0);
    return digest as Checksum;
  }
  if (shared === undefined) return blake3Reference(bytes);
  const digest = shared.init().update(bytes).digest('binary');
  assert(digest.length === CHECKSUM_BYTES, 'blake3 digest is 32 bytes');
  return digest as Checksum;
}

/**
 * BLAKE3-256 of `bytes` written to `target[offset, offset + 32)`, synchronous: no allocation on
 * the WebAssembly path. `target` may be the buffer `bytes` lies in (the input is copied first).
 *
 * @example blake3Into(header.subarray(0, 192), header, 192);
 */
export function blake3Into(bytes: Uint8Array, target: Uint8Array, offset: number): void {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + CHECKSUM_BYTES <= target.length)) {
    assert(false, `blake3Into: offset ${offset} leaves no 32 bytes in a target of ${target.length}`);
  }
  if (direct !== undefined) direct.hashInto(bytes, target, offset);
  else target.set(blake3(bytes), offset);
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
