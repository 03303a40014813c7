/**
 * What the HTTP layer reads off a request for the MCP layer: its JSON-RPC id (so that
 * every error answer carries it), and the client's address (for limits per client).
 */
import type { HttpBindings } from '@hono/node-server';
import { isInitializeRequest, type RequestId } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { AddressResolver } from './clientAddress.js';

export const isRequest = (body: unknown): body is { id: RequestId; method: string } =>
  typeof body === 'object' && body !== null && 'method' in body && 'id' in body;

/** The SDK's own test for `initialize`, asked only of a body whose method says so (it runs a zod schema). */
export const isInitialize = (body: unknown): boolean =>
  (body as { method?: unknown } | null)?.method === 'initialize' && isInitializeRequest(body);

/** The JSON-RPC id of a request body, when it has a readable one. */
export function requestIdOf(body: unknown): RequestId | null {
  if (typeof body !== 'object' || body === null || !('id' in body)) return null;
  const { id } = body as { id: unknown };
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}

/**
 * A JSON error answer made without the request's id (the SDK transport's own refusals
 * say `"id": null`) gets it: clients match errors to requests by id.
 */
export async function withRequestId(response: Response, id: RequestId | null): Promise<Response> {
  if (id === null || response.status < 400 || !(response.headers.get('content-type') ?? '').includes('application/json')) return response;
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return new Response(text, response);
  }
  if (typeof answer !== 'object' || answer === null || !('error' in answer) || (answer as { id?: unknown }).id !== null)
    return new Response(text, response);
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(JSON.stringify({ ...answer, id }), { status: response.status, statusText: response.statusText, headers });
}

/** Where a request came from (src/http/clientAddress.ts). */
export function clientAddress(c: Context<{ Bindings: Partial<HttpBindings> }>, resolve: AddressResolver): string {
  return resolve(c.env?.incoming?.socket.remoteAddress, c.req.header('x-forwarded-for'));
}
