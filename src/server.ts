/**
 * The composition root: one place builds a chat server from its configuration, in
 * dependency order — the broker, the process directory and the reports and bans (given,
 * on Redis with `redisUrl`, else in memory), the users, the session registry, the metrics,
 * the one MCP server every session speaks to and the HTTP app — and closes them in order.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pino, { type Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import type { UserState } from '../machines/user.js';
import { memoryBroker } from './chat/broker/memoryBroker.js';
import type { ChatBroker } from './chat/broker.js';
import { LogBudget } from './chat/eventLog.js';
import { type ModerationStore, memoryModeration } from './chat/moderation.js';
import { memoryProcessDirectory, type ProcessDirectory, secretHint } from './chat/processDirectory.js';
import { UserDirectory } from './chat/userDirectory.js';
import { type ChatConfig, defaultConfig } from './config.js';
import { createHttpApp, type HttpApp } from './http/app.js';
import type { AppServices } from './http/appServices.js';
import { eventsUri, readEventsPage } from './mcp/eventsResource.js';
import { ListenBus } from './mcp/listenBus.js';
import { modernHandler, startMcpServer } from './mcp/mcpServer.js';
import { type ChatMessage, toChatMessage } from './mcp/notifications.js';
import { SessionMux } from './mcp/sessionMux.js';
import { createMetrics } from './ops/metrics.js';
import { AddressAllowance } from './session/addressAllowance.js';
import { sessionCallUsers, sessionlessCallUsers } from './session/callUsers.js';
import type { ChatSession } from './session/chatSession.js';
import { NewUserLimit, type UserLimits } from './session/newUsers.js';
import { SessionRegistry } from './session/sessionRegistry.js';

/** How long closing waits, at most, for the users' last words to reach the broker: a Redis command's timeout. */
const LAST_WORDS_MS = 2_000;

export interface ChatServerOptions {
  /** The settings; with `redisUrl` the broker, the process directory and the reports and bans are on Redis. */
  config?: Partial<ChatConfig>;
  /** Where the queue and rooms live; by default built from the config (Redis or memory). */
  broker?: ChatBroker;
  log?: Logger;
  /** The actors' inspection observer (e.g. the Stately inspector's). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * The server processes sharing the chat, this one among them (its `self` is this
   * process's id, which starts every token and session id); this one alone by default,
   * the Redis one with `redisUrl`. The server closes it.
   */
  processDirectory?: ProcessDirectory;
  /** Where users' reports and operators' bans live; in memory by default, on Redis with `redisUrl`. The server closes it. */
  moderation?: ModerationStore;
}

