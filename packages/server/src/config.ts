import { formatAddress, parseAddress, type Address } from '@veritydb/client';
import { limits, U128_MAX } from '@veritydb/types';
import { parseToml, type TomlValue } from './toml.js';

/**
 * The server's configuration (DESIGN §11): command-line flags, `VDB_*` environment variables and
 * a TOML file, in that order of precedence, over the defaults.
 *
 *   flag              env                 TOML key        default
 *   --config FILE     VDB_CONFIG          —               none
 *   --data-dir DIR    VDB_DATA_DIR        data_dir        ./data
 *   --listen H:P      VDB_LISTEN          listen          127.0.0.1:7420 (peers[replica_index] when peers are given)
 *   --http H:P        VDB_HTTP            http            127.0.0.1:7421
 *   --cluster-id ID   VDB_CLUSTER_ID      cluster_id      the data dir's own id (created at first start)
 *   --replica-index I VDB_REPLICA_INDEX   replica_index   0
 *   --peers A,B,…     VDB_PEERS           peers           this node only
 *   --admin-key FILE  VDB_ADMIN_KEY       admin_key       <data-dir>/keys/admin.key (required for 3/5 replicas)
 */
export interface ServerConfig {
  readonly dataDir: string;
  readonly listen: Address;
  readonly http: Address;
  /** null: single node, the data dir keeps (or creates) its own cluster id. */
  readonly clusterId: bigint | null;
  readonly replicaIndex: number;
  /** Every replica's address in index order; empty for an implicit single node. */
  readonly peers: readonly Address[];
  /**
   * The admin key file every replica of a cluster shares (hex Ed25519 seed, mode 0600; the admin
   * token is written beside it on creation). null: `<data-dir>/keys/admin.key`.
   */
  readonly adminKey: string | null;
  /** The TOML file read, if any. */
  readonly configFile: string | null;
}

export type ConfigOutcome =
  | { readonly kind: 'config'; readonly config: ServerConfig }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string };

export const USAGE = `usage: vdb-server [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--http HOST:PORT]
                  [--cluster-id ID --replica-index I --peers HOST:PORT,HOST:PORT,... --admin-key FILE]

  --config FILE        TOML file with flat keys: data_dir, listen, http, cluster_id, replica_index, peers, admin_key
  --data-dir DIR       data directory (default ./data)
  --listen HOST:PORT   client and replica port (default 127.0.0.1:7420; port 0 = any free port)
  --http HOST:PORT     HTTP sidecar: /health /ready /metrics (default 127.0.0.1:7421)
  --cluster-id ID      cluster id, decimal or 0x-hex, 1 .. 2^128-1
  --replica-index I    this replica's index in --peers (default 0)
  --peers LIST         every replica's listen address in index order, this one included
  --admin-key FILE     the cluster's admin key (hex Ed25519 seed, mode 0600), the same file on every
                       replica; created with admin.token beside it if missing (default
                       <data-dir>/keys/admin.key; required with 3 or 5 peers)

Every flag can also be given as an environment variable (VDB_CONFIG, VDB_DATA_DIR, VDB_LISTEN,
VDB_HTTP, VDB_CLUSTER_ID, VDB_REPLICA_INDEX, VDB_PEERS, VDB_ADMIN_KEY). Precedence: flag > env >
file > default.`;

type Key = 'dataDir' | 'listen' | 'http' | 'clusterId' | 'replicaIndex' | 'peers' | 'adminKey';

const SETTINGS: readonly { key: Key; flag: string; env: string; toml: string }[] = [
  { key: 'dataDir', flag: '--data-dir', env: 'VDB_DATA_DIR', toml: 'data_dir' },
  { key: 'listen', flag: '--listen', env: 'VDB_LISTEN', toml: 'listen' },
  { key: 'http', flag: '--http', env: 'VDB_HTTP', toml: 'http' },
  { key: 'clusterId', flag: '--cluster-id', env: 'VDB_CLUSTER_ID', toml: 'cluster_id' },
  { key: 'replicaIndex', flag: '--replica-index', env: 'VDB_REPLICA_INDEX', toml: 'replica_index' },
  { key: 'peers', flag: '--peers', env: 'VDB_PEERS', toml: 'peers' },
  { key: 'adminKey', flag: '--admin-key', env: 'VDB_ADMIN_KEY', toml: 'admin_key' },
];

