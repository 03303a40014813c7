/**
 * The bench's flags (node:util parseArgs), the `--quick` preset, and the cap that the
 * open-file limit and the loopback port range put on how many sessions a run can hold.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ephemeralPortCount, openFileLimit } from './procStats.js';

/** The flags, as USAGE says; `kindDuration` is the phase length of the client kinds and eras, `capNote` why `sessions` was lowered. */
export interface BenchOptions {
  quick: boolean;
  sessions: number;
  warmupSessions: number;
  pairs: number;
  kindPairs: number;
  users: number;
  messages: number;
  duration: number;
  kindDuration: number;
  rate: number | null;
  workers: number;
  messageSize: number;
  serverArgs: string[];
  cpuProf: boolean;
  only?: BenchPart;
  capNote?: string;
}

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

export function readOptions(argv: string[]): BenchOptions | 'help' {
  const values = parseFlags(argv);
  if (values.help) return 'help';
  const quick = values.quick;
  const only = values.only;
  if (only !== undefined && !(BENCH_PARTS as readonly string[]).includes(only))
    throw new UsageError(`--only must be one of ${BENCH_PARTS.join(', ')}, not ${JSON.stringify(only)}`);
  const sessions = count('sessions', values.sessions, quick ? 200 : 5000, 2);
  const options: BenchOptions = {
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
    ...(only !== undefined && { only: only as BenchPart }),
  };
  return capSessions(options);
}

/**
 * Every session holds a socket in the server and one in a worker, and every socket
 * towards one server port needs its own loopback port: cap `sessions` so that neither
 * the open-file limit (`ulimit -n`) nor the port range is exceeded, and say so. The
 * users weighed per era (each holding a poll's socket) are capped alike; they are held
 * later, on servers without sessions.
 */
export function capSessions(options: BenchOptions, postConnectionsPerWorker = 64): BenchOptions {
  // Token clients hold one connection each for their polls, beside the pooled ones.
  const overhead = options.workers * postConnectionsPerWorker + 128 + options.warmupSessions + 2 * options.kindPairs;
  const fds = openFileLimit();
  const ports = ephemeralPortCount();
  const fit = Math.min(fds, ports) - overhead;
  let result = options;
  if (options.sessions > fit) {
    const limit = fds <= ports ? `ulimit -n is ${fds}` : `the loopback port range holds ${ports} ports`;
    result = {
      ...options,
      sessions: Math.max(2, fit),
      capNote: `--sessions ${options.sessions} lowered to ${Math.max(2, fit)}: ${limit}, and the server needs one socket per session plus ${overhead} for pooled connections and warm-up (raise ulimit -n / widen net.ipv4.ip_local_port_range to go further)`,
    };
  }
  if (result.users > fit)
    result = {
      ...result,
      users: Math.max(2, fit),
      capNote: `${result.capNote ? `${result.capNote}; ` : ''}--users ${options.users} lowered to ${Math.max(2, fit)} alike`,
    };
  const maxPairs = Math.floor((result.sessions + result.warmupSessions) / 2);
  if (result.pairs > maxPairs) result = { ...result, pairs: maxPairs };
  return result;
}
