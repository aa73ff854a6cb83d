import { assert, limits } from '@veritydb/types';

/**
 * Bounds that only the wire protocol knows about. Shared bounds (frame size, SQL text, batch
 * size, value size, identifiers) live in `limits` of @veritydb/types; the relationships
 * between the two sets are asserted below.
 */
export const wireLimits = Object.freeze({
  /** Protocol versions one ClientHello may offer. */
  helloVersionsMax: 16,
  /** Bearer token length. */
  tokenBytesMax: 4096,
  /** Free-form client name in the hello. */
  clientNameBytesMax: 64,
  /** A "host:port" address (primary hints, status). */
  addressBytesMax: 255,
  /** A person-readable error message. */
  errorMessageBytesMax: 8192,
  /** Parameters of one statement (PostgreSQL's limit too). */
  paramsMax: 65535,
  /** Columns of one result (expressions may exceed a table's columns). */
  resultColumnsMax: 1024,
  /** Scopes in one token. */
  tokenScopesMax: 64,
  /** Length of one scope string. */
  scopeBytesMax: 128,
  /** Tenants one listTenants answer carries. */
  tenantsListMax: 100_000,
  /** Nesting depth of a JSON value (consumers walk it recursively). */
  jsonDepthMax: 128,
  /** Cap'n Proto segments in one payload (our encoder always writes one). */
  capnpSegmentsMax: 16,
  /** Bytes of an export file one `exportChunk` carries (1 MiB: with its envelope well within the default frame bound). */
  exportChunkBytesMax: 1024 * 1024,
  /** Bytes of a file one `backupFile` chunk carries. */
  backupChunkBytesMax: 1024 * 1024,
  /** Files one backup sends (a data dir holds its log segments, a checkpoint, keys: far fewer). */
  backupFilesMax: 1_000_000,
  /** A verify fault's reason code. */
  verifyReasonBytesMax: 63,
  /** A server file path (a verify fault's file). */
  pathBytesMax: 4096,
  /** Smallest frameBytesMax a decoder may be configured with. */
  frameBytesMin: 64 * 1024,
});

export type WireLimits = typeof wireLimits;

assert(wireLimits.resultColumnsMax >= limits.tableColumnsMax, 'a SELECT * fits in one result');
assert(wireLimits.frameBytesMin <= limits.frameBytesMax, 'the smallest frame bound is below the largest');
assert(limits.frameBytesMax <= 0xffff_ffff, 'frame lengths fit in a u32');
assert(limits.sqlTextBytesMax < limits.frameBytesMax, 'a statement fits in a frame');
assert(limits.valueBytesMax < limits.frameBytesMax, 'a value fits in a frame');
assert(wireLimits.errorMessageBytesMax < wireLimits.frameBytesMin, 'an error always fits in a frame');
assert(wireLimits.exportChunkBytesMax + 1024 <= limits.frameBytesMax, 'an export chunk fits in a default frame');
assert(wireLimits.backupChunkBytesMax + wireLimits.pathBytesMax + 1024 <= limits.frameBytesMax, 'a backup chunk fits in a default frame');
assert(wireLimits.errorMessageBytesMax + wireLimits.pathBytesMax + 1024 < wireLimits.frameBytesMin, 'a verify report always fits in a frame');
