import { assert, limits } from '@veritydb/types';
import { FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION, payloadCrc, type Frame } from './frame.js';
import { wireLimits } from './limits.js';

/**
 * Why a byte stream stopped being a valid sequence of frames. The connection must be closed
 * after any of them (a server first sends `frameErrorResponse(error)`): once one frame is wrong
 * the boundaries of the next ones cannot be trusted.
 */
export type FrameError =
  | { readonly kind: 'BadMagic'; readonly message: string }
  | { readonly kind: 'UnsupportedVersion'; readonly version: number; readonly message: string }
  | { readonly kind: 'FrameTooLarge'; readonly length: number; readonly frameBytesMax: number; readonly message: string }
  | { readonly kind: 'CrcMismatch'; readonly expected: number; readonly actual: number; readonly message: string }
  | { readonly kind: 'Truncated'; readonly bufferedBytes: number; readonly message: string };

/** What one `push` produced: the frames completed by the chunk, then an error if one occurred. */
export interface FramePush {
  readonly frames: readonly Frame[];
  readonly error: FrameError | null;
}

export interface FrameDecoderOptions {
  /** Largest payload accepted; at most (and by default) limits.frameBytesMax. */
  readonly frameBytesMax?: number;
}

/** Smallest payload buffer the decoder allocates; it doubles from there as bytes arrive. */
const PAYLOAD_CAPACITY_MIN = 4096;

/**
 * An incremental, socket-free frame decoder: feed it chunks of any size (one byte at a time
 * works) and it returns every frame the chunk completes, in order.
 *
 * Memory stays bounded by the frame that is actually arriving, never by what a header claims:
 * the header is validated field by field as its bytes arrive (a wrong magic byte fails at once,
 * a 4 GiB length fails when the length field is complete), and the payload buffer grows by
 * doubling, so it is at most twice the bytes received, at most the claimed length, and never
 * more than frameBytesMax. After an error every later push returns the same error.
 *
 * @example
 *   const decoder = new FrameDecoder();
 *   socket.on('data', (chunk) => {
 *     const { frames, error } = decoder.push(chunk);
 *     for (const frame of frames) handle(frame.payload);
 *     if (error !== null) { socket.end(encodeFrame(encodeServerMessage(frameErrorResponse(error)))); }
 *   });
 */
