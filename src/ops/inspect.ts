/**
 * The Stately inspector, connected to the running actor system (`mcp-chat --inspect`).
 *
 * A small bridge on 127.0.0.1 serves one page that embeds the Stately inspector UI
 * (https://stately.ai/inspect, which the user's browser loads) and, on the same port,
 * a WebSocket through which the actors' inspection events reach that page. The events
 * leave the actors through @statelyai/inspect's WebSocket inspector, whose `inspect`
 * observer the server passes to the queue (hence its rooms) and to every user actor
 * (hence its presence child).
 *
 * The bridge does what @statelyai/inspect/server's `createInspectorServer` does, with
 * three differences, each for safety: it listens on the loopback interface only (the
 * package's server listens on every interface, and what it relays includes every chat
 * message); it accepts WebSocket connections from no web page but its own, so another
 * site open in the same browser cannot read the chat; and a port in use is an error
 * that start-up reports, not an uncaught exception.
 *
 * Nothing here is loaded unless `--inspect` is given (the CLI imports it on demand).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWebSocketInspector } from '@statelyai/inspect';
import { WebSocket, WebSocketServer } from 'ws';
import type { InspectionEvent, Observer } from 'xstate';

/** Where the inspector UI comes from: the browser loads it, the server never does. */
const INSPECTOR_UI_URL = 'https://stately.ai/inspect';

/** Events kept for a page that opens late, besides the actors that are still alive. */
const RECENT_EVENTS = 200;

export interface InspectorBridge {
  /** What to open in a browser, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** The actors' inspection observer: pass it as `inspect` to `createChatServer()`. */
  readonly inspect: Observer<InspectionEvent>;
  /** Stops sending events and closes the bridge. */
  close(): Promise<void>;
}

export class InspectorPortError extends Error {
  override name = 'InspectorPortError';
}

/** Starts the bridge on 127.0.0.1:`port` (0 picks a free one) and connects an inspector to it. */
export async function startInspector({ port }: { port: number }): Promise<InspectorBridge> {
  const host = '127.0.0.1';
  let origins = new Set<string>();
  const page = bridgePage();
  const http = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '/') !== '/') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: open / for the inspector.');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
  });
  const sockets = new WebSocketServer({
    server: http,
    // The server's own inspector sends no Origin; a browser page must be the bridge's own.
    verifyClient: ({ req }: { req: IncomingMessage }) => req.headers.origin === undefined || origins.has(req.headers.origin),
  });
  const relay = new EventRelay();
  sockets.on('connection', (socket) => {
    for (const message of relay.replay()) socket.send(message);
    socket.on('message', (data) => {
      const message = data.toString();
      relay.keep(message);
      for (const client of sockets.clients) if (client !== socket && client.readyState === WebSocket.OPEN) client.send(message);
    });
  });

  // The WebSocket server re-emits the HTTP server's errors, which are handled here.
  sockets.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    http.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new InspectorPortError(`--inspect (MCP_CHAT_INSPECT): port ${port} on ${host} is in use; pick another with --inspect=PORT.`)
          : error,
      ),
    );
    http.listen(port, host, () => resolve());
  });
  const actualPort = (http.address() as AddressInfo).port;
  origins = new Set([`http://${host}:${actualPort}`, `http://localhost:${actualPort}`]);
  const inspector = createWebSocketInspector({ url: `ws://${host}:${actualPort}` });

  return {
    url: `http://${host}:${actualPort}/`,
    inspect: inspector.inspect,
    async close() {
      inspector.stop();
      for (const client of sockets.clients) client.terminate();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/**
 * What a page that opens late is sent first: the registration of every actor still
 * alive (so the queue shows, however long ago it started), then the latest events.
 */
class EventRelay {
  readonly #actors = new Map<string, string>();
  readonly #recent: string[] = [];

  keep(message: string): void {
    let event: { type?: string; sessionId?: string; snapshot?: { status?: string } };
    try {
      event = JSON.parse(message) as typeof event;
    } catch {
      return;
    }
    if (event.type === '@xstate.actor' && event.sessionId) {
      this.#actors.set(event.sessionId, message);
      return;
    }
    if (event.type === '@xstate.snapshot' && event.sessionId && event.snapshot?.status !== 'active') this.#actors.delete(event.sessionId);
    this.#recent.push(message);
    if (this.#recent.length > RECENT_EVENTS) this.#recent.shift();
  }

  replay(): string[] {
    return [...this.#actors.values(), ...this.#recent];
  }
}

/**
 * The page the user opens: the inspector UI in a frame, fed with the events from the
 * bridge's WebSocket (buffered until the UI says it is ready), as the package's page is.
 */
function bridgePage(): string {
  const uiOrigin = new URL(INSPECTOR_UI_URL).origin;
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mcp-chat: Stately inspector</title>
  <style>html, body, iframe { margin: 0; width: 100%; height: 100%; border: 0; }</style>
</head>
<body>
  <iframe id="inspector" src="${INSPECTOR_UI_URL}" title="Stately inspector"></iframe>
  <script>
    const frame = document.getElementById('inspector');
    const waiting = [];
    let ready = false;
    const uiOrigin = '${uiOrigin}';
    window.addEventListener('message', (event) => {
      if (event.origin === uiOrigin && event.data && event.data.type === '@statelyai.connected') {
        ready = true;
        for (const data of waiting.splice(0)) frame.contentWindow.postMessage(data, uiOrigin);
      }
    });
    const socket = new WebSocket('ws://' + location.host);
    socket.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (ready) frame.contentWindow.postMessage(data, uiOrigin);
      else waiting.push(data);
    };
  </script>
</body>
</html>
`;
}
