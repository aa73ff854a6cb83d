import { Connection, formatAddress, type Address } from '@veritydb/client';
import type { Logger } from 'pino';

/**
 * What an empty replica data dir means (DESIGN §5.6): the first start of a new cluster, or a
 * member whose disk was lost (amnesia). A replica that formatted itself as new while its cluster
 * holds acknowledged writes could vote them away, so before formatting it asks every peer it can
 * reach for its status (the wire `status` request, with an admin token of the cluster): if any
 * peer has moved past view 0 or committed anything, the cluster exists and this replica rejoins
 * in recovery mode instead. Peers that do not answer are no evidence either way (on a new
 * cluster they are starting too).
 */
export const probeLimits = Object.freeze({
  connectTimeoutMs: 1_500,
  statusTimeoutMs: 1_500,
});

export interface ProbeResult {
  readonly decision: 'format' | 'rejoin';
  /** Peers that answered, with what they reported. */
  readonly answers: readonly { readonly replica: number; readonly view: number; readonly commit: number }[];
}

export async function probeCluster(peers: readonly Address[], self: number, token: string, clusterId: bigint, logger: Logger): Promise<ProbeResult> {
  const answers = await Promise.all(peers.map(async (peer, replica) => {
    if (replica === self) return null;
    let connection: Connection | null = null;
    try {
      connection = await Connection.open({
        address: formatAddress(peer), token, clientName: `replica-${self}-probe`, clusterId: clusterId as never, connectTimeoutMs: probeLimits.connectTimeoutMs,
      });
      const status = await connection.status({ timeoutMs: probeLimits.statusTimeoutMs });
      const own = status.replicas.find((r) => r.index === replica);
      return own === undefined ? null : { replica, view: own.view, commit: Number(own.commit) };
    } catch (error) {
      logger.debug({ peer: replica, err: error }, 'probe: peer did not answer');
      return null;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }));
  const answered = answers.filter((a): a is NonNullable<typeof a> => a !== null);
  const existing = answered.some((a) => a.view > 0 || a.commit > 0);
  return { decision: existing ? 'rejoin' : 'format', answers: answered };
}
