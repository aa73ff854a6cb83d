import t from 'tap';
import fc from 'fast-check';
import CRC32 from 'crc-32';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { seedFrom, checksumHex, isVerityError } from '@veritydb/types';
import {
  initCrypto, cryptoReady, blake3, blake3Into, blake3Backend, blake3Reference, createBlake3Hasher, createBlake3ReferenceHasher, crc32,
  ed25519Keygen, ed25519PublicKey, ed25519Sign, ed25519Verify, ed25519Portable, aeadSeal, aeadOpen,
  AEAD_OVERHEAD_BYTES, hkdfSha256,
} from '../src/index.js';

const seed = seedFrom(process.env, () => Date.now() % 1_000_000);
t.comment(`SEED=${seed}`);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

t.test('blake3 known answers, before and after initCrypto', async (t) => {
  // BLAKE3 official test vector for the empty input.
  const empty = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';
  t.equal(checksumHex(blake3Reference(new Uint8Array(0))), empty);
  t.equal(checksumHex(blake3(new Uint8Array(0))), empty, 'fallback before init');
  await initCrypto();
  await initCrypto();
  t.ok(cryptoReady());
  t.equal(checksumHex(blake3(new Uint8Array(0))), empty, 'wasm');
  t.equal(checksumHex(blake3(text('abc'))), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
});

t.test('wasm blake3 equals the noble reference over random inputs', async (t) => {
  await initCrypto();
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 5000 }), (bytes) => {
    return checksumHex(blake3(bytes)) === checksumHex(blake3Reference(bytes));
  }), { seed, numRuns: 300 });
  // Inputs around the 1 KiB chunk boundary and larger trees.
  for (const n of [1023, 1024, 1025, 2048, 65_537, 1 << 20]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
    t.equal(checksumHex(blake3(bytes)), checksumHex(blake3Reference(bytes)), `${n} bytes`);
  }
});

t.test('blake3Into writes the digest in place, over the module buffer size and into the buffer it hashes', async (t) => {
  await initCrypto();
  t.equal(blake3Backend(), 'wasm-direct', 'the hot path drives hash-wasm\'s module directly in this install');
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 40_000 }), fc.nat(64), (bytes, offset) => {
    const target = new Uint8Array(offset + 32 + 5).fill(0xee);
    blake3Into(bytes, target, offset);
    const untouched = target.subarray(0, offset).every((b) => b === 0xee) && target.subarray(offset + 32).every((b) => b === 0xee);
    return untouched && checksumHex(target.subarray(offset, offset + 32)) === checksumHex(blake3Reference(bytes));
  }), { seed, numRuns: 120 });
  // The log hashes a header's first 192 bytes into its own last 32.
  const header = Uint8Array.from({ length: 224 }, (_, i) => (i * 7) & 0xff);
  const expected = checksumHex(blake3Reference(header.subarray(0, 192)));
  blake3Into(header.subarray(0, 192), header, 192);
  t.equal(checksumHex(header.subarray(192)), expected);
  t.throws(() => blake3Into(header, new Uint8Array(40), 9), /leaves no 32 bytes/);
});

t.test('incremental hashers equal one-shot digests for any split', async (t) => {
  await initCrypto();
  const hashers = await Promise.all(Array.from({ length: 2 }, () => createBlake3Hasher()));
  t.equal(hashers.length, 2);
  await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 6 }), async (chunks) => {
    const whole = Buffer.concat(chunks);
    const wasm = await createBlake3Hasher();
    const reference = createBlake3ReferenceHasher();
    for (const chunk of chunks) {
      wasm.update(chunk);
      reference.update(chunk);
    }
    const expected = checksumHex(blake3(whole));
    return checksumHex(wasm.digest()) === expected && checksumHex(reference.digest()) === expected;
  }), { seed, numRuns: 60 });
  const h = await createBlake3Hasher();
  h.digest();
  t.throws(() => h.digest(), /twice/);
});

