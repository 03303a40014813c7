/** JSON-RPC error bodies, as the MCP transports send them. */

/** A JSON-RPC error answer; `id` is the request's when it could be read. */
export function jsonRpcError(code: number, message: string, id: string | number | null = null) {
  return { jsonrpc: '2.0' as const, error: { code, message }, id };
}
