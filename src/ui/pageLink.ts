/**
 * The window as a web page (`GET /`): MCP straight to the same origin's `/mcp`, in the
 * stateless 2026-07-28 revision (every request carries its protocol version, client
 * info and capabilities in `_meta`, its method and tool name in headers; no session,
 * so every call names its user by `user_token`). With `--token`, the person gives the
 * server's token once; it stays in this tab's session storage.
 */
import { tabStorage } from './tabStorage.js';
import { type CallOptions, TokenRequired, type ToolLink, type ToolResult } from './toolLink.js';

const PROTOCOL_VERSION = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': PROTOCOL_VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-chat page', version: '0.1.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const SERVER_TOKEN_KEY = 'mcp-chat server token';

interface Answer {
  id?: unknown;
  result?: ToolResult;
  error?: { message: string };
}

export class PageLink implements ToolLink {
  #nextId = 1;
  #serverToken: string | undefined;

  constructor(private readonly endpoint: string) {
    this.#serverToken = tabStorage.get(SERVER_TOKEN_KEY);
  }

  /** The token the person typed, for every request from now on. */
  setServerToken(token: string): void {
    this.#serverToken = token;
    tabStorage.set(SERVER_TOKEN_KEY, token);
  }

  async call(name: string, args: Record<string, unknown>, options: CallOptions = {}): Promise<ToolResult> {
    const id = this.#nextId++;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL_VERSION,
      'mcp-method': 'tools/call',
      'mcp-name': name,
    };
    if (this.#serverToken) headers.authorization = `Bearer ${this.#serverToken}`;
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: META } }),
      keepalive: options.keepalive === true,
      cache: 'no-store',
    });
    if (response.status === 401) throw new TokenRequired();
    const answer = await answerOf(response, id);
    if (answer.error) throw new Error(answer.error.message);
    if (!answer.result) throw new Error(`The server answered HTTP ${response.status} without a result.`);
    return answer.result;
  }
}

/** The JSON-RPC answer in a response: its body, or the event with its id when it streams. */
async function answerOf(response: Response, id: number): Promise<Answer> {
  const text = await response.text();
  if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    try {
      return JSON.parse(text) as Answer;
    } catch {
      throw new Error(`The server answered HTTP ${response.status}.`);
    }
  }
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    if (!data) continue;
    const message = JSON.parse(data) as Answer;
    if (message.id === id) return message;
  }
  throw new Error('The server ended its answer without a result.');
}
