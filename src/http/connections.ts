/**
 * Guards the HTTP server's TCP connections, below HTTP: a cap on how many are open at
 * once.
 *
 * Over the cap, a new connection gets a short raw `503` with `Retry-After` and is
 * closed before Node's HTTP parser sees it: Node's own `server.maxConnections` drops
 * the connection without a word, which a client cannot tell from a network fault.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { jsonRpcError } from './guards.js';

export interface ConnectionLimits {
  /** Connections open at once; the next one is answered 503 and closed. */
  maxConnections: number;
  /** Called once for each connection refused over the cap. */
  onRefused?: () => void;
}

export interface ConnectionGuard {
  /** Destroys refused connections still saying goodbye. */
  close(): void;
}

/** How long a refused connection may take to read its 503 and hang up. */
const REFUSED_LINGER_MS = 2_000;
/** What the client is told to wait before it tries again, in seconds. */
const RETRY_AFTER_S = 5;

/**
 * Puts the guard in front of `server`'s connection handling. Call it before the server
 * accepts its first connection.
 */
export function guardConnections(server: Server, limits: ConnectionLimits): ConnectionGuard {
  const open = new Set<Socket>();
  const refused = new Set<Socket>();
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

  return {
    close() {
      for (const socket of refused) socket.destroy();
    },
  };
}

/** The whole answer to a connection over the cap: status line, headers and body. */
function refusalBytes(maxConnections: number): Buffer {
  const body = JSON.stringify(jsonRpcError(-32000, `The server has too many open connections (${maxConnections}); try again in a few seconds.`));
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
