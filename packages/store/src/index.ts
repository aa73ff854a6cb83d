export { Store, CHECKPOINT_FORMAT_VERSION, type CheckpointHash, type Snapshot, type RestoreResult } from './store.js';
export { WriteBatch } from './batch.js';
export { Reader } from './reader.js';
export { ByteWriter, ByteReader, DecodeError, encodeValue, decodeValue } from './codec.js';
