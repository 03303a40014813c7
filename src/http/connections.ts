/**
 * Guards the HTTP server's TCP connections, below HTTP: a cap on how many are open at
 * once, and a sweep that closes a connection whose response has stopped moving because
 * the client stopped reading (or its machine vanished while more was sent to it than
 * the socket buffers hold).
 *
 * Over the cap, a new connection gets a short raw `503` with `Retry-After` and is
 * closed before Node's HTTP parser sees it: Node's own `server.maxConnections` drops
 * the connection without a word, which a client cannot tell from a network fault.
 *
 * The sweep looks at each socket's unsent bytes, so it catches both ways a response
 * piles up: the legacy SSE transport writes to the `ServerResponse` without waiting,
 * so its bytes grow in the socket's buffer; @hono/node-server waits for 'drain' before
 * it writes the next chunk of a web stream, so for Streamable HTTP the socket keeps
 * one stuck chunk while the SDK's events grow in the stream's queue. Either way the
 * socket has unsent bytes and none of them leaves for `stalledMs`, and it is reset
 * (which also cancels the web stream and drops its queue).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { jsonRpcError } from '../mcp/jsonRpc.js';

export interface ConnectionLimits {
  /** Connections open at once; the next one is answered 503 and closed. */
  maxConnections: number;
  /** How long a socket may hold unsent bytes without sending any of them. */
  stalledMs: number;
  /** Called once for each connection refused over the cap. */
  onRefused?: () => void;
  /** Called once for each connection closed because its response stalled. */
  onStalled?: (socket: Socket) => void;
}

export interface ConnectionGuard {
  /** Stops the sweep and destroys refused connections still saying goodbye. */
  close(): void;
}

/** How long a refused connection may take to read its 503 and hang up. */
const REFUSED_LINGER_MS = 2_000;
/** What the client is told to wait before it tries again, in seconds. */
const RETRY_AFTER_S = 5;

/** Where a socket's sending stood when the sweep last saw it make progress. */
interface Progress {
  sent: number;
  since: number;
}

/**
 * Puts the guard in front of `server`'s connection handling. Call it before the server
 * accepts its first connection.
 */
export function guardConnections(server: Server, limits: ConnectionLimits): ConnectionGuard {
  const open = new Set<Socket>();
  const refused = new Set<Socket>();
  const progress = new WeakMap<Socket, Progress>();
  const refusal = refusalBytes(limits.maxConnections);

  // Node's HTTP server handles a connection in its own 'connection' listeners; the
  // guard takes them off and hands on only the connections it accepts (emitting
  // 'connection' is how Node documents giving a socket to an HTTP server).
  const serveHttp = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (open.size >= limits.maxConnections) return refuse(socket);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    for (const listener of serveHttp) listener.call(server, socket);
  });

  function refuse(socket: Socket): void {
    limits.onRefused?.();
    refused.add(socket);
    // Whatever the client sent is read and dropped: closing a socket with unread bytes
    // makes the kernel answer with a reset, which can destroy the 503 before it is read.
    socket.on('error', () => {});
    socket.resume();
    socket.end(refusal);
    const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    linger.unref();
    socket.once('close', () => {
      clearTimeout(linger);
      refused.delete(socket);
    });
  }

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const socket of open) {
        if (socket.destroyed) continue;
        if (socket.writableLength === 0) {
          progress.delete(socket);
          continue;
        }
        // Bytes handed to the kernel so far: written, less what still waits in Node.
        const sent = socket.bytesWritten - socket.writableLength;
        const seen = progress.get(socket);
        if (!seen || seen.sent !== sent) progress.set(socket, { sent, since: now });
        else if (now - seen.since >= limits.stalledMs) {
          limits.onStalled?.(socket);
          // A reset, not a FIN: a FIN would wait behind the unsent bytes, and the kernel
          // would keep them (megabytes) for a peer that takes none.
          socket.resetAndDestroy();
        }
      }
    },
    Math.min(1_000, Math.ceil(limits.stalledMs / 4)),
  );
  sweep.unref();

  return {
    close() {
      clearInterval(sweep);
      for (const socket of refused) socket.destroy();
    },
  };
}

/** The whole answer to a connection over the cap: status line, headers and body. */
function refusalBytes(maxConnections: number): Buffer {
  const body = JSON.stringify(
    jsonRpcError(-32000, `The server has too many open connections (${maxConnections}); try again in a few seconds.`),
  );
  return Buffer.from(
    [
      'HTTP/1.1 503 Service Unavailable',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `Retry-After: ${RETRY_AFTER_S}`,
      'Connection: close',
      '',
      body,
    ].join('\r\n'),
  );
}
