import { assert, checksum, position, type Checksum } from '@veritydb/types';
import { encodeEnvelope, encodeReply, Kernel, SYSTEM_TENANT, type ApplyContext } from '@veritydb/kernel';
import type { ApplyInput, StateMachine } from '@veritydb/vsr';

/** The body a skipped op is applied as: it changes nothing but the kernel's position. */
const NOOP_BODY = encodeEnvelope({ tenant: SYSTEM_TENANT, actor: '', command: { kind: 'noop' } });

/** Told after every op a replica's kernel applies (executed or skipped), with the kernel at that op. */
export type AppliedObserver = (op: number, kernel: Kernel, restored?: boolean) => void;

/**
 * The real kernel (and its store) as a VSR state machine: one per replica incarnation. The
 * kernel's position is the VSR op, so the kernel sees every committed op: an executed request is
 * applied from its body (a kernel envelope) and its encoded reply is what the client receives; a
 * registration or a request the session table does not execute is applied as a noop. The header
 * checksum is the entry hash recorded in `__events`.
 *
 * @example new KernelMachine((op, kernel) => checker.onApplied(replica, op, kernel))
 */
export class KernelMachine implements StateMachine {
  #kernel = Kernel.create();
  readonly #observe: AppliedObserver | undefined;
  /** The state hash at `#hashOp` (the checker and the replica's checkpoint both ask at the same op). */
  #hash: Checksum | undefined;
  #hashOp = -1;

  constructor(observe?: AppliedObserver) {
    this.#observe = observe;
  }

  get kernel(): Kernel { return this.#kernel; }

  snapshot(): Uint8Array {
    return this.#kernel.checkpoint();
  }

  /** State transfer: the kernel becomes the one another replica checkpointed at `op`. */
  restore(state: Uint8Array, op: number): void {
    const restored = Kernel.restore(state);
    assert(restored.ok, `a transferred state restores: ${restored.ok ? '' : restored.reason}`);
    assert(restored.kernel.head === op, `transferred state at op ${op}`);
    this.#kernel = restored.kernel;
    this.#hash = undefined;
    this.#observe?.(op, this.#kernel, true);
  }

  apply(input: ApplyInput): Uint8Array {
    const result = this.#kernel.apply(context(input), input.body);
    this.#applied(input.op);
    return encodeReply(result.reply);
  }

  skip(input: ApplyInput): void {
    this.#kernel.apply(context(input), NOOP_BODY);
    this.#applied(input.op);
  }

  /** The kernel's state hash (the whole store image: costly, so computed once per op). */
  stateHash(): Checksum {
    if (this.#hash === undefined || this.#hashOp !== this.#kernel.head) {
      this.#hash = checksum(this.#kernel.stateHash());
      this.#hashOp = this.#kernel.head;
    }
    return this.#hash;
  }

  #applied(op: number): void {
    assert(this.#kernel.head === op, `kernel at op ${op}`);
    this.#observe?.(op, this.#kernel);
  }
}

function context(input: ApplyInput): ApplyContext {
  const hash: Checksum = input.checksum;
  return { position: position(input.op), timestampMicros: input.timestampUs, hash };
}
