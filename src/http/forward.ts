/**
 * Sends one HTTP request on to another server process and hands back its answer as a
 * web `Response` whose body streams as the owner writes it: SSE streams and held calls
 * flow through unbuffered, and the upstream request ends when the client goes away.
 *
 * Node's `http.request` rather than `fetch`: fetch bounds a response's headers and each
 * gap in its body to 300 s (a quiet session stream or a long hold is cut), decodes
 * compressed bodies behind the headers' back, and decides the Host header itself. Here
 * the method, path, headers (Host, Authorization and `Mcp-*` included) and body bytes go
 * as they came, less the hop-by-hop headers.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { ByteLengthQueuingStrategy } from 'node:stream/web';

/** A new connection to the owner must be made within this, or the request fails (never hangs). */
const CONNECT_TIMEOUT_MS = 2_000;
/** How much of the owner's answer waits here for a slow client before reading pauses. */
const BUFFERED_BYTES = 64 * 1024;

/** Headers that describe one connection, not the request or answer they travel with. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Connections to other processes, kept open between requests. Sockets idle in the pool
 * do not keep Node running.
 */
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

export interface ForwardRequest {
  method: string;
  headers: Headers;
  body?: Uint8Array;
  /** Aborts the request upstream (the client went away). */
  signal: AbortSignal;
}

/**
 * What came of it: the owner's answer; `gone` when nothing listens at its address (it
 * died without leaving the directory); or `failed` (the connection broke before an
 * answer, or the client went away).
 */
export type Forwarded =
  | { outcome: 'answered'; response: Response }
  | { outcome: 'gone'; error: Error }
  | { outcome: 'failed'; error: Error };

/**
 * Error codes that mean no process listens at the address. A host that does not answer
 * (a connect timeout, unreachable) may be cut off for a moment only: that is a failure,
 * not a death — the membership's sweep decides deaths.
 */
const GONE = new Set(['ECONNREFUSED', 'ENOTFOUND']);

/** Sends `request` to `target` (the owner's address, with this request's path and query). */
export async function forward(target: URL, request: ForwardRequest): Promise<Forwarded> {
  const headers = requestHeaders(request.headers, request.body);
  const attempt = (retrying: boolean): Promise<Forwarded> =>
    new Promise((resolve) => {
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const upstream = send(target, {
        method: request.method,
        headers,
        agent: target.protocol === 'https:' ? agents.https : agents.http,
        signal: request.signal,
      });
      upstream.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () =>
            upstream.destroy(
              Object.assign(new Error(`no connection to ${target.host} within ${CONNECT_TIMEOUT_MS} ms`), { code: 'ECONNECT_TIMEOUT' }),
            ),
          CONNECT_TIMEOUT_MS,
        );
        socket.once('connect', () => clearTimeout(timer));
        upstream.once('close', () => clearTimeout(timer));
      });
      let answered = false;
      upstream.once('response', (answer) => {
        answered = true;
        resolve({ outcome: 'answered', response: toResponse(answer) });
      });
      // Errors after the answer began reach its body stream, which ends the client's response.
      upstream.on('error', (error: NodeJS.ErrnoException) => {
        if (answered) return;
        // A kept-alive connection the owner closed as it was reused: nothing was served
        // on it (Node's documented case for `reusedSocket`), so sending again is safe.
        if (!retrying && upstream.reusedSocket && error.code === 'ECONNRESET' && !request.signal.aborted)
          return void attempt(true).then(resolve);
        resolve({ outcome: GONE.has(error.code ?? '') ? 'gone' : 'failed', error });
      });
      upstream.end(request.body);
    });
  return attempt(false);
}

function requestHeaders(incoming: Headers, body: Uint8Array | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const perConnection = new Set(HOP_BY_HOP);
  for (const name of (incoming.get('connection') ?? '').split(',')) perConnection.add(name.trim().toLowerCase());
  // The body was read here in full: the owner has nothing to agree to before it is sent.
  perConnection.add('expect');
  incoming.forEach((value, name) => {
    if (!perConnection.has(name) && name !== 'content-length') headers[name] = value;
  });
  if (body !== undefined) headers['content-length'] = String(body.byteLength);
  return headers;
}

/**
 * The owner's answer as a web `Response`. CORS headers and `Vary` are left to this
 * process's own guards, which answer for the response the client gets (they would
 * otherwise be doubled).
 */
function toResponse(answer: IncomingMessage): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'vary' || name.startsWith('access-control-')) continue;
    if (Array.isArray(value)) for (const each of value) headers.append(name, each);
    else headers.set(name, value);
  }
  const status = answer.statusCode ?? 502;
  if (status === 204 || status === 205 || status === 304) {
    answer.resume();
    return new Response(null, { status, statusText: answer.statusMessage, headers });
  }
  const body = Readable.toWeb(answer, { strategy: new ByteLengthQueuingStrategy({ highWaterMark: BUFFERED_BYTES }) });
  return new Response(body as unknown as ReadableStream<Uint8Array>, { status, statusText: answer.statusMessage, headers });
}
