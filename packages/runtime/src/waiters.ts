import type { Position } from '@veritydb/types';

/** How a wait for a position ended: only `applied` means the state has reached it. */
export type WaitOutcome = 'applied' | 'timeout' | 'aborted' | 'closed' | 'overloaded';

interface Waiter {
  readonly position: Position;
  readonly wake: () => void;
}

/**
 * Reads waiting for the applied position to reach theirs (the single-node engine and a cluster
 * replica both serve causal and at-position reads this way). Bounded: at most `max` waiters,
 * each for at most its timeout; `wake` after every apply (and at close) releases those whose
 * position is reached (all of them once the engine no longer serves).
 */
export class AppliedWaiters {
  readonly #head: () => Position;
  readonly #max: number;
  readonly #waiters = new Set<Waiter>();

  constructor(head: () => Position, max: number) {
    this.#head = head;
    this.#max = max;
  }

  /** Waits until `needed` is applied. Never rejects: how the wait ended is the value. */
  wait(needed: Position, timeoutMs: number, serving: boolean, abort?: AbortSignal): Promise<WaitOutcome> {
    if (this.#head() >= needed) return Promise.resolve('applied');
    if (!serving) return Promise.resolve('closed');
    if (this.#waiters.size >= this.#max) return Promise.resolve('overloaded');
    return new Promise((resolve) => {
      const done = (outcome: WaitOutcome): void => {
        clearTimeout(timer);
        abort?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
        resolve(outcome);
      };
      const waiter: Waiter = { position: needed, wake: () => done(this.#head() >= needed ? 'applied' : 'closed') };
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      const onAbort = (): void => done('aborted');
      abort?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Releases the waiters whose position is applied (every waiter when `serving` is false). */
  wake(serving: boolean): void {
    const head = this.#head();
    for (const waiter of [...this.#waiters]) if (!serving || waiter.position <= head) waiter.wake();
  }
}
