import type { Entry, Header } from './header.js';
import type { EvictionMessage, Message, ReplyMessage } from './message.js';
import type { Superblock } from './storage.js';

/**
 * What a replica asks its driver to do. The driver performs effects in order and never holds
 * one back; ordering against durability is the replica's job: a message that depends on a
 * write (prepare_ok, do_view_change, start_view, a prepare from a new primary) is only ever
 * emitted from `onWriteDone` of that write or later, so no driver can send it early.
 *
 * Storage effects (`write_log`, `truncate_log`, `write_superblock`) must complete in the order
 * issued; the driver reports each with `onWriteDone(writeId)`.
 */
export type Effect =
  | { readonly kind: 'send'; readonly to: number; readonly message: Message }
  | { readonly kind: 'reply'; readonly client: bigint; readonly message: ReplyMessage | EvictionMessage }
  | { readonly kind: 'write_log'; readonly writeId: number; readonly entries: readonly Entry[] }
  | { readonly kind: 'truncate_log'; readonly writeId: number; readonly afterOp: number }
  | { readonly kind: 'write_superblock'; readonly writeId: number; readonly superblock: Superblock }
  /** An op was committed and applied here (informational: checkers, metrics, the runtime's apply log). */
  | { readonly kind: 'committed'; readonly header: Header; readonly result: Uint8Array; readonly executed: boolean };

export type EffectKind = Effect['kind'];