t.test('crc32 matches the crc-32 package, unsigned, and continues over chunks', async (t) => {
  t.equal(crc32(text('123456789')), 0xcbf43926);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 10_000 }), fc.nat(), (bytes, cut) => {
    const expected = CRC32.buf(bytes) >>> 0;
    const at = bytes.length === 0 ? 0 : cut % bytes.length;
    const chained = crc32(bytes.subarray(at), crc32(bytes.subarray(0, at)));
    return crc32(bytes) === expected && chained === expected && expected >= 0;
  }), { seed, numRuns: 300 });
});

t.test('ed25519: node and noble agree, verify each other, and reject forgeries', async (t) => {
  // RFC 8032 test 1.
  const secret = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  t.equal(Buffer.from(ed25519PublicKey(secret)).toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  t.equal(Buffer.from(ed25519Sign(secret, new Uint8Array(0))).toString('hex'),
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 511 }), (message, flip) => {
    const { secretKey, publicKey } = ed25519Keygen();
    if (Buffer.compare(ed25519Portable.publicKey(secretKey), publicKey) !== 0) return false;
    const nodeSig = ed25519Sign(secretKey, message);
    const nobleSig = ed25519Portable.sign(secretKey, message);
    if (Buffer.compare(nodeSig, nobleSig) !== 0) return false;
    if (!ed25519Verify(publicKey, message, nobleSig) || !ed25519Portable.verify(publicKey, message, nodeSig)) return false;
    const forged = Uint8Array.from(nodeSig);
    forged[flip >>> 3] = (forged[flip >>> 3] as number) ^ (1 << (flip & 7));
    return !ed25519Verify(publicKey, message, forged) && !ed25519Portable.verify(publicKey, message, forged);
  }), { seed, numRuns: 40 });
  const { publicKey, secretKey } = ed25519Keygen();
  const signature = ed25519Sign(secretKey, text('m'));
  t.notOk(ed25519Verify(publicKey, text('n'), signature), 'other message');
  t.notOk(ed25519Verify(publicKey.subarray(1), text('m'), signature), 'short key');
  t.notOk(ed25519Portable.verify(publicKey, text('m'), signature.subarray(1)), 'short signature');
  t.notOk(ed25519Verify(ed25519Keygen().publicKey, text('m'), signature), 'other key');
});

t.test('aes-256-gcm round trips and rejects any tampering with a typed error', async (t) => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 40 }), fc.nat(), (plain, ad, pick) => {
    const box = aeadSeal(key, plain, ad);
    if (box.length !== plain.length + AEAD_OVERHEAD_BYTES) return false;
    if (Buffer.compare(aeadOpen(key, box, ad), plain) !== 0) return false;
    const bit = pick % (box.length * 8);
    const tampered = Uint8Array.from(box);
    tampered[bit >>> 3] = (tampered[bit >>> 3] as number) ^ (1 << (bit & 7));
    try {
      aeadOpen(key, tampered, ad);
      return false;
    } catch (error) {
      return isVerityError(error, 'DecryptionFailed');
    }
  }), { seed, numRuns: 200 });
  const box = aeadSeal(key, text('secret'), text('tenant 1'));
  t.throws(() => aeadOpen(key, box, text('tenant 2')), { code: 'DecryptionFailed' });
  t.throws(() => aeadOpen(new Uint8Array(32), box, text('tenant 1')), { code: 'DecryptionFailed' });
  t.throws(() => aeadOpen(key, box.subarray(0, 10), text('tenant 1')), { code: 'DecryptionFailed' });
  const nonce = new Uint8Array(12);
  t.same(aeadSeal(key, text('x'), text(''), nonce), aeadSeal(key, text('x'), text(''), nonce), 'deterministic with a fixed nonce');
  t.not(Buffer.compare(aeadSeal(key, text('x'), text('')), aeadSeal(key, text('x'), text(''))), 0, 'random nonces differ');
});

t.test('hkdf-sha256 matches RFC 5869 and noble', async (t) => {
  // RFC 5869 test case 1.
  const okm = hkdfSha256(hex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b'), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
  t.equal(Buffer.from(okm).toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 32 }), fc.integer({ min: 1, max: 200 }),
    (ikm, salt, info, length) => Buffer.compare(hkdfSha256(ikm, salt, info, length), nobleHkdf(sha256, ikm, salt, info, length)) === 0), { seed, numRuns: 100 });
  t.throws(() => hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 0));
});
