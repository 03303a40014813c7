/**
 * Configuration in one place: every setting has a flag, an env twin and a default,
 * and a bad value stops start-up with a message that names the flag.
 */
import { parseArgs } from 'node:util';

export interface ChatConfig {
  host: string;
  port: number;
  maxMessageLength: number;
  eventBufferSize: number;
  keepAliveMs: number;
  graceMs: number;
  idleTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

interface Setting<K extends keyof ChatConfig> {
  key: K;
  flag: string;
  env: string;
  description: string;
  defaultValue: ChatConfig[K];
  parse: (raw: string) => ChatConfig[K] | undefined;
}

const integer = (min: number, max: number) => (raw: string) => {
  const value = Number(raw);
  return /^\d+$/.test(raw.trim()) && value >= min && value <= max ? value : undefined;
};
const oneOf = <T extends string>(...values: T[]) => (raw: string) => values.find((v) => v === raw);

const settings = [
  { key: 'host', flag: 'host', env: 'HOST', description: 'Address to listen on', defaultValue: '127.0.0.1', parse: (raw: string) => raw.trim() || undefined },
  { key: 'port', flag: 'port', env: 'PORT', description: 'Port to listen on (0 picks a free one)', defaultValue: 3000, parse: integer(0, 65535) },
  { key: 'maxMessageLength', flag: 'max-message-length', env: 'MCP_CHAT_MAX_MESSAGE_LENGTH', description: 'Longest message, in characters', defaultValue: 4000, parse: integer(1, 1_000_000) },
  { key: 'eventBufferSize', flag: 'event-buffer', env: 'MCP_CHAT_EVENT_BUFFER', description: 'Events kept per session for replay', defaultValue: 1000, parse: integer(1, 1_000_000) },
  { key: 'keepAliveMs', flag: 'keep-alive-ms', env: 'MCP_CHAT_KEEP_ALIVE_MS', description: 'SSE keep-alive comment interval in ms (0 = off)', defaultValue: 15_000, parse: integer(0, 3_600_000) },
  { key: 'graceMs', flag: 'grace-ms', env: 'MCP_CHAT_GRACE_MS', description: 'How long a closed legacy SSE stream may stay away before its session ends, in ms', defaultValue: 30_000, parse: integer(1, 86_400_000) },
  { key: 'idleTimeoutMs', flag: 'idle-timeout-ms', env: 'MCP_CHAT_IDLE_TIMEOUT_MS', description: 'How long a session may go without a request or an open stream before it ends, in ms', defaultValue: 60_000, parse: integer(1, 86_400_000) },
  { key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', description: 'fatal, error, warn, info, debug, trace or silent', defaultValue: 'info', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') },
] as const satisfies readonly Setting<keyof ChatConfig>[];

export const defaultConfig: ChatConfig = Object.fromEntries(
  settings.map((s) => [s.key, s.defaultValue]),
) as unknown as ChatConfig;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads flags (winning) and env vars; throws ConfigError naming the flag of a bad value. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ChatConfig & { help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
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
  const config: Record<string, unknown> = { ...defaultConfig };
  for (const setting of settings) {
    const fromFlag = (parsed.values as Record<string, string | boolean | undefined>)[setting.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[setting.env];
    if (raw === undefined || raw === '') continue;
    const value = setting.parse(raw);
    if (value === undefined)
      throw new ConfigError(`--${setting.flag} (${setting.env}) cannot be ${JSON.stringify(raw)}: ${setting.description.toLowerCase()}.`);
    config[setting.key] = value;
  }
  return { ...(config as unknown as ChatConfig), help: parsed.values.help === true };
}

export function helpText(): string {
  const rows = settings.map((s) => `  --${s.flag.padEnd(20)} ${s.env.padEnd(28)} ${s.description} (default: ${JSON.stringify(s.defaultValue)})`);
  return ['Usage: mcp-chat [flags]', '', '  flag                   env                          meaning', ...rows, '  --help, -h             show this help'].join('\n');
}
