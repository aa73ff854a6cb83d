import { VerityError } from '@veritydb/types';

/**
 * Errors the engine throws for expected refusals. They live here, below the SDK and the server,
 * so both can recognise them: the SDK re-exports them as part of its public API, the server maps
 * them to wire error codes.
 *
 * @example
 *   try { engine.submit(envelope); } catch (e) { if (e instanceof ClosedError) … }
 */
export class ClosedError extends VerityError {
  override readonly name: string = 'ClosedError';
  constructor() {
    super('Closed', 'the database is closed');
  }
}

/** A call with arguments the SDK cannot send (wrong types, bad ids, oversize text). */
export class InvalidArgument extends VerityError {
  override readonly name: string = 'InvalidArgument';
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}

/** Too much work is queued (writes in flight, read waiters, the log's own queue): retry later. */
export class Overloaded extends VerityError {
  override readonly name: string = 'Overloaded';
  constructor(message: string) {
    super('Overloaded', message);
  }
}
