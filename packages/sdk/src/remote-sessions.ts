import { randomBytes } from 'node:crypto';
import { IndeterminateError, SqlError as WireSqlError, type Client, type Session } from '@veritydb/client';
import { assert, clientId } from '@veritydb/types';
import { RemoteError } from './errors.js';

/**
 * Exactly-once writes (PROTOCOL.md §5). A session is a client id registered once; every write
 * on it carries the next request number, one write per session in flight, and a write retried
 * with the same numbers gets the original reply instead of running twice. So a write whose reply
 * was lost (the connection dropped; the client reports it as indeterminate) is sent again, with
 * the same numbers, while the caller's time budget lasts.
 *
 * Sessions are registered on demand, up to `sessionsMax`, so that pipelined writes from one
 * handle stay concurrent; more writes wait for a free session (at most `waitingMax`). A server
 * that does not implement sessions answers `register` with SQLSTATE 0A000: from then on writes
 * go without a session and are never retried (an indeterminate outcome is reported as such).
 */
export const sessionLimits = Object.freeze({
  sessionsMaxDefault: 8,
  sessionsMax: 256,
  /** Writes waiting for a free session before new ones fail with `Overloaded`. */
  waitingMax: 4096,
  /** Pause before resending a write whose outcome is unknown. */
  retryDelayMs: 20,
});

const FEATURE_NOT_SUPPORTED = '0A000';

interface SessionState {
  readonly clientId: Session['clientId'];
  /** The last request number used (0 = registration). */
  requestNumber: number;
}

/** How one write attempt is made: with a session (exactly-once) or without (`null`). */
export type WriteAttempt<T> = (session: Session | null, timeoutMs: number) => Promise<T>;

export class SessionWrites {
  readonly #client: Client;
  readonly #sessionsMax: number;
  readonly #idle: SessionState[] = [];
  readonly #waiting: (() => void)[] = [];
  #registered = 0;
  #registering = 0;
  /** null until the first registration says whether the server has sessions. */
  #supported: boolean | null = null;

  constructor(client: Client, sessionsMax: number) {
    assert(Number.isSafeInteger(sessionsMax) && sessionsMax >= 1 && sessionsMax <= sessionLimits.sessionsMax, `sessionsMax ${sessionsMax}`);
    this.#client = client;
    this.#sessionsMax = sessionsMax;
  }

  /**
   * Runs one write. `deadline` is the time (ms, `Date.now()` clock) after which the caller
   * stops waiting: a lost reply is retried with the same numbers until then.
   */
  async write<T>(attempt: WriteAttempt<T>, deadline: number, signal: AbortSignal | undefined): Promise<T> {
    if (this.#supported === false) return attempt(null, remaining(deadline));
    const session = await this.#acquire(remaining(deadline), signal);
    if (session === null) return attempt(null, remaining(deadline));
    session.requestNumber += 1;
    const numbers: Session = { clientId: session.clientId, requestNumber: session.requestNumber };
    let keep = true;
    try {
      for (;;) {
        try {
          return await attempt(numbers, remaining(deadline));
        } catch (error) {
          if ((error as { code?: unknown }).code === 'Evicted') keep = false;
          const retry = error instanceof IndeterminateError && signal?.aborted !== true && remaining(deadline) > sessionLimits.retryDelayMs;
          if (!retry) throw error;
          await new Promise((resolve) => setTimeout(resolve, sessionLimits.retryDelayMs));
        }
      }
    } finally {
      this.#release(keep ? session : null);
    }
  }

  /** A free session, a newly registered one, or null when the server has no sessions. */
  async #acquire(timeoutMs: number, signal: AbortSignal | undefined): Promise<SessionState | null> {
    for (;;) {
      const idle = this.#idle.pop();
      if (idle !== undefined) return idle;
      if (this.#supported === false) return null;
      // Until the server has said whether it has sessions, one registration at a time.
      const mayRegister = this.#supported === true || this.#registering === 0;
      if (mayRegister && this.#registered + this.#registering < this.#sessionsMax) return this.#register(timeoutMs, signal);
      if (this.#waiting.length >= sessionLimits.waitingMax) {
        throw new RemoteError('Overloaded', `${this.#waiting.length} writes are waiting for an exactly-once session (sessionsMax ${this.#sessionsMax})`);
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  async #register(timeoutMs: number, signal: AbortSignal | undefined): Promise<SessionState | null> {
    this.#registering += 1;
    const id = clientId(BigInt(`0x${randomBytes(16).toString('hex')}`) | 1n);
    try {
      await this.#client.register({ clientId: id, requestNumber: 0 }, { timeoutMs, ...(signal === undefined ? {} : { signal }) });
      this.#supported = true;
      this.#registered += 1;
      return { clientId: id, requestNumber: 0 };
    } catch (error) {
      if (error instanceof WireSqlError && error.sqlState === FEATURE_NOT_SUPPORTED) {
        this.#supported = false;
        return null;
      }
      throw error;
    } finally {
      this.#registering -= 1;
      // Whatever happened, writes waiting behind this registration may now proceed (or register).
      for (const wake of this.#waiting.splice(0)) wake();
    }
  }

  /** Makes the session free again (`null`: it was evicted and is forgotten) and wakes a waiting write. */
  #release(session: SessionState | null): void {
    if (session === null) this.#registered -= 1;
    else this.#idle.push(session);
    this.#waiting.shift()?.();
  }
}

function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}
