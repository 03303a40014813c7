/**
 * What the scale-out tests share: a sessionless client (the ChatGPT pattern: tools/call
 * by user_token, no session) whose calls may go to any process, and real server
 * processes started on one Redis with short heartbeats.
 */
import { type ServerProcess, startServerProcess } from '../support/processes.js';
import { SessionlessClient } from '../support/tokenClient.js';

const BEAT_MS = 200;

export const mcpUrl = (server: ServerProcess) => new URL('/mcp', server.url);
export const clientOf = (server: ServerProcess) => new SessionlessClient(mcpUrl(server));

/** `count` server processes on the Redis at `url`, with short heartbeats. */
export function startChatProcesses(
  url: string,
  count: number,
  { deadAfterMs = 2_000, extra = [] as string[] } = {},
): Promise<ServerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      startServerProcess({
        args: [
          '--redis-url',
          url,
          '--heartbeat-ms',
          String(BEAT_MS),
          '--dead-after-ms',
          String(deadAfterMs),
          // Every test user comes from 127.0.0.1.
          '--new-users-per-minute',
          '1000000',
          '--max-per-address',
          '1000000',
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
