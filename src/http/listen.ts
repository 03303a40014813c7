/**
 * Serves a chat server over Node's HTTP: `listen()` resolves once the port is bound,
 * with the URL of the MCP endpoint and a `close()` that ends every session first.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createChatServer, type ChatServer, type ChatServerOptions } from '../server.js';

/** How long closing streams get to flush their last events before sockets are cut. */
const FLUSH_MS = 1_000;

export interface RunningChatServer extends ChatServer {
  readonly url: URL;
  readonly httpServer: ServerType;
  close(): Promise<void>;
}

export async function listen(options: ChatServerOptions = {}): Promise<RunningChatServer> {
  const chat = createChatServer(options);
  const { host, port } = chat.services.config;
  const httpServer = await new Promise<ServerType>((resolve, reject) => {
    const server = serve({ fetch: chat.app.fetch, hostname: host, port }, () => resolve(server));
    server.once('error', reject);
  });
  const address = httpServer.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    ...chat,
    url: new URL(`http://${hostInUrl}:${address.port}/mcp`),
    httpServer,
    async close() {
      await chat.close();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        // Ended sessions finish their streams (the last notifications are still being
        // written); idle keep-alive sockets go now, anything left after a moment goes too.
        if ('closeIdleConnections' in httpServer) httpServer.closeIdleConnections();
        const force = setTimeout(() => {
          if ('closeAllConnections' in httpServer) httpServer.closeAllConnections();
        }, FLUSH_MS);
        force.unref();
      });
    },
  };
}
