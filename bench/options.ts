/**
 * The bench's flags (node:util parseArgs), the `--quick` preset, and the cap that the
 * open-file limit and the loopback port range put on how many sessions a run can hold.
 * Also the flags mcp-chat is started with: its per-user message rate limit and its limits
 * on new users and on what one client address holds (every bench user comes from
 * 127.0.0.1) would refuse the bench's own load, so they are raised — the limiters still
 * run, they just never say no — and the session cap is lifted above the sessions the run opens.
 */
import { execFileSync } from 'node:child_process';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ephemeralPortCount, openFileLimit } from './procStats.js';

/** The parts of the bench, in the order a whole run runs them; `--only` runs one alone. */
export const BENCH_PARTS = ['relay', 'eras', 'matching', 'scale-out', 'under-attack'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

export const USAGE = `Usage: npm run bench -- [flags]     (or: node dist/bench/run.js [flags])

  --quick              a short run: 200 sessions, 50 pairs, 10 per client kind, 100 users per era, 3 s phases; shorter scale-out
  --sessions N         idle sessions opened and weighed per server (default 5000)
  --pairs N            pairs that chat during the load phases (default 500)
  --kind-pairs N       pairs of each client kind that keeps no session, and of the per-era comparison (default 100)
  --users N            users weighed per era and server, each holding a wait_for_events (default 2000)
  --messages N         most messages per load phase (default 1000000)
  --duration S         seconds per load phase (default 10)
  --rate N             offered msgs/s for the latency phase (default: half the slower server's saturation)
  --workers N          load-generator processes per server (default 2)
  --message-size N     characters per message (default 128)
  --server-arg ARG     extra flag for mcp-chat, repeatable (e.g. --server-arg=--event-buffer=64)
  --only PART          one part alone, its fields of bench/results.json replaced: relay (beside the floor, by client
                       kind), eras (beside the v2 peer and the floor), matching (the queue chart), scale-out (1–3
                       processes, in memory and on Redis), under-attack (a pair while one address holds its allowance)
  --cpu-prof           write V8 CPU profiles of the servers and load workers to bench/profiles/
  --help               this text`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function count(flag: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min) throw new UsageError(`--${flag} must be a whole number ≥ ${min}, not ${JSON.stringify(raw)}`);
  return value;
}

const NUMBER = { type: 'string' as const };
const FLAGS = {
  quick: { type: 'boolean', default: false },
  ...{ sessions: NUMBER, pairs: NUMBER, 'kind-pairs': NUMBER, users: NUMBER, messages: NUMBER, duration: NUMBER },
  ...{ rate: NUMBER, workers: NUMBER, 'message-size': NUMBER, only: { type: 'string' } },
  'server-arg': { type: 'string', multiple: true, default: [] },
  'cpu-prof': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies ParseArgsConfig['options'];

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The flags, as USAGE says; `kindDuration` is the phase length of the client kinds and eras, `capNote` why `sessions` was lowered. */
export type BenchOptions = ReturnType<typeof optionsOf> & { capNote?: string };

function optionsOf(values: ReturnType<typeof parseFlags>) {
  const { quick, only } = values;
  if (only !== undefined && !(BENCH_PARTS as readonly string[]).includes(only))
    throw new UsageError(`--only must be one of ${BENCH_PARTS.join(', ')}, not ${JSON.stringify(only)}`);
  const sessions = count('sessions', values.sessions, quick ? 200 : 5000, 2);
  return {
    quick,
    sessions,
    warmupSessions: Math.min(256, Math.max(16, Math.round(sessions / 10))),
    pairs: count('pairs', values.pairs, quick ? 50 : 500),
    kindPairs: count('kind-pairs', values['kind-pairs'], quick ? 10 : 100),
    users: count('users', values.users, quick ? 100 : 2000, 2),
    messages: count('messages', values.messages, quick ? 100_000 : 1_000_000),
    duration: count('duration', values.duration, quick ? 3 : 10),
    kindDuration: count('duration', values.duration, quick ? 2 : 10),
    rate: values.rate === undefined ? null : count('rate', values.rate, 0),
    workers: count('workers', values.workers, 2),
    messageSize: count('message-size', values['message-size'], 128, 40),
    serverArgs: values['server-arg'],
    cpuProf: values['cpu-prof'],
    only: only as BenchPart | undefined,
  };
}

export function readOptions(argv: string[]): BenchOptions | 'help' {
  const values = parseFlags(argv);
  return values.help ? 'help' : capSessions(optionsOf(values));
}

/**
 * Every session holds a socket in the server and one in a worker, and every socket
 * towards one server port needs its own loopback port: cap `sessions` (and the users
 * weighed per era, each holding a poll's socket) so that neither the open-file limit
 * (`ulimit -n`) nor the port range is exceeded, and say so.
 */
function capSessions(options: BenchOptions): BenchOptions {
  // Pooled POST connections (64 per worker), warm-up sessions, and a held poll per token client.
  const overhead = options.workers * 64 + 128 + options.warmupSessions + 2 * options.kindPairs;
  const [fds, ports] = [openFileLimit(), ephemeralPortCount()];
  const fit = Math.max(2, Math.min(fds, ports) - overhead);
  const limit = fds <= ports ? `ulimit -n is ${fds}` : `the loopback port range holds ${ports} ports`;
  const lowered = (['sessions', 'users'] as const).filter((key) => options[key] > fit).map((key) => `--${key} ${options[key]}`);
  const sessions = Math.min(options.sessions, fit);
  return {
    ...options,
    sessions,
    users: Math.min(options.users, fit),
    pairs: Math.min(options.pairs, Math.floor((sessions + options.warmupSessions) / 2)),
    ...(lowered.length > 0 && {
      capNote: `${lowered.join(' and ')} lowered to ${fit}: ${limit}, and the server needs one socket per session plus ${overhead} for pooled connections and warm-up (raise ulimit -n / widen net.ipv4.ip_local_port_range to go further)`,
    }),
  };
}

/** What `mcp-chat --help` prints. */
export function helpOf(cliPath: string): string {
  try {
    return execFileSync(process.execPath, [cliPath, '--help'], { encoding: 'utf8', timeout: 15_000 });
  } catch (error) {
    throw new Error(`node ${cliPath} --help failed (is the build current? run npm run build): ${(error as Error).message}`);
  }
}

/** A flag's default as `--help` lists it; NaN when it lists none. */
export const defaultOf = (help: string, flag: string) =>
  Number(new RegExp(`^\\s*--${flag}\\b.*\\(default: (\\d+)\\)`, 'm').exec(help)?.[1] ?? NaN);

/** mcp-chat's flags for the relay and eras parts, and a note of what was raised from which default. */
export function mcpChatFlags(cliPath: string, sessionsOpened: number) {
  const help = helpOf(cliPath);
  const raised = {
    'messages-per-second': 10_000,
    'message-burst': 100_000,
    'new-users-per-minute': 1_000_000,
    'max-per-address': 1_000_000,
  };
  const flags = Object.assign(
    raised,
    defaultOf(help, 'max-sessions') >= sessionsOpened + 64 ? {} : { 'max-sessions': sessionsOpened + 1024 },
  );
  const said = Object.entries(flags).map(([flag, value]) => `--${flag} ${value} (default ${defaultOf(help, flag)})`);
  return {
    args: ['--log-level', 'silent', ...Object.entries(flags).flatMap(([flag, value]) => [`--${flag}`, String(value)])],
    note: `mcp-chat ran with ${said.join(', ')}, so that its limits never refuse the bench’s load; the limiters still run.`,
  };
}
