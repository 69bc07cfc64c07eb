/**
 * The HTTP listener for Prometheus and probes: GET /metrics (exposition text), /healthz
 * (the process answers) and /readyz (every configured volume group can be read). Plain
 * node:http: three fixed routes need no framework.
 */
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";
import type { LoamMetrics } from "./metrics.js";
import type { LvmStateSampler } from "./lvm-state.js";

export interface ListenAddress {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port" or ":port" (every interface). Returns undefined when malformed. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):([0-9]{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  const host = (match[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

export interface ObservabilityServerOptions {
  address: ListenAddress;
  metrics: LoamMetrics;
  lvmState?: LvmStateSampler;
  logger: Logger;
}

export interface RunningObservabilityServer {
  /** The bound address, e.g. "127.0.0.1:9975" (useful with port 0). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startObservabilityServer(
  options: ObservabilityServerOptions,
): Promise<RunningObservabilityServer> {
  const server = createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      options.logger.error("metrics request failed", { path: request.url, error });
      if (!response.headersSent) send(response, 500, "internal error\n");
      else response.destroy();
    });
  });
  // Probes and scrapes are short; a stuck client must not hold a socket for ever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.address.port, options.address.host || undefined, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  const url = `http://${host}:${bound.port}`;
  options.logger.info("serving metrics and probes", { url });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(
  options: ObservabilityServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = (request.url ?? "/").split("?")[0];
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.setHeader("Allow", "GET, HEAD");
    send(response, 405, "method not allowed\n");
    return;
  }
  switch (path) {
    case "/metrics": {
      const { contentType, body } = await options.metrics.scrape();
      send(response, 200, body, contentType);
      return;
    }
    case "/healthz":
      send(response, 200, "ok\n");
      return;
    case "/readyz": {
      const readings = options.lvmState ? await options.lvmState.read() : [];
      const failed = readings.filter((reading) => !reading.ok);
      if (failed.length === 0) send(response, 200, "ok\n");
      else
        send(
          response,
          503,
          failed.map((r) => `volume group ${r.volumeGroup} cannot be read: ${r.ok ? "" : r.error}\n`).join(""),
        );
      return;
    }
    default:
      send(response, 404, "not found; try /metrics, /healthz or /readyz\n");
  }
}

function send(response: ServerResponse, code: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  response.writeHead(code, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  response.end(body);
}
