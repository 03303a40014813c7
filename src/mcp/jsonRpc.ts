/**
 * JSON-RPC error bodies, as the MCP transports send them; what is read off a message
 * before the SDK parses it; and what a checked message is by its shape.
 */
import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/server';

/** A JSON-RPC error answer; `id` is the request's when it could be read. */
export function jsonRpcError(code: number, message: string, id: string | number | null = null) {
  return { jsonrpc: '2.0' as const, error: { code, message }, id };
}

/** A JSON object (not an array): a message, or a part of one, whose fields may be read. */
export const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What a message already checked (by a transport, inbound) or built by the server
 * (outbound) is: its shape tells, without parsing it again.
 */
export const isRequestMessage = (message: JSONRPCMessage): message is JSONRPCRequest => 'method' in message && 'id' in message;

export const isResponseMessage = (message: JSONRPCMessage): message is JSONRPCMessage & { id: RequestId } =>
  !('method' in message) && 'id' in message;

/** Whether a request carries a progress token: only then may its answer be a stream of progress notes. */
export function asksForProgress(body: unknown): boolean {
  const meta = isJsonObject(body) && isJsonObject(body.params) ? body.params._meta : undefined;
  return isJsonObject(meta) && meta.progressToken !== undefined;
}
