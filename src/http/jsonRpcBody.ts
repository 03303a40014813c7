/**
 * Reads a POST body as one JSON-RPC message: `application/json`, small enough, valid
 * UTF-8, valid JSON, and not a batch; any other body is refused with an HTTP status
 * and a JSON-RPC error that says what to send instead.
 */
import type { IncomingMessage } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ChatConfig } from '../config.js';
import type { ChatMetrics, RefusalReason } from '../ops/metrics.js';
import { refuseHttp } from './guards.js';

/** A body read: parsed, and its bytes as they came (to send on to another process unchanged). */
export type BodyResult = { ok: true; body: unknown; bytes: Uint8Array } | { ok: false; response: Response };

/**
 * Reads a POST body as one JSON-RPC message: `application/json`, at most
 * `maxBodyBytes`, valid UTF-8, valid JSON, and not a batch.
 */
export async function readJsonRpcBody(c: Context, config: ChatConfig, metrics: ChatMetrics): Promise<BodyResult> {
  const fail = (reason: RefusalReason, status: ContentfulStatusCode, code: number, message: string): BodyResult => ({
    ok: false,
    response: refuseHttp(c, metrics, reason, status, code, message),
  });
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type))
    return fail(
      'unsupported_media_type',
      415,
      -32000,
      'Unsupported Media Type: send the JSON-RPC message as Content-Type: application/json.',
    );
  const tooLarge = () =>
    fail('body_too_large', 413, -32000, `Payload Too Large: request bodies are limited to ${config.maxBodyBytes} bytes.`);
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > config.maxBodyBytes) return tooLarge();
  // On Node, read the socket's stream itself: going through the web Request's body
  // stream costs a web-stream round trip per chunk on every message.
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  let bytes: Uint8Array | undefined;
  try {
    bytes = incoming ? await readNodeBody(incoming, config.maxBodyBytes) : await readWebBody(c.req.raw, config.maxBodyBytes);
  } catch {
    // The client hung up mid-body (or its request timed out): nobody reads an answer.
    // Ending quietly keeps a stalled or cut connection from printing a stack trace.
    return { ok: false, response: new Response(null, { status: 400 }) };
  }
  if (bytes === undefined) return tooLarge();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('parse_error', 400, -32700, 'Parse error: the request body is not valid UTF-8.');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail('parse_error', 400, -32700, 'Parse error: the request body is not valid JSON.');
  }
  if (Array.isArray(body))
    return fail('batch_not_supported', 400, -32600, 'Invalid Request: JSON-RPC batches are not supported; send one message per request.');
  return { ok: true, body, bytes };
}

/**
 * The body of a Node request, or undefined once it grows past `limit` bytes. Reading
 * then stops without destroying the socket, so the 413 can still be sent; the server
 * drains or drops what is left after the response.
 */
function readNodeBody(incoming: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  if (incoming.readableEnded || incoming.destroyed) return Promise.reject(new Error('the request body was already read or closed'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= limit) return void chunks.push(chunk);
      stop();
      incoming.pause();
      resolve(undefined);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    // A client that hangs up mid-body ends with 'close' and no 'end': never wait forever.
    const onClose = () => onError(new Error('the client closed the connection before the body ended'));
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
    incoming.once('close', onClose);
  });
}

/** The body of a web request, or undefined as soon as it grows past `limit` bytes. */
async function readWebBody(request: Request, limit: number): Promise<Uint8Array | undefined> {
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
