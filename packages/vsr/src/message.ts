import type { Checksum } from '@veritydb/types';
import type { Header, Operation } from './header.js';

/** Sender index used by clients in the `from` field (replica indexes are < limits.replicasMax). */
export const FROM_CLIENT = 255;

interface Base { readonly from: number }

/** Client → replica. `request` 0 with operation `register` opens a session. */
export interface RequestMessage extends Base {
  readonly kind: 'request';
  readonly client: bigint;
  /** Op of the client's committed `register`, 0 while registering. */
  readonly session: number;
  readonly request: number;
  readonly operation: Exclude<Operation, 'root'>;
  readonly body: Uint8Array;
}
/** Primary → backups: one entry to append, plus the primary's commit number (piggybacked commit). */
export interface PrepareMessage extends Base {
  readonly kind: 'prepare';
  readonly view: number;
  readonly commit: number;
  readonly header: Header;
  readonly body: Uint8Array;
}
/** Backup → primary: the entry with this checksum at `op` is durable here, in `view`. */
export interface PrepareOkMessage extends Base {
  readonly kind: 'prepare_ok';
  readonly view: number;
  readonly op: number;
  readonly checksum: Checksum;
}
/** Primary → backups heartbeat: everything up to `commit` (whose header is `checksum`) is committed. */
export interface CommitMessage extends Base {
  readonly kind: 'commit';
  readonly view: number;
  readonly commit: number;
  readonly checksum: Checksum;
}
/** Backup → primary answer to a heartbeat: lets the primary see it still reaches a quorum. */
export interface PongMessage extends Base {
  readonly kind: 'pong';
  readonly view: number;
}
/**
 * A vote to leave the current view for `view`; only a quorum of votes starts a view change.
 * `joined` says the sender already moved into `view` on such a quorum: the others follow it, so
 * a replica whose quorum dissolved is never stranded alone in a higher view.
 */
export interface StartViewChangeMessage extends Base {
  readonly kind: 'start_view_change';
  readonly view: number;
  readonly joined: boolean;
}
/** To the new primary: this replica's durable log state. */
export interface DoViewChangeMessage extends Base {
  readonly kind: 'do_view_change';
  readonly view: number;
  readonly logView: number;
  readonly op: number;
  readonly commit: number;
  /** The newest known headers of the log, oldest first, ending at `op` (holes possible). */
  readonly headers: readonly Header[];
  /** Per header: is its body durable here? */
  readonly present: readonly boolean[];
  /**
   * Ops whose slot is faulty here (torn or corrupt): this replica may once have acknowledged
   * them, so it must not be counted as never having had them.
   */
  readonly faulty: readonly number[];
}
/** New primary → all: the view's log suffix, ending at `op`. */
export interface StartViewMessage extends Base {
  readonly kind: 'start_view';
  readonly view: number;
  readonly op: number;
  readonly commit: number;
  readonly headers: readonly Header[];
}
/** A replica that lost track of its view asks the primary of `view` for a start_view. */
export interface RequestStartViewMessage extends Base {
  readonly kind: 'request_start_view';
  readonly view: number;
}
/** Repair: send me the headers of ops [opMin, opMax]. */
export interface RequestHeadersMessage extends Base {
  readonly kind: 'request_headers';
  readonly view: number;
  readonly opMin: number;
  readonly opMax: number;
}
export interface HeadersMessage extends Base {
  readonly kind: 'headers';
  readonly view: number;
  readonly headers: readonly Header[];
}
/** Repair: send me the prepare at `op` whose header checksum is `checksum`. */
export interface RequestPrepareMessage extends Base {
  readonly kind: 'request_prepare';
  readonly view: number;
  readonly op: number;
  readonly checksum: Checksum;
}
/**
 * Every replica → all, when it applies a checkpoint op: its state hash there (the state machine's
 * hash, the session table and the op's header). Replicas at the same op must agree: a difference
 * is a bug, and the replica that sees it stops rather than serve diverged state.
 */
export interface CheckpointMessage extends Base {
  readonly kind: 'checkpoint';
  readonly op: number;
  readonly stateHash: Checksum;
}
/** State transfer: a replica far behind asks the primary of `view` for its state (it has applied up to `op`). */
export interface RequestStateMessage extends Base {
  readonly kind: 'request_state';
  readonly view: number;
  readonly op: number;
}
/**
 * State transfer: the primary's applied state at `op` (whose header is `header`): the state
 * machine's snapshot and the session table. The receiver restores both and goes on from op+1.
 */
export interface StateMessage extends Base {
  readonly kind: 'state';
  readonly view: number;
  readonly op: number;
  readonly header: Header;
  readonly sessions: Uint8Array;
  readonly machine: Uint8Array;
}
/** Primary → client: the committed result of a request, at log position `op`. */
export interface ReplyMessage extends Base {
  readonly kind: 'reply';
  readonly view: number;
  readonly client: bigint;
  readonly request: number;
  /** Op of the client's session (its register op); for a register reply this is `op`. */
  readonly session: number;
  readonly op: number;
  readonly body: Uint8Array;
}
/** Primary → client: your session is gone (evicted or never committed); register again. */
export interface EvictionMessage extends Base {
  readonly kind: 'eviction';
  readonly view: number;
  readonly client: bigint;
  /** The session that is gone. */
  readonly session: number;
}

export type Message =
  | RequestMessage | PrepareMessage | PrepareOkMessage | CommitMessage | PongMessage
  | StartViewChangeMessage | DoViewChangeMessage | StartViewMessage | RequestStartViewMessage
  | RequestHeadersMessage | HeadersMessage | RequestPrepareMessage | ReplyMessage | EvictionMessage | CheckpointMessage
  | RequestStateMessage | StateMessage;

export type MessageKind = Message['kind'];

export const MESSAGE_KINDS: readonly MessageKind[] = [
  'request', 'prepare', 'prepare_ok', 'commit', 'pong', 'start_view_change', 'do_view_change', 'start_view',
  'request_start_view', 'request_headers', 'headers', 'request_prepare', 'reply', 'eviction', 'checkpoint',
  'request_state', 'state',
];