export class FrameDecoder {
  readonly frameBytesMax: number;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  readonly #headerView = new DataView(this.#header.buffer);
  #headerFilled = 0;
  #payload: Uint8Array = new Uint8Array(0);
  #payloadFilled = 0;
  #error: FrameError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax >= wireLimits.frameBytesMin &&
      frameBytesMax <= limits.frameBytesMax,
    `frameBytesMax must be in [${wireLimits.frameBytesMin}, ${limits.frameBytesMax}], got ${frameBytesMax}`);
    this.frameBytesMax = frameBytesMax;
  }

  /** The error that stopped this decoder, or null. */
  get error(): FrameError | null {
    return this.#error;
  }

  /** Bytes of the partial frame held right now (header + payload): at most 14 + frameBytesMax. */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#payloadFilled;
  }

  /** Bytes allocated for the partial payload (capacity), for memory-bound checks. */
  get bufferedCapacityBytes(): number {
    return FRAME_HEADER_BYTES + this.#payload.length;
  }

  /** Decodes a chunk. Never throws on any input. */
  push(chunk: Uint8Array): FramePush {
    if (this.#error !== null) return { frames: [], error: this.#error };
    const frames: Frame[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      offset = this.#headerFilled < FRAME_HEADER_BYTES ? this.#takeHeader(chunk, offset) : this.#takePayload(chunk, offset);
      if (this.#error !== null) return { frames, error: this.#error };
      if (this.#headerFilled === FRAME_HEADER_BYTES && this.#payloadFilled === this.#length()) {
        const frame = this.#completeFrame();
        if (frame === null) return { frames, error: this.#error };
        frames.push(frame); // a zero-length frame completes with its header
      }
    }
    return { frames, error: null };
  }

  /**
   * The peer closed the stream: a partial frame left behind is a `Truncated` error, a clean
   * boundary is null.
   */
  finish(): FrameError | null {
    if (this.#error !== null) return this.#error;
    if (this.bufferedBytes === 0) return null;
    return this.#fail({
      kind: 'Truncated', bufferedBytes: this.bufferedBytes,
      message: `stream ended inside a frame (${this.bufferedBytes} bytes buffered)`,
    });
  }

  #takeHeader(chunk: Uint8Array, offset: number): number {
    const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.length - offset);
    const before = this.#headerFilled;
    this.#header.set(chunk.subarray(offset, offset + take), before);
    this.#headerFilled += take;
    this.#checkHeader(before);
    return offset + take;
  }

  /** Validates every header field that became complete since `before` bytes were present. */
  #checkHeader(before: number): void {
    const filled = this.#headerFilled;
    for (let i = before; i < Math.min(filled, 4); i++) {
      if (this.#header[i] !== ((FRAME_MAGIC >>> (24 - 8 * i)) & 0xff)) {
        this.#fail({ kind: 'BadMagic', message: `bad magic byte ${hexByte(this.#header[i] ?? 0)} at offset ${i}` });
        return;
      }
    }
    if (before < 6 && filled >= 6) {
      const version = this.#headerView.getUint16(4, false);
      if (version !== FRAME_VERSION) {
        this.#fail({ kind: 'UnsupportedVersion', version, message: `unsupported frame version ${version}` });
        return;
      }
    }
    if (before < 10 && filled >= 10) {
      const length = this.#length();
      if (length > this.frameBytesMax) {
        this.#fail({
          kind: 'FrameTooLarge', length, frameBytesMax: this.frameBytesMax,
          message: `frame length ${length} exceeds the limit of ${this.frameBytesMax} bytes`,
        });
        return;
      }
    }
  }

  #takePayload(chunk: Uint8Array, offset: number): number {
    const length = this.#length();
    const take = Math.min(length - this.#payloadFilled, chunk.length - offset);
    this.#reserve(this.#payloadFilled + take, length);
    this.#payload.set(chunk.subarray(offset, offset + take), this.#payloadFilled);
    this.#payloadFilled += take;
    return offset + take;
  }

  /** Grows the payload buffer to hold `needed` bytes: doubling, capped at the claimed length. */
  #reserve(needed: number, length: number): void {
    if (needed <= this.#payload.length) return;
    const capacity = Math.min(length, Math.max(needed, PAYLOAD_CAPACITY_MIN, this.#payload.length * 2));
    assert(capacity >= needed && capacity <= this.frameBytesMax, 'payload capacity within bounds');
    const grown = new Uint8Array(capacity);
    grown.set(this.#payload.subarray(0, this.#payloadFilled));
    this.#payload = grown;
  }

  #completeFrame(): Frame | null {
    const length = this.#length();
    const payload = this.#payload.length === length ? this.#payload : this.#payload.slice(0, length);
    const expected = this.#headerView.getUint32(10, false);
    const actual = payloadCrc(payload);
    if (expected !== actual) {
      this.#fail({
        kind: 'CrcMismatch', expected, actual,
        message: `payload CRC-32 is ${hex32(actual)}, the header says ${hex32(expected)}`,
      });
      return null;
    }
    const version = this.#headerView.getUint16(4, false);
    this.#headerFilled = 0;
    this.#payload = new Uint8Array(0);
    this.#payloadFilled = 0;
    return { version, payload };
  }

  #length(): number {
    return this.#headerView.getUint32(6, false);
  }

  #fail(error: FrameError): FrameError {
    this.#error = error;
    this.#headerFilled = 0;
    this.#payload = new Uint8Array(0);
    this.#payloadFilled = 0;
    return error;
  }
}

function hexByte(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
