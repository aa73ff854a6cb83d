/**
 * The typed error base used across packages. `code` is stable and machine-readable (clients
 * switch on it); `message` is for a person. Errors here are expected outcomes of bad input or
 * environment, never bugs (bugs are `AssertionError`).
 *
 * @example throw new VerityError('CorruptRecord', 'record 17 fails its CRC', { position: 17 });
 */
export class VerityError extends Error {
  override readonly name: string = 'VerityError';
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

export function isVerityError(value: unknown, code?: string): value is VerityError {
  return value instanceof VerityError && (code === undefined || value.code === code);
}
