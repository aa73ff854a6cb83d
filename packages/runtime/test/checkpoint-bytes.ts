import { blake3, initCrypto } from '@veritydb/crypto';

/**
 * Test helper: rewrites a current (version 3) checkpoint file as an older layout, or stamps it
 * with another version number, keeping its checksum valid so only the version can be refused.
 *
 *   version 1: the kernel checkpoint alone as the body
 *   version 2: tenant directory | kernel checkpoint (no session table)
 *   other:     the body unchanged, under that version number
 */
export async function rewriteCheckpoint(file: Uint8Array, version: number): Promise<Uint8Array> {
  await initCrypto();
  const headerBytes = 88;
  const body = file.subarray(headerBytes);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const tenantsEnd = 4 + view.getUint32(0, true);
  const sessionsEnd = tenantsEnd + 4 + view.getUint32(tenantsEnd, true);
  const payload = body.subarray(sessionsEnd);
  const newBody = version === 1 ? payload
    : version === 2 ? concat(body.subarray(0, tenantsEnd), payload)
      : body;
  const out = new Uint8Array(headerBytes + newBody.length);
  out.set(file.subarray(0, 56));
  const header = new DataView(out.buffer);
  header.setUint32(4, version, true);
  header.setBigUint64(16, BigInt(newBody.length), true);
  const input = new Uint8Array(56 + 32);
  input.set(out.subarray(0, 56));
  input.set(blake3(newBody), 56);
  out.set(blake3(input), 56);
  out.set(newBody, headerBytes);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
