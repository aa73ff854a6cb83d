import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay between a client and the server that can lose a reply: after `loseNextReply()`,
 * the next bytes the server sends are swallowed and both sides are cut, so the client never
 * learns the outcome of the request it just sent (the server did execute it). Later connections
 * are relayed whole. Closed at teardown.
 *
 * @example
 *   const relay = await lossyRelay(t.teardown, server.listen);
 *   relay.loseNextReply();
 *   await connectionThroughRelay.execute(…); // IndeterminateError: the write happened, its reply was lost
 */
export interface LossyRelay {
  /** "127.0.0.1:PORT" to connect to instead of the server. */
  readonly address: string;
  /** Swallow the server's next bytes and cut that connection. */
  loseNextReply(): void;
  /** Replies swallowed so far. */
  lost(): number;
}

export async function lossyRelay(teardown: (fn: () => Promise<void> | void) => void, target: string): Promise<LossyRelay> {
  const [host, port] = target.split(':') as [string, string];
  let lose = false;
  let lost = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!lose) return void client.write(chunk);
      lose = false;
      lost += 1;
      client.destroy();
      upstream.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return { address: `127.0.0.1:${address.port}`, loseNextReply: () => { lose = true; }, lost: () => lost };
}
