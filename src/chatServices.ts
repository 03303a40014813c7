/**
 * What every session shares: configuration, the broker, the session registry, the
 * logger, and how to make the MCP server that speaks for a session.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import type { ChatBroker } from './broker/port.js';
import type { UserActor } from './chatUser.js';
import type { ChatConfig } from './config.js';
import type { ChatMetrics } from './metrics.js';
import { SessionRegistry } from './sessionRegistry.js';
import type { ChatSession } from './chatSession.js';

export interface ChatServices {
  readonly config: ChatConfig;
  readonly broker: ChatBroker;
  readonly sessions: SessionRegistry<ChatSession>;
  /** User actors that have not stopped yet: 0 once every session has ended. */
  readonly users: Set<UserActor>;
  readonly log: Logger;
  readonly metrics: ChatMetrics;
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  createMcpServer(): McpServer;
}

export const SERVER_INFO = { name: 'mcp-chat', title: 'mcp-chat: chat roulette', version: '0.1.0' } as const;

export const INSTRUCTIONS = [
  'mcp-chat pairs you with a random stranger for a text chat.',
  'Call enter_queue; when a partner is found you get chatroom.found with a room_id (or enter_queue answers "matched" at once).',
  'Then send_message with that room_id; your partner\'s messages arrive as message.received.',
  'Call leave_chat to stop, or next to meet someone else. get_status tells where you are.',
].join(' ');

export function createMcpServerFactory(): () => McpServer {
  // Each McpServer would otherwise build its own Ajv (about 18 KiB and 0.6 ms a
  // session); the server only needs one to check elicitation answers, which mcp-chat
  // never asks for, so every session shares this one.
  const jsonSchemaValidator = new AjvJsonSchemaValidator();
  return () =>
    new McpServer(SERVER_INFO, {
      capabilities: { tools: { listChanged: false }, logging: {} },
      instructions: INSTRUCTIONS,
      jsonSchemaValidator,
    });
}
