/** One committed operation as the replicated state machine sees it. */
export interface ApplyInput {
  readonly op: number;
  readonly timestampUs: number;
  readonly client: bigint;
  readonly body: Uint8Array;
}

/**
 * The deterministic state machine VSR replicates (the kernel, or a test machine). The replica
 * calls `apply` once per committed `normal` op, in op order, on every replica; the returned bytes
 * are the reply the client receives and the session table caches. It must be pure: the same
 * sequence of inputs gives the same outputs on every replica.
 *
 * @example const machine: StateMachine = { apply: ({ body }) => body };
 */
export interface StateMachine {
  apply(input: ApplyInput): Uint8Array;
}