export const DEFAULT_LISTEN = '127.0.0.1:7420';
export const DEFAULT_HTTP = '127.0.0.1:7421';
export const DEFAULT_DATA_DIR = './data';
/** Cluster sizes DESIGN §3 allows. */
const CLUSTER_SIZES: readonly number[] = [1, 3, 5];

/** A raw setting and where it came from (for error messages). */
interface Raw {
  readonly value: string | bigint | readonly string[];
  readonly source: string;
}

class ConfigFault extends Error {}

export interface ConfigSources {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the TOML file (injected for tests); throws on I/O errors. */
  readonly readFile: (path: string) => string;
}

/**
 * Resolves the configuration. Never throws on bad input: every defect is a message naming
 * the flag, variable or file line at fault.
 *
 * @example loadConfig({ argv: ['--listen', '127.0.0.1:0'], env: process.env, readFile })
 */
export function loadConfig(sources: ConfigSources): ConfigOutcome {
  try {
    const flags = parseArgv(sources.argv);
    if (flags === 'help') return { kind: 'help', text: USAGE };
    const configFile = flags.config ?? nonEmpty(sources.env['VDB_CONFIG']) ?? null;
    const file = configFile === null ? new Map<Key, Raw>() : readTomlSettings(configFile, sources.readFile);
    const merged = new Map<Key, Raw>(file);
    for (const setting of SETTINGS) {
      const env = nonEmpty(sources.env[setting.env]);
      if (env !== undefined) merged.set(setting.key, { value: env, source: setting.env });
      const flag = flags.values.get(setting.key);
      if (flag !== undefined) merged.set(setting.key, { value: flag, source: setting.flag });
    }
    return { kind: 'config', config: resolve(merged, configFile) };
  } catch (error) {
    if (error instanceof ConfigFault) return { kind: 'error', message: error.message };
    throw error;
  }
}

function parseArgv(argv: readonly string[]): { config: string | undefined; values: Map<Key, string> } | 'help' {
  const values = new Map<Key, string>();
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const setting = SETTINGS.find((s) => s.flag === name);
    if (setting === undefined && name !== '--config') {
      throw new ConfigFault(arg.startsWith('-') ? `unknown option ${name} (see --help)` : `unexpected argument "${arg}" (see --help)`);
    }
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigFault(`${name} needs a value`);
      i++;
    }
    if (value === '') throw new ConfigFault(`${name} needs a non-empty value`);
    if (name === '--config') {
      if (config !== undefined) throw new ConfigFault('--config is given twice');
      config = value;
    } else {
      const key = (setting as { key: Key }).key;
      if (values.has(key)) throw new ConfigFault(`${name} is given twice`);
      values.set(key, value);
    }
  }
  return { config, values };
}

