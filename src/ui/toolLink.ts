/**
 * How the window reaches mcp-chat's tools: through an MCP Apps host (hostLink.ts) or,
 * as a web page, straight to /mcp (pageLink.ts). Both answer a tool call with the
 * tool's result; a refusal is a result with `isError`, a failure to reach the server
 * a rejected promise.
 */

/** A tool's result, as far as the window reads it. */
export interface ToolResult {
  content?: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

export interface CallOptions {
  /** Page only: the request may outlive the page (the last one, when the tab closes). */
  keepalive?: boolean;
}

export interface ToolLink {
  call(name: string, args: Record<string, unknown>, options?: CallOptions): Promise<ToolResult>;
}

/** The server asks for its access token (page only): the person must give it. */
export class TokenRequired extends Error {
  constructor() {
    super('This server asks for its access token.');
  }
}

/** A result's JSON: its structuredContent, else (hosts that pass on only text) its text parsed. */
export function structuredOf(result: ToolResult): Record<string, unknown> {
  if (result.structuredContent) return result.structuredContent;
  try {
    const parsed: unknown = JSON.parse(textOf(result));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** A refusal's sentence, or a result's text. */
export function textOf(result: ToolResult): string {
  return (result.content ?? []).map((part) => (part.type === 'text' ? (part.text ?? '') : '')).join('');
}
