/**
 * What the scale-out tests share: a sessionless client (the ChatGPT pattern: tools/call
 * by user_token, no session) whose calls may go to any process, and real server
 * processes started on one Redis with short heartbeats.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { TokenClient, type ChatEvent } from '../support/perCallClient.js';
import { startServerProcess, type ServerProcess } from '../support/processes.js';
import { jsonHeaders, rpcAnswerOf } from '../support/rawSession.js';

const BEAT_MS = 200;
/** How long a test waits for an event by default: a death's bound and a generous margin. */
const WAIT_MS = 8_000;

/** A sessionless client whose calls go to `urlFor(n)` for its n-th call. */
export class Sessionless extends TokenClient {
  #id = 0;
  constructor(private readonly urlFor: (call: number) => URL) {
    super(urlFor(0));
  }

  protected async send(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const id = ++this.#id;
    const response = await fetch(this.urlFor(id), {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    });
    const text = await response.text();
    const answer = rpcAnswerOf(text);
    if (!response.ok || !answer?.result) throw new Error(`tools/call ${name}: HTTP ${response.status} ${text}`);
    return answer.result as unknown as CallToolResult;
  }

  /** Events until one of `method` arrives (or `ms` pass); answers all read. */
  async until(method: string, ms = WAIT_MS): Promise<ChatEvent[]> {
    const seen: ChatEvent[] = [];
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      seen.push(...(await this.waitForEvents(Math.min(5, Math.max(0.1, (deadline - Date.now()) / 1000)))));
      if (seen.some((e) => e.method === method)) return seen;
    }
    throw new Error(`no ${method} within ${ms} ms; saw ${JSON.stringify(seen)}`);
  }
}

export const mcpUrl = (server: ServerProcess) => new URL('/mcp', server.url);
export const clientOf = (server: ServerProcess) => new Sessionless(() => mcpUrl(server));

/** `count` server processes on the Redis at `url`, with short heartbeats. */
export function startChatProcesses(url: string, count: number, { deadAfterMs = 2_000, extra = [] as string[] } = {}): Promise<ServerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      startServerProcess({
        args: [
          '--redis-url', url,
          '--heartbeat-ms', String(BEAT_MS),
          '--dead-after-ms', String(deadAfterMs),
          // Every test user comes from 127.0.0.1.
          '--new-users-per-minute', '1000000',
          '--max-per-address', '1000000',
          ...extra,
        ],
      }),
    ),
  );
}

export async function healthOf(server: ServerProcess): Promise<number> {
  try {
    return (await fetch(new URL('/healthz', server.url))).status;
  } catch {
    return 0;
  }
}
