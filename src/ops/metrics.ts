/**
 * Prometheus metrics for one server: gauges read from the live system when scraped,
 * counters and a histogram fed as things happen. Each server has its own registry, so
 * several can run in one process (as the tests do).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Why a request or tool call was refused; the label of `mcp_chat_refusals_total`. */
export type RefusalReason =
  | 'already_chatting'
  | 'not_chatting'
  | 'still_waiting'
  | 'not_your_room'
  | 'nothing_to_leave'
  | 'rate_limited'
  | 'invalid_arguments'
  | 'bad_cursor'
  | 'no_user'
  | 'unknown_token'
  | 'too_many_users'
  | 'forbidden_host'
  | 'forbidden_origin'
  | 'unauthorized'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'parse_error'
  | 'batch_not_supported'
  | 'no_session'
  | 'session_not_found'
  | 'server_full'
  | 'shutting_down'
  | 'server_failed'
  | 'broker_unavailable'
  /** The server holds `--max-users` users: a newcomer is turned away. */
  | 'users_full'
  /** A listen named too many URIs, or one that is not a user's events. */
  | 'bad_listen'
  /** One client address holds its `--max-per-address` of sessions, streams, held waits or listens. */
  | 'address_sessions'
  | 'address_streams'
  | 'address_waits'
  | 'address_listens'
  /** An operator banned the user (or, for a new user, its address). */
  | 'banned';

/** What the gauges read from the server each time they are scraped. */
export interface GaugeReadings {
  sessions(): number;
  /** Bytes all event logs hold together, and events their budget took. */
  eventLogBytes(): number;
  eventsShed(): number;
  /** 2026-07-28 listens open now. */
  listens(): number;
  usersByState(): Record<'idle' | 'waiting' | 'chatting', number>;
  rooms(): number;
  queueLength(): number;
}

export interface ChatMetrics {
  readonly registry: Registry;
  refused(reason: RefusalReason): void;
  /** A message was relayed; `seconds` from its send_message to its notification. */
  relayed(seconds: number): void;
  /** A user reported its partner. */
  reported(): void;
}

export function createMetrics(live: GaugeReadings): ChatMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mcp_chat_' });
  new Gauge({
    name: 'mcp_chat_sessions',
    help: 'MCP sessions open now',
    registers: [registry],
    collect() {
      this.set(live.sessions());
    },
  });
  new Gauge({
    name: 'mcp_chat_users',
    help: 'Users by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      for (const [state, count] of Object.entries(live.usersByState())) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'mcp_chat_rooms',
    help: 'Rooms open now',
    registers: [registry],
    collect() {
      this.set(live.rooms());
    },
  });
  new Gauge({
    name: 'mcp_chat_queue_length',
    help: 'Users waiting in the queue',
    registers: [registry],
    collect() {
      this.set(live.queueLength());
    },
  });
  new Gauge({
    name: 'mcp_chat_event_log_bytes',
    help: 'Bytes all event logs hold together (--event-log-budget-bytes bounds it)',
    registers: [registry],
    collect() {
      this.set(live.eventLogBytes());
    },
  });
  new Counter({
    name: 'mcp_chat_events_shed_total',
    help: 'Events taken from the largest logs because all logs together were over --event-log-budget-bytes',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(live.eventsShed());
    },
  });
  new Gauge({
    name: 'mcp_chat_listens',
    help: '2026-07-28 subscriptions/listen streams open now',
    registers: [registry],
    collect() {
      this.set(live.listens());
    },
  });
  const relayedTotal = new Counter({
    name: 'mcp_chat_messages_relayed_total',
    help: 'Messages relayed to a partner',
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'mcp_chat_relay_latency_seconds',
    help: 'From a send_message call to the partner notification being written',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const reports = new Counter({
    name: 'mcp_chat_reports_total',
    help: 'Partners reported by users (leave_chat or next with report)',
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'mcp_chat_refusals_total',
    help: 'Requests and tool calls refused, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  return {
    registry,
    refused: (reason) => refusals.inc({ reason }),
    reported: () => reports.inc(),
    relayed(seconds) {
      relayedTotal.inc();
      latency.observe(seconds);
    },
  };
}
