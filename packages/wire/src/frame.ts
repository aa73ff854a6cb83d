import { crc32 } from 'node:zlib';
import { limits, VerityError } from '@veritydb/types';

/**
 * The frame (PROTOCOL.md §2). Every header field is big-endian (network order), so the magic
 * reads "VDB " in a hex dump:
 *
 *   offset  size  field
 *   0       4     magic    0x56444220 ("VDB ")
 *   4       2     version  frame format version (FRAME_VERSION)
 *   6       4     length   payload bytes (0..frameBytesMax)
 *   10      4     crc32    CRC-32 (IEEE, as zlib) of the payload
 *   14      n     payload  one Cap'n Proto message, unpacked
 */
export const FRAME_MAGIC = 0x5644_4220;
/**
 * The frame layout's version. It changes only if the header itself changes; message-level
 * evolution is negotiated in the handshake (PROTOCOL_VERSIONS), so a hello always parses.
 */
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 14;

/** A complete, checksum-verified frame. `payload` is owned by the receiver (a copy). */
export interface Frame {
  readonly version: number;
  readonly payload: Uint8Array;
}

/**
 * Wraps a payload into a frame. Throws VerityError('FrameTooLarge') if it does not fit.
 *
 * @example const bytes = encodeFrame(encodeClientMessage(message));
 */
export function encodeFrame(payload: Uint8Array, frameBytesMax: number = limits.frameBytesMax): Uint8Array {
  if (payload.length > frameBytesMax) {
    // Sizes follow from user input (many large statements); the caller reports it, nothing broke.
    throw new VerityError('FrameTooLarge', `a message of ${payload.length} bytes exceeds the frame limit of ${frameBytesMax}`,
      { payloadBytes: payload.length, frameBytesMax });
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, FRAME_MAGIC, false);
  view.setUint16(4, FRAME_VERSION, false);
  view.setUint32(6, payload.length, false);
  view.setUint32(10, payloadCrc(payload), false);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** CRC-32 of a payload as an unsigned integer. */
export function payloadCrc(payload: Uint8Array): number {
  return crc32(payload) >>> 0;
}
