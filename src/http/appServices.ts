/**
 * What the HTTP app is given and what its routes share: the services it serves from, the
 * counts /healthz reports, and the two questions every route asks of a request — from
 * which client address it came, and whether that client may take one more of something.
 */
import type { HttpBindings } from '@hono/node-server';
import type { RequestId } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { UserState } from '../../machines/user.js';
import type { ModerationStore } from '../chat/moderation.js';
import type { ProcessDirectory } from '../chat/processDirectory.js';
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ListenBus } from '../mcp/listenBus.js';
import type { ModernHandler } from '../mcp/mcpServer.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { ChatMetrics } from '../ops/metrics.js';
import type { AddressAllowance, Holding } from '../session/addressAllowance.js';
import type { SessionServices } from '../session/chatSession.js';
import type { SessionRegistry } from '../session/sessionRegistry.js';

/** Hono's environment under @hono/node-server: Node's request and response, when served by Node. */
export type Env = { Bindings: Partial<HttpBindings> };

/** What the app serves from: what sessions share, the open sessions, the metrics. */
export interface AppServices extends SessionServices {
  readonly sessions: SessionRegistry;
  readonly metrics: ChatMetrics;
  /** Serves requests of the stateless 2026-07-28 revision. */
  readonly modern: ModernHandler;
  /** The server processes sharing the chat (this one alone by default): where a request that is another's goes. */
  readonly processDirectory: ProcessDirectory;
  /** The 2026-07-28 push bus, indexed by resource URI: a listen is served in its scope. */
  readonly listens: ListenBus;
  /** What each client address holds at once, of sessions, streams, held waits and listens. */
  readonly allowance: AddressAllowance;
  /** Users' reports and operators' bans, for the operators' routes (src/http/admin.ts). */
  readonly moderation: ModerationStore;
  /** The users alive in this process, by token: a held `wait_for_events` waits on its user's log (src/http/mcp/heldWait.ts). */
  readonly users: UserDirectory<ChatMessage>;
}

/** The counts /healthz reports. */
export interface HealthCounts {
  usersByState(): Record<Exclude<UserState, 'ended'>, number>;
  users(): number;
  rooms(): number;
  waiting(): number;
  /** False while the broker cannot reach what it shares with other processes (Redis). */
  reachable(): boolean;
  /** Whether this process holds the user an events key names. */
  hasEvents(eventsKey: string): boolean;
}

/** A request's client address: the resolved peer, or what a believed forwarding claim says. */
export type ClientOf = (c: Context<Env>) => string;

/** Takes one `kind` of the client's allowance (its release), or answers 429 when the client holds all of it. */
export type TakeAllowance = (c: Context<Env>, kind: Holding, id?: RequestId | null) => (() => void) | Response;
