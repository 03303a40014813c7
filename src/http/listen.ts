/**
 * Serves a built chat server (src/server.ts) over Node's HTTP: `listen()` resolves once
 * the port is bound and the process is listed in its process directory at its address,
 * with the URL of the MCP endpoint and a `close()` that ends every session first.
 * Connections are held to the configured limits: a request's head and body must arrive
 * in time, connections over the cap are refused, a response stuck behind a client that
 * stopped reading is closed, and TCP keep-alive notices peers that vanished.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { serve } from '@hono/node-server';
import type { ChatServer } from '../server.js';
import { guardConnections } from './connections.js';

/** How long closing streams get to flush their last events before sockets are cut. */
const FLUSH_MS = 1_000;

/**
 * How long an idle keep-alive connection stays open between requests. Node's default
 * (5 s) races clients that keep idle sockets for about as long without reading the
 * `Keep-Alive: timeout` hint (httpx, the Python SDK's client, keeps them 5 s): a POST
 * sent on a socket the server is closing fails with ECONNRESET. 65 s outlasts those
 * and the 60 s idle timeouts of common proxies and load balancers. Clients that read
 * the hint (undici, behind fetch) stop reusing a socket 2 s before it, and Node
 * closes 1 s after it, so they keep a 3 s margin whatever the value.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * Idle time before TCP keep-alive probes a connection. Node 20's libuv then probes
 * every second, ten times (TCP_KEEPINTVL 1, TCP_KEEPCNT 10), so a peer that vanished
 * from a quiet connection is noticed within about 40 s. A connection with unacknowledged
 * data (an SSE stream's keep-alive comments) is left to TCP's retransmission limit
 * instead, or to the stall sweep once its bytes pile up.
 */
const TCP_KEEP_ALIVE_DELAY_MS = 30_000;

export interface RunningChatServer extends ChatServer {
  readonly url: URL;
  readonly httpServer: Server;
  close(): Promise<void>;
}

export interface ListenOptions {
  /**
   * Where other server processes reach this one (`http://host:port`), as listed in the
   * process directory. By default the address it is bound to; bound to every interface,
   * its first external IPv4 address.
   */
  advertiseUrl?: string;
}

/**
 * Serves `chat` on its configured host and port. From then on the running server owns
 * it: a failure to bind or to list the process closes it, and `close()` closes it first.
 */
export async function listen(chat: ChatServer, options: ListenOptions = {}): Promise<RunningChatServer> {
  const { config, log, metrics } = chat.services;
  const httpServer = serve({
    fetch: chat.app.fetch,
    hostname: config.host,
    port: config.port,
    serverOptions: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default): check often
      // enough that a stalled request goes within its timeout plus a second at most.
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(config.headersTimeoutMs / 4)),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelay: TCP_KEEP_ALIVE_DELAY_MS,
    },
  }) as Server;
  // `serve` binds in a later tick: the guard is in place before the first connection.
  const connections = guardConnections(httpServer, {
    maxConnections: config.maxConnections,
    stalledMs: config.stalledStreamMs,
    onRefused: () => metrics.refused('server_full'),
    onStalled: (socket) =>
      log.info({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'closed a connection whose client stopped reading its response'),
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => {
      connections.close();
      chat.close().then(
        () => reject(error),
        () => reject(error),
      );
    };
    httpServer.once('error', failed);
    httpServer.once('listening', () => {
      httpServer.off('error', failed);
      resolve();
    });
  });
  // Once bound, an error of the listening socket (an accept that failed: EMFILE, ENFILE)
  // costs that one connection, never the process nor the connection guard.
  httpServer.on('error', (err) => log.error({ err }, 'the HTTP server hit an error; it goes on serving'));
  const address = httpServer.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  try {
    await chat.services.processDirectory.register(options.advertiseUrl ?? advertisedUrl(address));
  } catch (error) {
    await chat.close().catch(() => {});
    connections.close();
    await new Promise((resolve) => httpServer.close(resolve));
    throw error;
  }
  return {
    ...chat,
    url: new URL(`http://${hostInUrl}:${address.port}/mcp`),
    httpServer,
    async close() {
      await chat.close();
      connections.close();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        // Ended sessions finish their streams (the last notifications are still being
        // written); idle keep-alive sockets go now, anything left after a moment goes too.
        httpServer.closeIdleConnections();
        const force = setTimeout(() => httpServer.closeAllConnections(), FLUSH_MS);
        force.unref();
      });
    },
  };
}

/** Where other processes reach this one: its bound address, or for a wildcard bind an address of this machine's. */
function advertisedUrl({ address, family, port }: AddressInfo): string {
  const wildcard = address === '0.0.0.0' || address === '::';
  const host = wildcard ? externalIPv4() : address;
  return `http://${family === 'IPv6' && !wildcard ? `[${host}]` : host}:${port}`;
}

function externalIPv4(): string {
  for (const addresses of Object.values(networkInterfaces()))
    for (const candidate of addresses ?? []) if (candidate.family === 'IPv4' && !candidate.internal) return candidate.address;
  return '127.0.0.1';
}
