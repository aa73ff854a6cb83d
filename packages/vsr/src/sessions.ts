import { assert, type Checksum } from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeError } from './bytes.js';
import { hash } from './header.js';

/** One client's session: the last committed request and its reply. */
export interface Session {
  /** Op of the client's committed `register`; identifies this incarnation of the session. */
  readonly session: number;
  readonly request: number;
  readonly reply: Uint8Array;
  /** Op of the last committed request: eviction order (least recently committed first). */
  readonly op: number;
}

/** What the session table says about an incoming request. */
export type SessionVerdict =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly reply: Uint8Array; readonly op: number }
  | { readonly kind: 'stale' }
  | { readonly kind: 'evicted' };

/**
 * Per-client sessions, changed only when an op commits, so every replica holds the same table at
 * the same commit. Full table + a new registration evicts the session whose last commit is oldest.
 */
export class SessionTable {
  readonly #sessions = new Map<bigint, Session>();
  readonly #capacity: number;

  constructor(capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, 'session capacity is positive');
    this.#capacity = capacity;
  }

  get size(): number { return this.#sessions.size; }

  /** A hash of the whole table, independent of insertion order (part of a checkpoint's state hash). */
  digest(): Checksum {
    return hash(this.encode());
  }

  /** The table as bytes (sorted by client), for state transfer. */
  encode(): Uint8Array {
    const writer = new ByteWriter();
    const clients = [...this.#sessions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const client of clients) {
      const entry = this.#sessions.get(client) as Session;
      writer.u128(client).u64(entry.session).u32(entry.request).u64(entry.op).u32(entry.reply.length).bytes(entry.reply);
    }
    return writer.finish();
  }

  /**
   * Replaces the table with `encode()` bytes from another replica; false (table unchanged) if they
   * do not decode or hold more sessions than this table's capacity.
   */
  restore(bytes: Uint8Array): boolean {
    const sessions: [bigint, Session][] = [];
    try {
      const reader = new ByteReader(bytes, 0);
      while (reader.remaining > 0) {
        const client = reader.u128();
        const session = reader.u64();
        const request = reader.u32();
        const op = reader.u64();
        const length = reader.u32();
        if (length > reader.remaining) return false;
        sessions.push([client, { session, request, op, reply: reader.bytes(length) }]);
      }
    } catch (error) {
      if (error instanceof DecodeError) return false;
      throw error;
    }
    if (sessions.length > this.#capacity) return false;
    // Registration order, as commits would have built the table (a session keeps its place when it commits).
    sessions.sort(([, a], [, b]) => a.session - b.session);
    this.#sessions.clear();
    for (const [client, session] of sessions) this.#sessions.set(client, session);
    return true;
  }

  get(client: bigint): Session | undefined { return this.#sessions.get(client); }

  /** Classifies a request for `client` with `session`/`request` numbers against committed state. */
  check(client: bigint, session: number, request: number): SessionVerdict {
    const entry = this.#sessions.get(client);
    if (request === 0) {
      // A register: a committed one is answered from the table, otherwise it is new.
      if (entry !== undefined && entry.request === 0) return { kind: 'duplicate', reply: entry.reply, op: entry.op };
      return entry === undefined ? { kind: 'new' } : { kind: 'stale' };
    }
    if (entry === undefined || entry.session !== session) return { kind: 'evicted' };
    if (request < entry.request) return { kind: 'stale' };
    if (request === entry.request) return { kind: 'duplicate', reply: entry.reply, op: entry.op };
    return { kind: 'new' };
  }

  /** Records a committed register at `op`; returns the evicted client, if any. */
  register(client: bigint, op: number): bigint | undefined {
    let evicted: bigint | undefined;
    if (!this.#sessions.has(client) && this.#sessions.size >= this.#capacity) {
      let oldest: Session | undefined;
      for (const [id, entry] of this.#sessions) {
        if (oldest === undefined || entry.op < oldest.op) { oldest = entry; evicted = id; }
      }
      assert(evicted !== undefined, 'a full table has an oldest session');
      this.#sessions.delete(evicted);
    }
    this.#sessions.set(client, { session: op, request: 0, reply: new Uint8Array(0), op });
    assert(this.#sessions.size <= this.#capacity, 'session table within capacity');
    return evicted;
  }

  /** Records the committed reply of `request` at `op`. */
  commit(client: bigint, request: number, reply: Uint8Array, op: number): void {
    const entry = this.#sessions.get(client);
    assert(entry !== undefined && request > entry.request, 'commit follows a new request of a live session');
    this.#sessions.set(client, { session: entry.session, request, reply, op });
  }
}