function readTomlSettings(path: string, readFile: (path: string) => string): Map<Key, Raw> {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ConfigFault(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const parsed = parseToml(text);
  if (!parsed.ok) throw new ConfigFault(`${path}:${parsed.line}: ${parsed.message}`);
  const settings = new Map<Key, Raw>();
  for (const [name, { value, line }] of parsed.values) {
    const setting = SETTINGS.find((s) => s.toml === name);
    if (setting === undefined) {
      throw new ConfigFault(`${path}:${line}: unknown key "${name}" (known: ${SETTINGS.map((s) => s.toml).join(', ')})`);
    }
    settings.set(setting.key, { value: value as TomlValue, source: `${path}:${line}` });
  }
  return settings;
}

function resolve(raw: ReadonlyMap<Key, Raw>, configFile: string | null): ServerConfig {
  const dataDirRaw = raw.get('dataDir');
  const dataDir = dataDirRaw === undefined ? DEFAULT_DATA_DIR : text(dataDirRaw, 'a directory');
  const peers = raw.has('peers') ? peerList(raw.get('peers') as Raw) : [];
  const replicaIndexRaw = raw.get('replicaIndex');
  const replicaIndex = replicaIndexRaw === undefined ? 0 : integer(replicaIndexRaw, 0, limits.replicasMax - 1);
  const clusterIdRaw = raw.get('clusterId');
  const clusterId = clusterIdRaw === undefined ? null : clusterIdOf(clusterIdRaw);
  if (peers.length === 0 && replicaIndexRaw !== undefined && replicaIndex !== 0) {
    throw new ConfigFault(`${replicaIndexRaw.source}: replica index ${replicaIndex} needs --peers listing at least ${replicaIndex + 1} replicas`);
  }
  if (peers.length > 0) checkCluster(raw, peers, replicaIndex, clusterId);
  const listenRaw = raw.get('listen');
  const listen = listenRaw !== undefined ? address(listenRaw) : (peers[replicaIndex] ?? address({ value: DEFAULT_LISTEN, source: 'default' }));
  const httpRaw = raw.get('http');
  const http = address(httpRaw ?? { value: DEFAULT_HTTP, source: 'default' });
  if (listen.port !== 0 && listen.port === http.port && listen.host === http.host) {
    throw new ConfigFault(`--listen and --http both use ${formatAddress(listen)}`);
  }
  const adminKeyRaw = raw.get('adminKey');
  const adminKey = adminKeyRaw === undefined ? null : text(adminKeyRaw, 'a key file path');
  if (peers.length > 1 && adminKey === null) {
    throw new ConfigFault(`${(raw.get('peers') as Raw).source}: a cluster of ${peers.length} replicas needs --admin-key FILE, the admin key every replica shares `
      + '(replicas authenticate to each other with it; `vdb-admin cluster init` writes one)');
  }
  return { dataDir, listen, http, clusterId, replicaIndex, peers, adminKey, configFile };
}

function checkCluster(raw: ReadonlyMap<Key, Raw>, peers: readonly Address[], replicaIndex: number, clusterId: bigint | null): void {
  const source = (raw.get('peers') as Raw).source;
  if (!CLUSTER_SIZES.includes(peers.length)) {
    throw new ConfigFault(`${source}: a cluster has 1, 3 or 5 replicas, got ${peers.length}`);
  }
  const seen = new Set<string>();
  for (const peer of peers) {
    const key = formatAddress(peer);
    if (peer.port === 0) throw new ConfigFault(`${source}: peer ${key} needs a real port, not 0`);
    if (seen.has(key)) throw new ConfigFault(`${source}: ${key} is listed twice`);
    seen.add(key);
  }
  if (replicaIndex >= peers.length) {
    throw new ConfigFault(`${raw.get('replicaIndex')?.source ?? '--replica-index'}: replica index ${replicaIndex} is not below the ${peers.length} peers`);
  }
  if (peers.length === 1) return;
  if (clusterId === null) throw new ConfigFault(`${source}: a cluster of ${peers.length} replicas needs --cluster-id`);
  if (!raw.has('replicaIndex')) throw new ConfigFault(`${source}: a cluster of ${peers.length} replicas needs --replica-index`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function text(raw: Raw, what: string): string {
  if (typeof raw.value !== 'string' || raw.value === '') throw new ConfigFault(`${raw.source}: expected ${what} as a non-empty string`);
  return raw.value;
}

function address(raw: Raw): Address {
  const parsed = parseAddress(text(raw, 'HOST:PORT'));
  if (!parsed.ok) throw new ConfigFault(`${raw.source}: ${parsed.reason}`);
  return parsed.address;
}

function peerList(raw: Raw): Address[] {
  const items = Array.isArray(raw.value) ? raw.value as readonly string[]
    : text(raw, 'a comma-separated list of HOST:PORT').split(',').map((s) => s.trim());
  if (items.length === 0) throw new ConfigFault(`${raw.source}: the peer list is empty`);
  return items.map((item) => address({ value: item, source: raw.source }));
}

function integer(raw: Raw, min: number, max: number): number {
  const value = typeof raw.value === 'bigint' ? raw.value : typeof raw.value === 'string' && /^\d+$/.test(raw.value) ? BigInt(raw.value) : null;
  if (value === null || value < BigInt(min) || value > BigInt(max)) {
    throw new ConfigFault(`${raw.source}: expected an integer from ${min} to ${max}, got ${JSON.stringify(String(raw.value))}`);
  }
  return Number(value);
}

function clusterIdOf(raw: Raw): bigint {
  let value: bigint | null = null;
  if (typeof raw.value === 'bigint') value = raw.value;
  else if (typeof raw.value === 'string' && /^(0x[0-9a-fA-F]{1,32}|[0-9]{1,39})$/.test(raw.value)) value = BigInt(raw.value);
  if (value === null || value < 1n || value > U128_MAX) {
    throw new ConfigFault(`${raw.source}: a cluster id is an integer from 1 to 2^128-1 (decimal or 0x-hex), got ${JSON.stringify(String(raw.value))}`);
  }
  return value;
}
