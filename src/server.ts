/**
 * The composition root: one place builds a chat server from its parts — configuration,
 * the broker and the reports and bans (in memory unless given), the users, the session
 * registry, the one MCP server every session speaks to, the metrics and the HTTP app —
 * and knows how to close them in order.
 */
import pino, { type Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import type { UserState } from '../machines/user.js';
import type { ChatBroker } from './chat/broker.js';
import { memoryBroker } from './chat/broker/memoryBroker.js';
import { memoryModeration, type ModerationStore } from './chat/moderation.js';
import { memoryProcessDirectory, secretHint, type ProcessDirectory } from './chat/processDirectory.js';
import { UserDirectory } from './chat/userDirectory.js';
import { defaultConfig, type ChatConfig } from './config.js';
import { createHttpApp, type AppServices, type HttpApp } from './http/app.js';
import { LogBudget } from './chat/eventLog.js';
import { eventsUri } from './mcp/eventsResource.js';
import { ListenBus } from './mcp/listenBus.js';
import { modernHandler, startMcpServer } from './mcp/mcpServer.js';
import { toChatMessage, type ChatMessage } from './mcp/notifications.js';
import { SessionMux } from './mcp/sessionMux.js';
import { createMetrics } from './ops/metrics.js';
import { AddressAllowance } from './session/addressAllowance.js';
import { NewUserLimit, sessionCallUsers, sessionlessCallUsers, type UserLimits } from './session/callUsers.js';
import type { ChatSession } from './session/chatSession.js';
import { SessionRegistry } from './session/sessionRegistry.js';

export interface ChatServerOptions {
  config?: Partial<ChatConfig>;
  /** Where the queue and rooms live; `memoryBroker()` by default. */
  broker?: ChatBroker;
  log?: Logger;
  /** The actors' inspection observer (e.g. the Stately inspector's). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * The server processes sharing the chat, this one among them (its `self` is this
   * process's id, which starts every token and session id); this one alone by default.
   * The server closes it.
   */
  processDirectory?: ProcessDirectory;
  /** Where users' reports and operators' bans live; `memoryModeration()` by default. The server closes it. */
  moderation?: ModerationStore;
}

/** What a server is made of: what its sessions share, the open sessions, the users, the metrics. */
export interface ServerParts extends AppServices {
  readonly broker: ChatBroker;
  readonly users: UserDirectory<ChatMessage>;
  readonly logBudget: LogBudget;
}

export interface ChatServer {
  readonly app: HttpApp;
  readonly services: ServerParts;
  /**
   * Stops taking sessions, closes every room (both members are told `shutdown`), ends
   * every user and session and stops the broker.
   */
  close(): Promise<void>;
}

export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const config: ChatConfig = { ...defaultConfig, ...options.config };
  const log = options.log ?? pino({ level: config.logLevel });
  const broker =
    options.broker ??
    memoryBroker({ inspect: options.inspect, matching: { interestWaitMs: config.interestWaitMs, rematchAfterMs: config.rematchAfterMs } });
  const sessions = new SessionRegistry();
  const moderation = options.moderation ?? memoryModeration();
  // Which process this is, and where the others are (src/http/routing.ts sends requests on).
  const processDirectory = options.processDirectory ?? memoryProcessDirectory();
  const processId = processDirectory.self;
  // Every event log together holds at most the budget: past it the largest logs shed first.
  const logBudget = new LogBudget(config.eventLogBudgetBytes, (events, logs) => log.warn({ events, logs }, 'event logs over their budget: the oldest events of the largest logs went'));
  const listens = new ListenBus((err) => log.warn({ err }, 'a listen could not be told of an update'));
  const users = new UserDirectory<ChatMessage>({
    broker,
    processId,
    presence: { idleMs: config.idleTimeoutMs, pairableMs: config.pairableMs, graceMs: config.graceMs, pageGraceMs: config.pageGraceMs },
    rate: { perSecond: config.messagesPerSecond, burst: config.messageBurst },
    rematchAfterMs: config.rematchAfterMs,
    log: { events: config.eventBufferSize, bytes: config.eventBufferBytes },
    logBudget,
    inspect: options.inspect,
    toEntry: toChatMessage,
    // A report names the room and the reason the reporter gave, never what was said;
    // operators read it at GET /admin/reports, its users named by their internal ids.
    onReport: ({ roomId, reason, userId, partnerId }) => {
      metrics.reported();
      log.warn({ room: roomId, reason }, 'partner reported');
      moderation
        .report({ roomId, reason, reporter: userId, reported: partnerId })
        .catch((err: unknown) => log.error({ err, room: roomId }, 'a report could not be kept for the operators'));
    },
    sizeOf: (message) => JSON.stringify(message.params).length,
    onNews: (user, message) => {
      // Message texts are the users' own business: the log says that one was relayed, not what.
      if (message.method !== 'message.received') log.info({ user: secretHint(user.token), ...message.params }, message.method);
      // 2026-07-28 clients listening to this user's events hear that there are new ones.
      listens.publish({ kind: 'resource_updated', uri: eventsUri(user.eventsKey) });
    },
  });
  const counts = {
    usersByState: () => usersByState(users.values()),
    users: () => users.size,
    rooms: () => broker.stats().rooms,
    waiting: () => broker.stats().waiting,
    reachable: () => broker.healthy?.() !== false,
    hasEvents: (eventsKey: string) => users.byEventsKey(eventsKey) !== undefined,
  };
  const metrics = createMetrics({
    ...counts,
    sessions: () => sessions.size,
    queueLength: counts.waiting,
    eventLogBytes: () => logBudget.bytes,
    eventsShed: () => logBudget.shed,
    listens: () => listens.size,
  });
  const mux = new SessionMux<ChatSession>();
  const allowance = new AddressAllowance(config.maxPerAddress);
  const limits: UserLimits = { newUsers: new NewUserLimit(config.newUsersPerMinute), maxUsers: config.maxUsers, allowance, bans: moderation };
  const mcpServer = startMcpServer(mux, config, metrics, sessionCallUsers(users, limits, mux));
  const modern = modernHandler(config, metrics, listens, sessionlessCallUsers(users, limits, mux), (key, after) => readEvents(users, key, after));
  const services: ServerParts = { config, broker, sessions, users, log, metrics, mcp: mux, modern, listens, allowance, logBudget, processId, processDirectory, moderation };
  const http = createHttpApp(services, counts);

  /** The broker failed: the server can no longer pair anyone. */
  broker.onFailure((err) => {
    http.fail();
    log.fatal({ err }, 'the broker failed: no one can be paired; /healthz reports it, restart the server');
  });

  return {
    app: http.app,
    services,
    async close() {
      http.stopTakingSessions();
      // Rooms close under both members (shutdown), then every user ends: held reads answer.
      // A broker that cannot reach its store (Redis down) still closes what this process holds.
      await broker.shutdown().catch((error: unknown) => log.warn({ err: error }, 'the broker could not tell the queue this process is leaving'));
      users.endAll('shutdown');
      // Sessions whose initialize was under way when closing began register late: wait
      // for those too. Each turn ends every session it found, so the loop moves on.
      while (sessions.size > 0 || http.opening > 0) {
        const open = [...sessions.values()];
        // The last words (partner.disconnected) reach the streams before they close.
        await Promise.all(open.map((session) => session.flushed()));
        await Promise.all(open.map((session) => session.end('shutdown')));
        if (open.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await broker.close();
      await Promise.all([mcpServer.close(), modern.close(), moderation.close()]);
      // Off the process directory last: requests sent here meanwhile were answered.
      await processDirectory.close();
    },
  };
}

/** A read of a user's log for the user-events resource: like wait_for_events, but it takes nothing. */
function readEvents(users: UserDirectory<ChatMessage>, eventsKey: string, after: string | undefined): Record<string, unknown> | undefined {
  const user = users.byEventsKey(eventsKey);
  if (!user) return undefined;
  const cursor = after === undefined ? 0 : (user.events.parseCursor(after) ?? user.events.last);
  const page = user.events.read(cursor);
  return {
    events: page.events.map(([id, { method, params }]) => ({ id: String(id), method, params: params ?? {} })),
    cursor: String(page.cursor),
    ...(page.missed > 0 && { missed: page.missed }),
  };
}

function usersByState(users: Iterable<{ state: UserState }>): Record<Exclude<UserState, 'ended'>, number> {
  const byState = { idle: 0, waiting: 0, chatting: 0 };
  for (const { state } of users) if (state !== 'ended') byState[state] += 1;
  return byState;
}
