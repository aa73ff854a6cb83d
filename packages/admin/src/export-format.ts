/**
 * The tenant export format (docs/EXPORT.md) lives in `@veritydb/runtime` so that `vdb-admin
 * export` on a data dir and a server answering an export request write the same bytes; the
 * offline verifier (`vdb-admin verify-export`) is the same module.
 */
export {
  EXPORT_MAGIC, EXPORT_PREAMBLE_BYTES, EXPORT_VERSION, SIGNATURE_DOMAIN, encodeExportHead, encodeStatement, exportLimits,
  parseStatement, signedMessage, verifyExport, type ChainHead, type ExportCheck, type ExportFault, type HeadStatement,
} from '@veritydb/runtime';
