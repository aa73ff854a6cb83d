import { assert, position, type Position } from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeFailure } from './codec/bytes.js';

/**
 * Maps `AS OF TIMESTAMP` to a position. Positions are dense from 1 and the primary stamps
 * strictly increasing microsecond timestamps (DESIGN §3), so the index is the sequence of
 * timestamps in position order and a lookup is a binary search. Part of kernel state: it is
 * checkpointed (delta-encoded) and rebuilt identically by replay.
 *
 * @example index.append(position(1), 1_700_000_000_000_000); index.positionAt(1_700_000_000_000_005) === 1
 */
export class TimestampIndex {
  #timestamps = new Float64Array(1024);
  #count = 0;

  /** The last position recorded (0 before the first entry). */
  get head(): Position {
    return position(this.#count);
  }

  /** Timestamp (µs) of the last entry, or 0 before the first. */
  get lastTimestamp(): number {
    return this.#count === 0 ? 0 : (this.#timestamps[this.#count - 1] as number);
  }

  append(at: Position, timestampMicros: number): void {
    // Every entry passes here: messages are built only on failure.
    if (at !== this.#count + 1) assert(false, `timestamp index expects position ${this.#count + 1}, got ${at}`);
    if (!Number.isSafeInteger(timestampMicros) || timestampMicros <= 0) assert(false, `timestamp must be a positive safe integer: ${timestampMicros}`);
    if (timestampMicros <= this.lastTimestamp) {
      assert(false, `timestamps must strictly increase: ${timestampMicros} after ${this.lastTimestamp} at position ${at}`);
    }
    if (this.#count === this.#timestamps.length) {
      const grown = new Float64Array(this.#timestamps.length * 2);
      grown.set(this.#timestamps);
      this.#timestamps = grown;
    }
    this.#timestamps[this.#count++] = timestampMicros;
  }

  timestampOf(at: Position): number | undefined {
    if (at < 1 || at > this.#count) return undefined;
    return this.#timestamps[at - 1];
  }

  /** The last position whose timestamp is ≤ `timestampMicros`; 0 if every entry is later. */
  positionAt(timestampMicros: number): Position {
    let low = 0;
    let high = this.#count;
    // Invariant: entries [0, low) are ≤ the target, entries [high, count) are later.
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#timestamps[middle] as number) <= timestampMicros) low = middle + 1;
      else high = middle;
    }
    return position(low);
  }

  encode(writer: ByteWriter): void {
    writer.varuint(this.#count);
    let previous = 0;
    for (let i = 0; i < this.#count; i++) {
      const timestamp = this.#timestamps[i] as number;
      writer.varuint(timestamp - previous);
      previous = timestamp;
    }
  }

  static decode(reader: ByteReader): TimestampIndex {
    const index = new TimestampIndex();
    const count = reader.varuint();
    let previous = 0;
    for (let i = 0; i < count; i++) {
      const delta = reader.varuint();
      if (delta === 0) throw new DecodeFailure('timestamps in the index do not increase');
      previous += delta;
      if (!Number.isSafeInteger(previous)) throw new DecodeFailure('timestamp exceeds 2^53');
      index.append(position(i + 1), previous);
    }
    return index;
  }
}
