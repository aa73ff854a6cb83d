import { assertNever, checksumHex } from '@veritydb/types';
import type { Message } from '@veritydb/vsr';

/** One-line, deterministic description of a message for traces and transcripts. */
export function describe(message: Message): string {
  switch (message.kind) {
    case 'request': return `request c${message.client} #${message.request} ${message.operation}`;
    case 'prepare': return `prepare v${message.view} op${message.header.op} (hv${message.header.view}) commit${message.commit}`;
    case 'prepare_ok': return `prepare_ok v${message.view} op${message.op}`;
    case 'commit': return `commit v${message.view} commit${message.commit}`;
    case 'pong': return `pong v${message.view}`;
    case 'start_view_change': return `start_view_change v${message.view}${message.joined ? ' joined' : ''}`;
    case 'do_view_change':
      return `do_view_change v${message.view} log_view${message.logView} op${message.op} commit${message.commit} headers${message.headers.length}` +
        ` present${message.present.filter(Boolean).length}${message.faulty.length > 0 ? ` faulty[${message.faulty.join(',')}]` : ''}`;
    case 'start_view': return `start_view v${message.view} op${message.op} commit${message.commit} headers${message.headers.length}`;
    case 'request_start_view': return `request_start_view v${message.view}`;
    case 'request_headers': return `request_headers v${message.view} ops${message.opMin}..${message.opMax}`;
    case 'headers': return `headers v${message.view} n${message.headers.length}`;
    case 'request_prepare': return `request_prepare v${message.view} op${message.op}`;
    case 'reply': return `reply v${message.view} c${message.client} #${message.request} op${message.op}`;
    case 'eviction': return `eviction v${message.view} c${message.client}`;
    case 'request_state': return `request_state v${message.view} op${message.op}`;
    case 'state': return `state v${message.view} op${message.op} sessions${message.sessions.length}B machine${message.machine.length}B`;
    case 'checkpoint': return `checkpoint op${message.op} ${checksumHex(message.stateHash).slice(0, 8)}`;
    default: return assertNever(message);
  }
}