/** What a server is made of: what its sessions share, the open sessions, the users, the metrics. */
export interface ServerParts extends AppServices {
  readonly broker: ChatBroker;
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

/**
 * Builds a chat server; rejects, naming the flag to fix, when Redis (`redisUrl`) cannot
 * be reached. It serves through `app` (src/http/listen.ts binds it to a port).
 */
export async function createChatServer(options: ChatServerOptions = {}): Promise<ChatServer> {
  const config: ChatConfig = { ...defaultConfig, ...options.config };
  const log = options.log ?? pino({ level: config.logLevel });
  // Where the queue and rooms live, which process this is and where the others are
  // (src/http/routing.ts sends requests on), and where reports and bans are kept.
  const { broker, processDirectory, moderation } = await sharedParts(config, options);
  const processId = processDirectory.self;
  const sessions = new SessionRegistry();
  // Every event log together holds at most the budget: past it the largest logs shed first.
  const logBudget = new LogBudget(config.eventLogBudgetBytes, (events, logs) =>
    log.warn({ events, logs }, 'event logs over their budget: the oldest events of the largest logs went'),
  );
  const listens = new ListenBus((err) => log.warn({ err }, 'a listen could not be told of an update'));
  // The gauges read the users when scraped and the users count their reports into the
  // metrics: of that loop, only these reads, made once both exist, name `users` below.
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
  const mux = new SessionMux<ChatSession>();
  const allowance = new AddressAllowance(config.maxPerAddress);
  const limits: UserLimits = {
    newUsers: new NewUserLimit(config.newUsersPerMinute),
    maxUsers: config.maxUsers,
    allowance,
    bans: moderation,
  };
  const mcpServer = startMcpServer(mux, config, metrics, sessionCallUsers(users, limits, mux));
  const modern = modernHandler(config, metrics, listens, sessionlessCallUsers(users, limits, mux), (key, after) =>
    readEventsPage(users, key, after),
  );
  const services: ServerParts = {
    config,
    broker,
    sessions,
    users,
    log,
    metrics,
    mcp: mux,
    modern,
    listens,
    allowance,
    logBudget,
    processId,
    processDirectory,
    moderation,
  };
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
      await broker
        .shutdown()
        .catch((error: unknown) => log.warn({ err: error }, 'the broker could not tell the queue this process is leaving'));
      const lastWords = users.endAll('shutdown');
      // Sessions whose initialize was under way when closing began register late: wait
      // for those too. Each turn ends every session it found, so the loop moves on.
      while (sessions.size > 0 || http.opening > 0) {
        const open = [...sessions.values()];
        // The last words (partner.disconnected) reach the streams before they close.
        await Promise.all(open.map((session) => session.flushed()));
        await Promise.all(open.map((session) => session.end('shutdown')));
        if (open.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // A partner on another process hears "shutdown" from the user's own leave, which
      // must reach the broker before the process leaves the cluster: the others would
      // otherwise close its rooms as a dead process's ("disconnected"). A broker that
      // cannot reach its store gets a moment, not its whole send timeout.
      await Promise.race([lastWords, delay(LAST_WORDS_MS, undefined, { ref: false })]);
      await broker.close();
      await Promise.all([mcpServer.close(), modern.close(), moderation.close()]);
      // Off the process directory last: requests sent here meanwhile were answered.
      await processDirectory.close();
    },
  };
}

/** What several server processes may share: where the queue and rooms live, where each process is, the reports and bans. */
interface SharedParts {
  readonly broker: ChatBroker;
  readonly processDirectory: ProcessDirectory;
  readonly moderation: ModerationStore;
}

/** The shared parts given, else on Redis with `redisUrl`, else in memory (this process alone). */
async function sharedParts(config: ChatConfig, options: ChatServerOptions): Promise<SharedParts> {
  if (config.redisUrl && !options.broker) return redisParts(config.redisUrl, config, options);
  return {
    broker: options.broker ?? memoryBroker({ inspect: options.inspect, matching: matchingOf(config) }),
    processDirectory: options.processDirectory ?? memoryProcessDirectory(),
    moderation: options.moderation ?? memoryModeration(),
  };
}

/**
 * The broker, the process directory and (unless given) the reports and bans on the Redis
 * at `url`. Loaded only here, so that a server in memory never loads ioredis.
 */
async function redisParts(url: string, config: ChatConfig, options: ChatServerOptions): Promise<SharedParts> {
  const [{ startScaleOut }, { redisModeration }] = await Promise.all([
    import('./chat/broker/redis/scaleOut.js'),
    import('./chat/broker/redis/moderation.js'),
  ]);
  const { broker, processDirectory, redis } = await startScaleOut({
    url,
    tlsCa: config.redisTlsCa ?? undefined,
    matching: matchingOf(config),
    beatEveryMs: config.heartbeatMs,
    deadAfterMs: config.deadAfterMs,
    inspect: options.inspect,
    ...(config.clusterSecret && { clusterSecret: config.clusterSecret }),
  });
  // Reports and bans on the Redis reached (its CA read once), so every process sees them.
  const moderation =
    options.moderation ??
    (await redisModeration(redis).catch(async (error: unknown) => {
      await Promise.all([broker.close(), processDirectory.close()]).catch(() => {});
      throw error;
    }));
  return { broker, processDirectory, moderation };
}

/** The queue's matching settings, the same whichever broker holds the queue. */
function matchingOf({ interestWaitMs, rematchAfterMs }: ChatConfig): { interestWaitMs: number; rematchAfterMs: number } {
  return { interestWaitMs, rematchAfterMs };
}

function usersByState(users: Iterable<{ state: UserState }>): Record<Exclude<UserState, 'ended'>, number> {
  const byState = { idle: 0, waiting: 0, chatting: 0 };
  for (const { state } of users) if (state !== 'ended') byState[state] += 1;
  return byState;
}
