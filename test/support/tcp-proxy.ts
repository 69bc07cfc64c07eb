/**
 * A TCP proxy on loopback in front of one etcd member, which a test can cut and restore: cut()
 * destroys every live connection (the client's gRPC streams really break) and refuses new ones
 * (reset as soon as accepted) until restore(). Bytes pass through unchanged otherwise.
 */
import { type Server, type Socket, createConnection, createServer } from "node:net";

export class CuttableTcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cutOff = false;
  /** Connections accepted, and refused while cut (for tests that check the client really tried). */
  readonly stats = { accepted: 0, refused: 0 };

  private readonly server: Server;
  private listening = 0;

  private constructor(host: string, port: number) {
    this.server = createServer((client) => this.accept(client, host, port));
  }

  /** Listens on a free loopback port and forwards each connection to `target` (an etcd client URL). */
  static async start(target: string): Promise<CuttableTcpProxy> {
    const { hostname, port } = new URL(target);
    const proxy = new CuttableTcpProxy(hostname, Number(port));
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = proxy.server.address();
    if (typeof address !== "object" || !address) throw new Error("the proxy has no port");
    proxy.listening = address.port;
    return proxy;
  }

  get port(): number {
    return this.listening;
  }

  /** The URL a client uses instead of the member's. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.cutOff;
  }

  /** Destroys every live connection and refuses new ones until restore(). */
  cut(): void {
    this.cutOff = true;
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Accepts connections again. */
  restore(): void {
    this.cutOff = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.cutOff) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted++;
    const upstream = createConnection({ host, port });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
