export { vsrConstants, quorums } from './constants.js';
export {
  type Header, type Entry, type Operation, OPERATIONS, HEADER_BYTES, makeHeader, rootHeader, headerValid, bodyMatches,
  linksTo, hash, encodeEntry, decodeEntry,
} from './header.js';
export { type Message, type MessageKind, MESSAGE_KINDS, FROM_CLIENT } from './message.js';
export type * from './message.js';
export { encodeMessage, decodeMessage, type DecodeResult, FRAME_PREFIX_BYTES } from './codec.js';
export type { Effect, EffectKind } from './effects.js';
export type { Superblock, DurableState } from './storage.js';
export type { StateMachine, ApplyInput } from './state-machine.js';
export { SessionTable, type Session, type SessionVerdict } from './sessions.js';
export { Replica, type ReplicaOptions, type ReplicaBugs, type ReplicaStatus, type ReplicaRecovery } from './replica.js';
export { Client, type ClientOptions, type ClientEffect } from './client.js';
export { encodeSuperblock, decodeSuperblock, SUPERBLOCK_FORMAT_VERSION, type SuperblockDecode } from './superblock-codec.js';
