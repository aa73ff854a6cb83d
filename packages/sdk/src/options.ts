import { AbortedError, IndeterminateError, InvalidArgument, TimeoutError } from './errors.js';

/** Accepted by every SDK method (DESIGN §11). */
export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/**
 * Tells a running call whether its request has reached the log yet. Before that point an
 * abort or timeout means "did not happen"; after it, "may have happened" (Indeterminate).
 */
export interface CallProgress {
  submitted: boolean;
}

/**
 * Runs `work` under the caller's signal and timeout. The work itself is never interrupted
 * (a write handed to the log will be applied whatever the caller does); the caller stops
 * waiting and gets the right error for the moment it gave up.
 *
 * @example await guarded({ timeoutMs: 100 }, async (progress) => { progress.submitted = true; … });
 */
export async function guarded<T>(options: CallOptions | undefined, work: (progress: CallProgress) => Promise<T>): Promise<T> {
  const signal = options?.signal;
  const timeoutMs = options?.timeoutMs;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new InvalidArgument(`timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
  if (signal?.aborted === true) throw new AbortedError(signal.reason);
  const progress: CallProgress = { submitted: false };
  const running = work(progress);
  if (signal === undefined && timeoutMs === undefined) return running;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_resolve, reject) => {
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => reject(progress.submitted ? new IndeterminateError(`timed out after ${timeoutMs} ms`) : new TimeoutError(timeoutMs)), timeoutMs);
    }
    if (signal !== undefined) {
      onAbort = () => reject(progress.submitted ? new IndeterminateError('aborted') : new AbortedError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  // The work keeps running after the caller stops waiting; its outcome must not be reported
  // as an unhandled rejection.
  running.catch(() => undefined);
  try {
    return await Promise.race([running, stop]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
