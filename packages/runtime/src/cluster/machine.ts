import { encodeReply, Kernel, OPERATION, SYSTEM_TENANT, decodeEnvelope, type ApplyResult } from '@veritydb/kernel';
import { assert, position, type TenantId } from '@veritydb/types';
import type { ApplyInput, StateMachine } from '@veritydb/vsr';
import { NOOP_BODY } from '../sessions.js';

/**
 * Told after every op the kernel applies (executed or skipped), with the entry's tenant and
 * operation code as its body names them (a skipped op: the system tenant's no-op). `result` is
 * null for a skipped op.
 */
export type AppliedListener = (op: number, tenant: TenantId, operation: number, result: ApplyResult | null, body: Uint8Array) => void;

/**
 * The kernel as the state machine a VSR replica drives (DESIGN §5, §6): the kernel's position is
 * the VSR op, so it sees every committed op once. An executed request is applied from its body (a
 * kernel envelope) and its encoded reply is what the client receives and the session table
 * caches; a registration, or a request the session table does not execute, is applied as a noop.
 * The entry hash the kernel records in `__events` is the op's header checksum (the hash chain of
 * the replicated log).
 */
export class KernelMachine implements StateMachine {
  readonly kernel: Kernel;
  readonly #applied: AppliedListener;

  constructor(kernel: Kernel, applied: AppliedListener) {
    this.kernel = kernel;
    this.#applied = applied;
  }

  apply(input: ApplyInput): Uint8Array {
    const ctx = { position: position(input.op), timestampMicros: input.timestampUs, hash: input.checksum };
    // Decoded once here for the kernel and the listener (an undecodable body: the kernel records why).
    const decoded = decodeEnvelope(input.body);
    const result = decoded.ok ? this.kernel.applyEnvelope(ctx, decoded.value) : this.kernel.apply(ctx, input.body);
    assert(this.kernel.head === input.op, `kernel at op ${input.op}`);
    this.#applied(input.op, decoded.ok ? decoded.value.tenant : SYSTEM_TENANT,
      decoded.ok ? OPERATION[decoded.value.command.kind] : OPERATION.noop, result, input.body);
    return encodeReply(result.reply);
  }

  skip(input: ApplyInput): void {
    this.kernel.apply({ position: position(input.op), timestampMicros: input.timestampUs, hash: input.checksum }, NOOP_BODY);
    assert(this.kernel.head === input.op, `kernel at op ${input.op}`);
    this.#applied(input.op, SYSTEM_TENANT, OPERATION.noop, null, NOOP_BODY);
  }
}
