/**
 * Configuration in one place: every setting has a flag, an env twin and a default,
 * and a bad value stops start-up with a message that names the flag.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';

/** Which proxies' `X-Forwarded-For` to believe: the nearest `hops`, or those at these addresses/CIDRs. */
export type TrustProxy = { readonly hops: number } | { readonly cidrs: readonly string[] };

/** An IP address, or one with a prefix length (`10.0.0.0/8`, `fd00::/8`). */
function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

export interface ChatConfig {
  host: string;
  port: number;
  maxMessageLength: number;
  eventBufferSize: number;
  /** Bytes of events kept per user for replay and wait_for_events. */
  eventBufferBytes: number;
  keepAliveMs: number;
  graceMs: number;
  idleTimeoutMs: number;
  /** A waiting user with no sign of life this long keeps its place but is not paired. */
  pairableMs: number;
  /** How long a user with interests waits for someone sharing one before meeting anyone, in ms. */
  interestWaitMs: number;
  /** How long a user who left a partner is not paired with it again, in ms. */
  rematchAfterMs: number;
  /** A session with no stream and no call this long is dropped (its user lives on). */
  sessionIdleMs: number;
  /** New users one client address may make per minute. */
  newUsersPerMinute: number;
  /** Which proxies' X-Forwarded-For to believe: how many hops, or which addresses (src/http/clientAddress.ts). */
  trustProxy: TrustProxy;
  /** Messages a user may send per second, on average (a token bucket). */
  messagesPerSecond: number;
  /** Messages a user may send at once before the rate applies. */
  messageBurst: number;
  /** Largest request body, in bytes (HTTP 413 above it). */
  maxBodyBytes: number;
  /** Sessions open at once (HTTP 503 for more). */
  maxSessions: number;
  /** Sessions, open streams, held waits and listens that one client address may hold at once, each. */
  maxPerAddress: number;
  /** Users alive at once: a newcomer past it is refused (server full). */
  maxUsers: number;
  /** Bytes all users' event logs may hold together; past it the oldest events of the largest logs go. */
  eventLogBudgetBytes: number;
  /** URIs one `subscriptions/listen` may name. */
  maxListenUris: number;
  /** How long a request's line and headers may take to arrive, in ms (then 408, closed). */
  headersTimeoutMs: number;
  /** How long a whole request, body included, may take to arrive, in ms; not its response. */
  requestTimeoutMs: number;
  /** Client connections open at once (a raw HTTP 503 for more). */
  maxConnections: number;
  /** How long a response may wait on a client that stopped reading before its connection is closed, in ms. */
  stalledStreamMs: number;
  /** `wait_for_events` calls one user may have held at once; one more replaces the oldest. */
  maxWaitsPerUser: number;
  /** Origins a browser may call from; `*` in a port matches any port. */
  allowedOrigins: string[];
  /** Host headers accepted (DNS-rebinding protection); `*` in a port matches any port. */
  allowedHosts: string[];
  /** Bearer token every request must carry; null = no auth. */
  token: string | null;
  /** Bearer token of the operators' routes (/admin/*); null = those routes answer 404. */
  adminToken: string | null;
  /** How long a person who closed or reloaded the page may take to come back before leaving their chat (`left`), in ms. */
  pageGraceMs: number;
  /** Redis to share one queue with other processes; null = this process alone, in memory. */
  redisUrl: string | null;
  /** A PEM file of the CA that signed the Redis server's certificate (`rediss://` with a private CA); null = the system's CAs. */
  redisTlsCa: string | null;
  /**
   * What processes sharing one Redis sign forwarded requests with; null = one is made
   * on first start and shared through Redis.
   */
  clusterSecret: string | null;
  /** How often a process on Redis beats, in ms. */
  heartbeatMs: number;
  /** How long a process on Redis may stay silent before the others declare it dead, in ms. */
  deadAfterMs: number;
  /** Port of the Stately inspector bridge; null = off. */
  inspect: number | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

interface Setting<K extends keyof ChatConfig> {
  key: K;
  flag: string;
  env: string;
  description: string;
  defaultValue: ChatConfig[K];
  /** How `--help` shows the default, when JSON would not say it plainly. */
  defaultText?: string;
  parse: (raw: string) => ChatConfig[K] | undefined;
}

const integer = (min: number, max: number) => (raw: string) => {
  const value = Number(raw);
  return /^\d+$/.test(raw.trim()) && value >= min && value <= max ? value : undefined;
};
const oneOf =
  <T extends string>(...values: T[]) =>
  (raw: string) =>
    values.find((v) => v === raw);
const positiveNumber = (max: number) => (raw: string) => {
  const value = Number(raw);
  return raw.trim() !== '' && Number.isFinite(value) && value > 0 && value <= max ? value : undefined;
};
const list = (raw: string) => {
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  return items.length > 0 ? items : undefined;
};
/** `--trust-proxy`: a hop count (`true` = 1, `false` = 0) or a comma-separated list of addresses and CIDRs. */
const trustProxy = (raw: string): TrustProxy | undefined => {
  const value = raw.trim();
  if (value === 'true') return { hops: 1 };
  if (value === 'false') return { hops: 0 };
  if (/^\d{1,2}$/.test(value)) return { hops: Number(value) };
  const cidrs = list(value);
  return cidrs?.every(isCidr) ? { cidrs } : undefined;
};
const redisUrl = (raw: string) => (/^rediss?:\/\/[^\s]+$/.test(raw.trim()) ? raw.trim() : undefined);
const secret = (raw: string) => (raw.length >= 16 && !/\s/.test(raw) ? raw : undefined);
const optionalPort = (raw: string) =>
  raw === 'off' || raw === 'false' ? null : raw === 'true' ? DEFAULT_INSPECT_PORT : integer(1, 65535)(raw);

/** The port `--inspect` without a value uses (the inspector bridge's own default). */
const DEFAULT_INSPECT_PORT = 8080;

/** Every setting: what `--help` and the README table list. */
export const settings = [
  {
    key: 'host',
    flag: 'host',
    env: 'HOST',
    description: 'Address to listen on',
    defaultValue: '127.0.0.1',
    parse: (raw: string) => raw.trim() || undefined,
  },
  {
    key: 'port',
    flag: 'port',
    env: 'PORT',
    description: 'Port to listen on (0 picks a free one)',
    defaultValue: 3000,
    parse: integer(0, 65535),
  },
  {
    key: 'maxMessageLength',
    flag: 'max-message-length',
    env: 'MCP_CHAT_MAX_MESSAGE_LENGTH',
    description: 'Longest message, in characters',
    defaultValue: 4000,
    parse: integer(1, 1_000_000),
  },
  {
    key: 'eventBufferSize',
    flag: 'event-buffer',
    env: 'MCP_CHAT_EVENT_BUFFER',
    description: 'Events kept per user for replay and wait_for_events',
    defaultValue: 1000,
    parse: integer(1, 1_000_000),
  },
  {
    key: 'eventBufferBytes',
    flag: 'event-buffer-bytes',
    env: 'MCP_CHAT_EVENT_BUFFER_BYTES',
    description: 'Bytes of events kept per user (the oldest go first)',
    defaultValue: 1_048_576,
    parse: integer(1024, 1024 * 1024 * 1024),
  },
  {
    key: 'keepAliveMs',
    flag: 'keep-alive-ms',
    env: 'MCP_CHAT_KEEP_ALIVE_MS',
    description: 'SSE keep-alive comment interval in ms (0 = off)',
    defaultValue: 15_000,
    parse: integer(0, 3_600_000),
  },
  {
    key: 'graceMs',
    flag: 'grace-ms',
    env: 'MCP_CHAT_GRACE_MS',
    description:
      'How long a user whose last session ended (DELETE, or a legacy SSE stream gone) may take to call again with its token before it ends, in ms',
    defaultValue: 60_000,
    parse: integer(1, 86_400_000),
  },
  {
    key: 'idleTimeoutMs',
    flag: 'idle-timeout-ms',
    env: 'MCP_CHAT_IDLE_TIMEOUT_MS',
    description: 'How long a user may show no sign of life (no call, no open stream) before it ends, in ms',
    defaultValue: 300_000,
    parse: integer(1, 86_400_000),
  },
  {
    key: 'pairableMs',
    flag: 'pairable-ms',
    env: 'MCP_CHAT_PAIRABLE_MS',
    description: 'How long a waiting user may show no sign of life before it is no longer paired (it keeps its place), in ms',
    defaultValue: 30_000,
    parse: integer(1, 86_400_000),
  },
  {
    key: 'interestWaitMs',
    flag: 'interest-wait-ms',
    env: 'MCP_CHAT_INTEREST_WAIT_MS',
    description: 'How long a user with interests waits for someone sharing one before it may meet anyone, in ms',
    defaultValue: 10_000,
    parse: integer(0, 86_400_000),
  },
  {
    key: 'rematchAfterMs',
    flag: 'rematch-after-ms',
    env: 'MCP_CHAT_REMATCH_AFTER_MS',
    description: 'How long a user who left a partner (next, or a chat that ended) is not paired with it again, in ms',
    defaultValue: 30_000,
    parse: integer(0, 86_400_000),
  },
  {
    key: 'sessionIdleMs',
    flag: 'session-idle-ms',
    env: 'MCP_CHAT_SESSION_IDLE_MS',
    description: 'How long a session with no stream and no call stays open (its user lives on), in ms',
    defaultValue: 30_000,
    parse: integer(1, 86_400_000),
  },
  {
    key: 'newUsersPerMinute',
    flag: 'new-users-per-minute',
    env: 'MCP_CHAT_NEW_USERS_PER_MINUTE',
    description: 'New users one client address may make per minute',
    defaultValue: 60,
    parse: integer(1, 1_000_000),
  },
  {
    key: 'trustProxy',
    flag: 'trust-proxy',
    env: 'MCP_CHAT_TRUST_PROXY',
    description: 'Proxies whose X-Forwarded-For names the client: a hop count (true = 1) or comma-separated addresses/CIDRs',
    defaultValue: { hops: 0 },
    defaultText: 'false',
    parse: trustProxy,
  },
  {
    key: 'messagesPerSecond',
    flag: 'messages-per-second',
    env: 'MCP_CHAT_MESSAGES_PER_SECOND',
    description: 'Messages a user may send per second, on average',
    defaultValue: 5,
    parse: positiveNumber(10_000),
  },
  {
    key: 'messageBurst',
    flag: 'message-burst',
    env: 'MCP_CHAT_MESSAGE_BURST',
    description: 'Messages a user may send at once before the rate applies',
    defaultValue: 20,
    parse: integer(1, 100_000),
  },
  {
    key: 'maxBodyBytes',
    flag: 'max-body-bytes',
    env: 'MCP_CHAT_MAX_BODY_BYTES',
    description: 'Largest request body, in bytes',
    defaultValue: 262_144,
    parse: integer(1024, 64 * 1024 * 1024),
  },
  {
    key: 'maxSessions',
    flag: 'max-sessions',
    env: 'MCP_CHAT_MAX_SESSIONS',
    description: 'Sessions open at once',
    defaultValue: 20_000,
    parse: integer(1, 10_000_000),
  },
  {
    key: 'maxPerAddress',
    flag: 'max-per-address',
    env: 'MCP_CHAT_MAX_PER_ADDRESS',
    description: 'Sessions, open streams, held wait_for_events calls and listens one client address may hold at once (each)',
    defaultValue: 100,
    parse: integer(1, 10_000_000),
  },
  {
    key: 'maxUsers',
    flag: 'max-users',
    env: 'MCP_CHAT_MAX_USERS',
    description: 'Users alive at once (a newcomer past it is told the server is full)',
    defaultValue: 20_000,
    parse: integer(1, 10_000_000),
  },
  {
    key: 'eventLogBudgetBytes',
    flag: 'event-log-budget-bytes',
    env: 'MCP_CHAT_EVENT_LOG_BUDGET_BYTES',
    description: 'Bytes all event logs may hold together (past it the oldest events of the largest logs go)',
    defaultValue: 268_435_456,
    parse: integer(65_536, 64 * 1024 * 1024 * 1024),
  },
  {
    key: 'maxListenUris',
    flag: 'max-listen-uris',
    env: 'MCP_CHAT_MAX_LISTEN_URIS',
    description: 'Resource URIs one subscriptions/listen may name',
    defaultValue: 8,
    parse: integer(1, 1_000),
  },
  {
    key: 'headersTimeoutMs',
    flag: 'headers-timeout-ms',
    env: 'MCP_CHAT_HEADERS_TIMEOUT_MS',
    description: "How long a request's line and headers may take to arrive, in ms",
    defaultValue: 10_000,
    parse: integer(1_000, 3_600_000),
  },
  {
    key: 'requestTimeoutMs',
    flag: 'request-timeout-ms',
    env: 'MCP_CHAT_REQUEST_TIMEOUT_MS',
    description: 'How long a whole request, body included, may take to arrive, in ms (a response may last longer)',
    defaultValue: 30_000,
    parse: integer(1_000, 3_600_000),
  },
  {
    key: 'maxConnections',
    flag: 'max-connections',
    env: 'MCP_CHAT_MAX_CONNECTIONS',
    description: 'Client connections open at once',
    defaultValue: 25_000,
    parse: integer(1, 10_000_000),
  },
  {
    key: 'stalledStreamMs',
    flag: 'stalled-stream-ms',
    env: 'MCP_CHAT_STALLED_STREAM_MS',
    description: 'How long a response may wait on a client that stopped reading before its connection is closed, in ms',
    defaultValue: 30_000,
    parse: integer(1_000, 3_600_000),
  },
  {
    key: 'maxWaitsPerUser',
    flag: 'max-waits-per-user',
    env: 'MCP_CHAT_MAX_WAITS_PER_USER',
    description: 'wait_for_events calls one user may have held at once (one more replaces the oldest)',
    defaultValue: 4,
    parse: integer(1, 100),
  },
  {
    key: 'allowedOrigins',
    flag: 'allowed-origins',
    env: 'MCP_CHAT_ALLOWED_ORIGINS',
    description: 'Comma-separated browser origins allowed to call',
    defaultValue: ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*'],
    parse: list,
  },
  {
    key: 'allowedHosts',
    flag: 'allowed-hosts',
    env: 'MCP_CHAT_ALLOWED_HOSTS',
    description: 'Comma-separated Host headers accepted',
    defaultValue: ['localhost:*', '127.0.0.1:*', '[::1]:*'],
    parse: list,
  },
  {
    key: 'token',
    flag: 'token',
    env: 'MCP_CHAT_TOKEN',
    description: 'Bearer token required on every request (16+ characters, no spaces)',
    defaultValue: null,
    parse: secret,
  },
  {
    key: 'adminToken',
    flag: 'admin-token',
    env: 'MCP_CHAT_ADMIN_TOKEN',
    description:
      "Bearer token of the operators' routes /admin/reports and /admin/bans (16+ characters, no spaces); without it they answer 404",
    defaultValue: null,
    parse: secret,
  },
  {
    key: 'pageGraceMs',
    flag: 'page-grace-ms',
    env: 'MCP_CHAT_PAGE_GRACE_MS',
    description: 'How long a person who closed or reloaded the page may take to come back before leaving their chat, in ms',
    defaultValue: 8_000,
    parse: integer(100, 600_000),
  },
  {
    key: 'redisUrl',
    flag: 'redis-url',
    env: 'REDIS_URL',
    description:
      'Share one queue with other processes through this Redis (redis://[user:password@]host:port[/db], rediss:// for TLS); without it, one process, in memory',
    defaultValue: null,
    parse: redisUrl,
  },
  {
    key: 'redisTlsCa',
    flag: 'redis-tls-ca',
    env: 'MCP_CHAT_REDIS_TLS_CA',
    description: "A PEM file of the CA that signed Redis's certificate, for rediss:// with a private CA",
    defaultValue: null,
    parse: (raw: string) => raw.trim() || undefined,
  },
  {
    key: 'clusterSecret',
    flag: 'cluster-secret',
    env: 'MCP_CHAT_CLUSTER_SECRET',
    description:
      'What processes on one Redis sign forwarded requests with (16+ characters, no spaces); without it one is made and shared through Redis',
    defaultValue: null,
    parse: secret,
  },
  {
    key: 'heartbeatMs',
    flag: 'heartbeat-ms',
    env: 'MCP_CHAT_HEARTBEAT_MS',
    description: 'How often a process on Redis beats, in ms',
    defaultValue: 1_000,
    parse: integer(50, 60_000),
  },
  {
    key: 'deadAfterMs',
    flag: 'dead-after-ms',
    env: 'MCP_CHAT_DEAD_AFTER_MS',
    description: 'How long a process on Redis may stay silent before the others declare it dead, in ms (more than two beats)',
    defaultValue: 5_000,
    parse: integer(200, 600_000),
  },
  {
    key: 'inspect',
    flag: 'inspect',
    env: 'MCP_CHAT_INSPECT',
    description: `Serve the Stately inspector bridge on this port (--inspect alone: ${DEFAULT_INSPECT_PORT})`,
    defaultValue: null,
    parse: optionalPort,
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'LOG_LEVEL',
    description: 'fatal, error, warn, info, debug, trace or silent',
    defaultValue: 'info',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
] as const satisfies readonly Setting<keyof ChatConfig>[];

export const defaultConfig: ChatConfig = Object.fromEntries(settings.map((s) => [s.key, s.defaultValue])) as unknown as ChatConfig;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Settings whose values are never repeated in an error. */
const SECRET_KEYS = new Set<keyof ChatConfig>(['token', 'adminToken', 'clusterSecret', 'redisUrl']);

/** Whether a command-line word is a flag's value rather than the next flag. */
const hasValue = (next: string | undefined) => next !== undefined && !next.startsWith('-');

/** The command line's flags, each a string (the boolean `help` aside); throws ConfigError when one is unknown. */
function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      // `--inspect` may stand alone, like node's own flag; so may `--trust-proxy` (one hop).
      args: argv.map((arg, i) =>
        arg === '--inspect'
          ? `--inspect=${DEFAULT_INSPECT_PORT}`
          : arg === '--trust-proxy' && !hasValue(argv[i + 1])
            ? '--trust-proxy=true'
            : arg,
      ),
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(settings.map((s) => [s.flag, { type: 'string' as const }])),
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run mcp-chat --help for the flags.`);
  }
}

/** Reads flags (winning) and env vars; throws ConfigError naming the flag of a bad value. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ChatConfig & { help: boolean } {
  const parsed = parseFlags(argv);
  const config: Record<string, unknown> = { ...defaultConfig };
  for (const setting of settings) {
    const fromFlag = (parsed.values as Record<string, string | boolean | undefined>)[setting.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[setting.env];
    if (raw === undefined || raw === '') continue;
    const value = setting.parse(raw);
    if (value === undefined)
      throw new ConfigError(
        `--${setting.flag} (${setting.env}) cannot be ${SECRET_KEYS.has(setting.key) ? 'that value' : JSON.stringify(raw)}: ${setting.description.toLowerCase()}.`,
      );
    config[setting.key] = value;
  }
  if ((config.deadAfterMs as number) <= 2 * (config.heartbeatMs as number))
    throw new ConfigError(
      `--dead-after-ms (${config.deadAfterMs}) must be more than two --heartbeat-ms (${config.heartbeatMs}): one late beat must not declare a process dead.`,
    );
  // Node refuses a head timeout longer than the whole request's: say which flags to fix.
  if ((config.headersTimeoutMs as number) > (config.requestTimeoutMs as number))
    throw new ConfigError(
      `--headers-timeout-ms (${config.headersTimeoutMs}) cannot be more than --request-timeout-ms (${config.requestTimeoutMs}): the headers are part of the request.`,
    );
  return { ...(config as unknown as ChatConfig), help: parsed.values.help === true };
}

export function helpText(): string {
  const rows = settings.map(
    (s) =>
      `  --${s.flag.padEnd(20)} ${s.env.padEnd(30)} ${s.description} (default: ${'defaultText' in s ? s.defaultText : JSON.stringify(s.defaultValue)})`,
  );
  return [
    'Usage: mcp-chat [flags]',
    '',
    `  ${'flag'.padEnd(22)} ${'env'.padEnd(30)} meaning`,
    ...rows,
    '  --help, -h             show this help',
  ].join('\n');
}
