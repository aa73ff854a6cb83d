import zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) as an unsigned 32-bit integer. Pass the
 * previous result as `initial` to continue over a further chunk.
 *
 * @example crc32(new TextEncoder().encode('123456789')) === 0xcbf43926
 */
export function crc32(bytes: Uint8Array, initial = 0): number {
  return zlib.crc32(bytes, initial) >>> 0;
}
