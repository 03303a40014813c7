import pino from 'pino';
import type { ChatConfig } from '../../src/config.js';
import { listen, type RunningChatServer } from '../../src/http/listen.js';
import { type ChatServerOptions, createChatServer } from '../../src/server.js';

/**
 * A real mcp-chat on an ephemeral loopback port, quiet unless LOG_LEVEL says otherwise.
 * All its clients come from one address, so the limits per address (new users, and
 * what one address holds at once) are lifted unless a test sets them. `options` gives it parts of its own (a process directory).
 */
export async function startTestServer(
  config: Partial<ChatConfig> = {},
  options: Omit<ChatServerOptions, 'config' | 'log'> = {},
): Promise<RunningChatServer> {
  return listen(
    await createChatServer({
      ...options,
      config: { host: '127.0.0.1', port: 0, newUsersPerMinute: 1_000_000, maxPerAddress: 1_000_000, ...config },
      log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
    }),
  );
}

export async function health(server: RunningChatServer): Promise<{
  status: string;
  sessions: number;
  users: Record<'idle' | 'waiting' | 'chatting', number>;
  actors: { users: number; rooms: number };
  queue: number;
}> {
  const response = await fetch(new URL('/healthz', server.url));
  return response.json() as never;
}
