import type { Checksum } from '@veritydb/types';
import { hash, type ApplyInput, type StateMachine } from '@veritydb/vsr';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A deterministic toy machine: named counters. Body `"k3+5"` adds 5 to counter k3 and replies
 * `"k3=<total>"`. The scripted transcripts (`harness.ts`) use it so their golden output stays
 * short; the simulator runs the real kernel (`kernel-machine.ts`).
 */
export class CounterMachine implements StateMachine {
  readonly #counters = new Map<string, number>();

  apply(input: ApplyInput): Uint8Array {
    const text = decoder.decode(input.body);
    const plus = text.indexOf('+');
    const key = plus < 0 ? text : text.slice(0, plus);
    const delta = plus < 0 ? 0 : Number(text.slice(plus + 1)) || 0;
    const total = (this.#counters.get(key) ?? 0) + delta;
    this.#counters.set(key, total);
    return encoder.encode(`${key}=${total}`);
  }

  snapshot(): Uint8Array {
    const keys = [...this.#counters.keys()].sort();
    return encoder.encode(JSON.stringify(keys.map((key) => [key, this.#counters.get(key)])));
  }

  restore(state: Uint8Array): void {
    this.#counters.clear();
    for (const [key, total] of JSON.parse(decoder.decode(state)) as [string, number][]) this.#counters.set(key, total);
  }

  stateHash(): Checksum {
    const keys = [...this.#counters.keys()].sort();
    return hash(encoder.encode(keys.map((key) => `${key}=${this.#counters.get(key)}`).join(',')));
  }
}

export function counterBody(key: string, delta: number): Uint8Array {
  return encoder.encode(`${key}+${delta}`);
}

export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
