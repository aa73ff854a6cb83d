/**
 * A broken invariant is a bug: stopping beats serving corrupt data. Assertions stay on in
 * production. Bad input from users or the network is never asserted on; it gets a typed error.
 *
 * @example assert(position >= 1, 'positions start at 1');
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Exhaustiveness check for `switch` over a tagged union. */
export function assertNever(value: never, message = 'unexpected variant'): never {
  throw new AssertionError(`${message}: ${safeDescribe(value)}`);
}

function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
