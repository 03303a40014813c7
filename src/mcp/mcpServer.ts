/**
 * What every session shares: configuration, the broker, the session registry, the
 * logger, and the one MCP server that speaks for all of them.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SetLevelRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import type { ChatBroker } from '../chat/broker.js';
import type { UserActor } from '../chat/chatUser.js';
import type { ChatConfig } from '../config.js';
import type { ChatMetrics } from '../ops/metrics.js';
import type { SessionMux } from './sessionMux.js';
import type { SessionRegistry } from '../session/sessionRegistry.js';
import type { ChatSession } from '../session/chatSession.js';
import { registerChatTools } from './tools.js';

export interface ChatServices {
  readonly config: ChatConfig;
  readonly broker: ChatBroker;
  readonly sessions: SessionRegistry<ChatSession>;
  /** User actors that have not stopped yet: 0 once every session has ended. */
  readonly users: Set<UserActor>;
  readonly log: Logger;
  readonly metrics: ChatMetrics;
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Carries every session's messages to and from the one MCP server. */
  readonly mcp: SessionMux<ChatSession>;
}

export const SERVER_INFO = { name: 'mcp-chat', title: 'mcp-chat: chat roulette', version: '0.1.0' } as const;

export const INSTRUCTIONS = [
  'mcp-chat pairs you with a random stranger for a text chat.',
  'Call enter_queue; when a partner is found you get chatroom.found with a room_id (or enter_queue answers "matched" at once).',
  'Then send_message with that room_id; your partner\'s messages arrive as message.received.',
  'Call leave_chat to stop, or next to meet someone else. get_status tells where you are.',
].join(' ');

/**
 * The MCP server of every session: tools and `logging/setLevel` are registered once,
 * and each call works on the session `mux` says it came from.
 */
export function startMcpServer(mux: SessionMux<ChatSession>, config: ChatConfig, metrics: ChatMetrics): McpServer {
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: { listChanged: false }, logging: {} }, instructions: INSTRUCTIONS });
  registerChatTools(server, { limits: config, metrics, sessionOf: (extra) => mux.sessionOf(extra.requestId) });
  server.server.setRequestHandler(SetLevelRequestSchema, (request, extra) => {
    mux.sessionOf(extra.requestId)?.setLogLevel(request.params.level);
    return {};
  });
  // The mux starts at once: the server takes messages as soon as this returns.
  void server.connect(mux);
  return server;
}
