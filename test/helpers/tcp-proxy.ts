import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy that can misbehave on demand, to play a hung or lossy network between
 * sluice and Kafka: `stall()` keeps every connection open but forwards nothing (and accepts new
 * connections without forwarding); `drop()` resets every connection; `refuse()` resets every
 * connection, new ones too; `release()` forwards again.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();
  private stalled = false;
  private refusing = false;
  port = 0;

  constructor(private readonly target: () => { host: string; port: number }) {}

  /** `host`: any loopback address, e.g. 127.0.0.2 to reach a broker under a name its certificate lacks. */
  async start(port = 0, host = '127.0.0.1'): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.target());
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.on('data', (d) => {
      if (!upstream.write(d)) client.pause();
    });
    upstream.on('drain', () => !this.stalled && client.resume());
    upstream.on('data', (d) => {
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => !this.stalled && upstream.resume());
    if (this.stalled) {
      client.pause();
      upstream.pause();
    }
  }

  /** Packets vanish: connections stay open, nothing is forwarded either way. */
  stall(): void {
    this.stalled = true;
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  /** The broker is away: every connection is reset, new ones at once (like a stopped broker, without its restart time). */
  refuse(): void {
    this.refusing = true;
    this.drop();
  }

  release(): void {
    this.stalled = false;
    this.refusing = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  /** Every open connection is reset. */
  drop(): void {
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}
