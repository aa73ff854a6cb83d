import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE, ensureAdminKeys, parseToml } from '@veritydb/server';
import { syncDirectory } from '@veritydb/storage';
import { U128_MAX, VerityError } from '@veritydb/types';
import { writeAtomically } from './export.js';

/**
 * The files of a local development cluster (DESIGN §11, `vdb-admin cluster init`):
 *
 *   DIR/replica-<i>.toml   flat keys: data_dir, listen, http, cluster_id, replica_index, peers, admin_key
 *   DIR/replica-<i>/       replica i's data dir
 *   DIR/admin.key          the cluster admin secret key (hex 32-byte Ed25519 seed, mode 0600),
 *                          the format of <data-dir>/keys/admin.key; every replica's admin_key
 *   DIR/admin.token        an admin token signed with it (mode 0600)
 *   DIR/admin.pub          its public key (hex), for verify-export --public-key
 *   DIR/replica-<i>.log    replica i's output, DIR/replica-<i>.pid its pid (cluster start)
 *
 * Replica i listens for clients and replicas on BASE + 2i and serves HTTP on BASE + 2i + 1, all
 * on 127.0.0.1 (BASE defaults to 7420, so replica 0 has the single node's default ports).
 */
export const CLUSTER_SIZES: readonly number[] = [3, 5];
export const BASE_PORT_DEFAULT = 7420;
export const CLUSTER_HOST = '127.0.0.1';
export const ADMIN_KEY_NAME = 'admin.key';
export const ADMIN_PUBLIC_KEY_NAME = 'admin.pub';
const CONFIG_NAME = /^replica-(\d+)\.toml$/;

export interface ClusterInit {
  readonly clusterId: string;
  readonly configs: string[];
  readonly addresses: string[];
  readonly http: string[];
  readonly token: string;
}

/** One replica as its config file describes it. */
export interface ReplicaConfig {
  readonly index: number;
  readonly config: string;
  readonly dataDir: string;
  readonly listen: string;
  readonly http: string;
  readonly clusterId: string;
}

export const configPath = (dir: string, index: number): string => join(resolve(dir), `replica-${index}.toml`);
export const pidPath = (dir: string, index: number): string => join(resolve(dir), `replica-${index}.pid`);
export const logPath = (dir: string, index: number): string => join(resolve(dir), `replica-${index}.log`);

/** Creates a cluster's files in DIR (new or without a cluster in it). */
export async function initCluster(dir: string, nodes: number, basePort: number, nowSeconds: number): Promise<ClusterInit> {
  if (!CLUSTER_SIZES.includes(nodes)) throw new VerityError('InvalidArgument', `a cluster has 3 or 5 nodes, not ${nodes}`);
  const root = resolve(dir);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const existing = (await readdir(root)).filter((name) => CONFIG_NAME.test(name) || name === ADMIN_KEY_NAME || name === ADMIN_TOKEN_FILE);
  if (existing.length > 0) throw new VerityError('ClusterExists', `${root} already holds a cluster (${existing.sort().join(', ')}): use cluster start, or another --dir`);
  const clusterId = `0x${((BigInt(`0x${randomBytes(16).toString('hex')}`) & U128_MAX) | 1n).toString(16)}`;
  // The server's own writer: DIR/admin.key and, beside it, DIR/admin.token.
  const keys = await ensureAdminKeys(root, nowSeconds, join(root, ADMIN_KEY_NAME));
  await writeFile(join(root, ADMIN_PUBLIC_KEY_NAME), `${Buffer.from(keys.publicKey).toString('hex')}\n`, { mode: 0o644 });
  await syncDirectory(root);
  const addresses = Array.from({ length: nodes }, (_, i) => `${CLUSTER_HOST}:${basePort + 2 * i}`);
  const http = Array.from({ length: nodes }, (_, i) => `${CLUSTER_HOST}:${basePort + 2 * i + 1}`);
  const configs: string[] = [];
  for (let i = 0; i < nodes; i++) {
    const text = [
      `# Replica ${i} of cluster ${clusterId}, written by vdb-admin cluster init. Start it with`,
      `# vdb-server --config ${configPath(root, i)}`,
      `data_dir = ${JSON.stringify(join(root, `replica-${i}`))}`,
      `listen = ${JSON.stringify(addresses[i])}`,
      `http = ${JSON.stringify(http[i])}`,
      `cluster_id = ${JSON.stringify(clusterId)}`,
      `replica_index = ${i}`,
      `peers = [${addresses.map((a) => JSON.stringify(a)).join(', ')}]`,
      `admin_key = ${JSON.stringify(join(root, ADMIN_KEY_NAME))}`,
      '',
    ].join('\n');
    await writeAtomically(configPath(root, i), (write) => write(Buffer.from(text)));
    configs.push(configPath(root, i));
  }
  const token = (await readFile(join(root, ADMIN_TOKEN_FILE), 'utf8')).trim();
  return { clusterId, configs, addresses, http, token };
}

/** The replicas DIR's config files describe, in index order (empty: no cluster there). */
export async function readCluster(dir: string): Promise<ReplicaConfig[]> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const indexes = names.map((name) => CONFIG_NAME.exec(name)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  const replicas: ReplicaConfig[] = [];
  for (const index of indexes) replicas.push(await readReplica(root, index));
  indexes.forEach((index, i) => {
    if (index !== i) throw new VerityError('BrokenCluster', `${root}: replica configs are not numbered 0..${indexes.length - 1} (found replica-${index}.toml)`);
  });
  return replicas;
}

async function readReplica(root: string, index: number): Promise<ReplicaConfig> {
  const config = configPath(root, index);
  const parsed = parseToml(await readFile(config, 'utf8'));
  if (!parsed.ok) throw new VerityError('BrokenCluster', `${config}:${parsed.line}: ${parsed.message}`);
  const text = (key: string): string => {
    const value = parsed.values.get(key)?.value;
    if (typeof value !== 'string') throw new VerityError('BrokenCluster', `${config}: ${key} must be a string`);
    return value;
  };
  return { index, config, dataDir: text('data_dir'), listen: text('listen'), http: text('http'), clusterId: text('cluster_id') };
}
