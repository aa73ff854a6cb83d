/**
 * @veritydb/server: the vdb-server daemon (DESIGN §11) as a library: configuration, tokens,
 * the Engine seam, the single-node engine and the server itself. The executable is `main.ts`.
 */
export { loadConfig, USAGE, DEFAULT_DATA_DIR, DEFAULT_HTTP, DEFAULT_LISTEN, type ConfigOutcome, type ConfigSources, type ServerConfig } from './config.js';
export { parseToml, tomlLimits, type TomlParsed, type TomlValue } from './toml.js';
export {
  TOKEN_PREFIX, allows, claimsProblem, createToken, formatScope, keyId, parseScope, tokenLimits, verifyToken,
  type Access, type Scope, type TokenCheck, type TokenClaims,
} from './tokens.js';
export { ADMIN_KEY_FILE, ADMIN_TOKEN_FILE, ensureAdminKeys, type AdminKeys } from './keys.js';
export {
  EVENT_COLUMN_TYPES, type Engine, type EngineColumn, type EngineOutcome, type EngineParam, type EngineStatement,
  type EngineStatus, type ExecuteOutcome, type QueryOutcome, type ReadRequest, type StatementRows,
} from './engine.js';
export { LocalEngine, engineLimits, kernelError, type LocalEngineOptions } from './local-engine.js';
export { VerityServer, serverLimits, type ServerOptions } from './server.js';
export { connectionLimits as serverConnectionLimits } from './connection.js';
export { Metrics } from './metrics.js';
export { bigintsToStrings, createLogger, silentLogger } from './logger.js';
