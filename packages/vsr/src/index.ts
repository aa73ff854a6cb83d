export { vsrConstants, quorums } from './constants.js';
export {
  type Header, type Entry, type Operation, OPERATIONS, HEADER_BYTES, makeHeader, rootHeader, headerValid, bodyMatches,
  linksTo, hash, encodeEntry, decodeEntry,
} from './header.js';
export { type Message, type MessageKind, MESSAGE_KINDS, FROM_CLIENT } from './message.js';
export type * from './message.js';
export { encodeMessage, decodeMessage, type DecodeResult, FRAME_PREFIX_BYTES } from './codec.js';
