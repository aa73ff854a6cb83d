import { assert, limits, VerityError, type Position } from '@veritydb/types';
import { encodeResponse } from './codec.js';
import { encodeFrame, FRAME_HEADER_BYTES } from './frame.js';
import type { Column, RequestId } from './messages.js';
import { encodeRowBlock, type WireValue } from './values.js';

/** One statement's complete result, before it is cut into frames. */
export interface ResultToStream {
  readonly requestId: RequestId;
  readonly statementIndex: number;
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly WireValue[])[];
  readonly rowsAffected: number;
  readonly position: Position;
  /** Whether this statement's last frame ends the request. */
  readonly final: boolean;
}

/**
 * Bytes a result frame needs beyond its rows' own bytes: the row block's two count varints
 * grow (≤ 16 bytes) and the Data list pads to a word (≤ 7 bytes).
 */
const ROW_BLOCK_SLACK_BYTES = 32;

/**
 * Cuts a result into as few frames as fit `frameBytesMax` (PROTOCOL.md §5, streaming): each a
 * Result with the same request id, statement index and columns; only the last carries
 * `final: result.final`. A result with no rows is one frame.
 * Throws VerityError('RowTooLarge') when a single row cannot fit in a frame.
 *
 * @example for (const frame of encodeResultFrames(result)) socket.write(frame);
 */
export function encodeResultFrames(result: ResultToStream, frameBytesMax: number = limits.frameBytesMax): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const base = encodeResultFrame(result, [], false, frameBytesMax).length;
  const rowsBudgetBytes = frameBytesMax + FRAME_HEADER_BYTES - base - ROW_BLOCK_SLACK_BYTES;
  let chunk: (readonly WireValue[])[] = [];
  let chunkBytes = 0;
  result.rows.forEach((row, index) => {
    const rowBytes = encodeRowBlock(result.columns.length, [row]).length - 2;
    if (rowBytes > rowsBudgetBytes) {
      throw new VerityError('RowTooLarge', `row ${index} needs ${rowBytes} bytes; a frame holds ${rowsBudgetBytes} bytes of rows`,
        { row: index, rowBytes, frameBytesMax });
    }
    if (chunkBytes + rowBytes > rowsBudgetBytes) {
      frames.push(encodeResultFrame(result, chunk, false, frameBytesMax));
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push(row);
    chunkBytes += rowBytes;
  });
  frames.push(encodeResultFrame(result, chunk, result.final, frameBytesMax));
  return frames;
}

function encodeResultFrame(result: ResultToStream, rows: readonly (readonly WireValue[])[], final: boolean,
  frameBytesMax: number): Uint8Array {
  const frame = encodeFrame(encodeResponse({
    requestId: result.requestId,
    body: {
      kind: 'result',
      result: {
        statementIndex: result.statementIndex, columns: result.columns, rows, rowsAffected: result.rowsAffected,
        position: result.position, final,
      },
    },
  }), frameBytesMax);
  assert(frame.length <= FRAME_HEADER_BYTES + frameBytesMax, 'a result frame fits its limit');
  return frame;
}
