/**
 * The scale-out run of `npm run bench`: the real server (dist/src/cli.js) in four
 * setups, each started afresh —
 *
 *   1. one process, in memory;
 *   2. one process on Redis (`--redis-url`, a redis-server of the run's own: redisServer.ts);
 *   3. two processes on the same Redis;
 *   4. three processes on the same Redis.
 *
 * Clients are sessionless, as ChatGPT calls: every call one POST `tools/call` by
 * `user_token`, news read by long-polling `wait_for_events` from the last cursor. They
 * run in this process (the load generator), whose CPU is measured beside the servers'
 * and Redis's (from /proc), and beside what the rest of the machine used meanwhile.
 *
 *   - Pairing: rounds, each with a set number of users in flight — a user is in flight
 *     from its enter_queue call until it knows it is paired: its enter_queue answered
 *     `matched` (on Redis a join is answered once the queue holder decided it), or a
 *     wait_for_events returned its chatroom.found. Each finished user is replaced by a
 *     fresh one at once. The members of a pair share an interest no one else has, so
 *     who meets whom is set; over several processes a pair's members land as a random
 *     balancer would put them (one pair in n on one process). Once the first users in
 *     flight know (the load is steady), a window of `roundMs` counts the pairs completed
 *     in it and the time from enter_queue to knowing (p50, p99) of the users entering
 *     in it; the in-flight count rises (16, 64, …) until pairs/s stops rising. Each
 *     round starts on keep-alive connections opened beforehand. Meanwhile: each
 *     process's CPU (the queue holder, the Redis lease's owner, marked), the machine's,
 *     and how many users in flight await enter_queue's answer and how many their
 *     chatroom.found. From these, one sentence per setup says what saturated
 *     (saturationOf).
 *   - CPU per message: `users` users paired afresh; each pair sends `messagesPerPair`
 *     messages, its members in turn, each send awaited (at most `concurrency` pairs at
 *     once), after a short unmeasured warm-up of every pair; server CPU (all processes
 *     summed) from the first send until the last message was read, over the messages.
 *     Same-process pairs have both members on one process (with several, half the
 *     pairs, on each process in turn); cross-process pairs (the other half) have their
 *     members on two, so every message goes through Redis Streams. With several
 *     processes the two kinds are measured in the order same, cross, cross, same (half
 *     the messages each time), so that code still warming up weighs on both alike.
 *
 * Every message is checked: read exactly once, in order, in its room, from its partner.
 * Every wait is bounded (a setup that overstays `setupDeadlineMs` is abandoned and
 * reported), and every process started is stopped: SIGTERM, then SIGKILL.
 */
import { setMaxListeners } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import type { Percentiles } from './figures.js';
import { LeanSession, type LeanEndpoint } from './leanSession.js';
import type { BenchOptions } from './options.js';
import { cpuSeconds, machineBusySeconds } from './procStats.js';
import type { ProgressLine } from './progressLine.js';
import { startRedis, type BenchRedis } from './redisServer.js';
import { startServer, type ServerProcess } from './serverProcess.js';

export const SCALE_OUT_SETUPS = ['in-memory', '1 process on Redis', '2 processes on Redis', '3 processes on Redis'] as const;
export type ScaleOutSetupName = (typeof SCALE_OUT_SETUPS)[number];
const PROCESSES: Record<ScaleOutSetupName, number> = { 'in-memory': 1, '1 process on Redis': 1, '2 processes on Redis': 2, '3 processes on Redis': 3 };

export interface ScaleOutSettings {
  /** dist/src/cli.js */
  cliPath: string;
  /** Users paired for the messages (an even number: they make users / 2 pairs). */
  users: number;
  messagesPerPair: number;
  warmupMessagesPerPair: number;
  messageSize: number;
  /** Pairs sending at once, and enter_queue calls in flight when the message users pair. */
  concurrency: number;
  /** Users in flight in each pairing round, rising; the rounds stop once pairs/s stops rising. */
  inFlight: number[];
  /** The measured window of one pairing round, in ms: it opens once the first users in flight know they are paired, and the last ones finish after it. */
  roundMs: number;
  /** Unmeasured pairing before the rounds (at the first in-flight count), in ms. */
  warmupRoundMs: number;
  /** Most users one pairing round makes. */
  maxRoundUsers: number;
  /** Longest one setup may take, start to stop. */
  setupDeadlineMs: number;
  /** Longest the whole scale-out run may take. */
  deadlineMs: number;
}

/** The figures of `npm run bench` (or `--quick`) for this run. */
export function scaleOutSettings(cliPath: string, options: Pick<BenchOptions, 'quick' | 'messageSize'>): ScaleOutSettings {
  const setupDeadlineMs = (options.quick ? 45 : 300) * 1000;
  return {
    cliPath,
    users: options.quick ? 40 : 400,
    messagesPerPair: options.quick ? 12 : 100,
    warmupMessagesPerPair: options.quick ? 2 : 10,
    messageSize: options.messageSize,
    concurrency: 16,
    inFlight: options.quick ? [16, 64, 256] : [16, 64, 256, 1024],
    roundMs: options.quick ? 1_500 : 5_000,
    warmupRoundMs: options.quick ? 500 : 2_000,
    maxRoundUsers: 20_000,
    setupDeadlineMs,
    deadlineMs: SCALE_OUT_SETUPS.length * setupDeadlineMs + 30_000,
  };
}

export interface ScaleOutMessages {
  pairs: number;
  /** Messages sent (and accepted) in the measured part. */
  messages: number;
  wallSeconds: number;
  messagesPerS: number;
  /** CPU of the mcp-chat process(es), all of them summed. */
  serverCpuMs: number;
  cpuMsPerMessage: number;
  /** CPU of redis-server over the same span (null in memory). */
  redisCpuMsPerMessage: number | null;
}

export interface ScaleOutDelivery {
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Read in another room, or from someone other than the partner. */
  misrouted: number;
  /** Events other than chatroom.found and message.received (partner.disconnected, events.missed). */
  unexpected: number;
  sendErrors: number;
  pollErrors: number;
  firstError?: string;
}

/** CPU over a pairing round's window, in cores (1.0 = one core busy all along). */
export interface ScaleOutCores {
  /** Each mcp-chat process, in start order. */
  servers: number[];
  /** Which of `servers` held the queue (the Redis lease's owner; in memory, the one process); null when unknown. */
  holder: number | null;
  redis: number | null;
  /** This process: the clients. */
  loadGenerator: number;
  /** Every process on the machine (from /proc/stat). */
  machine: number;
  /** `machine` less the servers, Redis and the load generator: other work on the machine meanwhile. */
  other: number;
}

export interface ScaleOutPairingRound {
  /** Users between their enter_queue call and knowing they are paired, at any time. */
  inFlight: number;
  /** Users that entered within the measured window (it opens once the first `inFlight` users know they are paired). */
  users: number;
  /** Pairs whose second member knew it was paired within the window. */
  pairs: number;
  /** The window. */
  seconds: number;
  pairsPerS: number;
  /** From a user's enter_queue call to its knowing it is paired, for the users that entered within the window. */
  enterToFoundMs: Percentiles;
  /** Users whose enter_queue answered `matched`. */
  answeredMatched: number;
  /** Users that learned it from wait_for_events (chatroom.found). */
  foundByWait: number;
  cores: ScaleOutCores;
  /** The server processes' CPU (all summed) over the window, per pair completed in it. */
  serverCpuMsPerPair: number | null;
  /**
   * Where the users in flight were, on average over the window (sampled every 250 ms):
   * waiting for enter_queue's answer (on Redis it comes once the queue holder decided the
   * join), or answered `waiting` and waiting for chatroom.found.
   */
  waitingFor: { samples: number; answer: number; found: number };
}

export interface ScaleOutSetup {
  name: ScaleOutSetupName;
  processes: number;
  /** The highest pairs/s of the pairing rounds. */
  pairsPerS: number | null;
  pairing: ScaleOutPairingRound[];
  /** What limited pairs/s, and the figures that say so. */
  saturation: string | null;
  /** Users paired for the messages. */
  users: number;
  pairs: number;
  samePair: ScaleOutMessages | null;
  crossPair: ScaleOutMessages | null;
  delivery: ScaleOutDelivery;
  /** Why the setup could not finish, if it could not. */
  error?: string;
}

export interface ScaleOutFigures {
  usersPerSetup: number;
  messagesPerPair: number;
  warmupMessagesPerPair: number;
  messageSize: number;
  concurrency: number;
  inFlight: number[];
  roundSeconds: number;
  /** Cores of the machine, shared by the servers, Redis, the load generator and anything else running. */
  cores: number;
  redisVersion: string | null;
  setups: ScaleOutSetup[];
  /** The whole run: starting, measuring and stopping every process. */
  seconds: number;
}

/** How long one wait_for_events is held, in seconds: how often an idle user asks again. */
const POLL_S = 5;
const POLL_RETRY_MS = 100;
/** How long messages may take to be read after the last send was answered. */
const DRAIN_MS = 10_000;
/** How long the users still in flight at a round's end may take to be paired. */
const ROUND_DRAIN_MS = 30_000;
/** How often where the users in flight wait, and who holds the queue, are sampled. */
const SAMPLE_MS = 250;
/** A step up in flight that raises pairs/s by less than this is no rise. */
const RAMP_GAIN = 1.1;
/** A process at this many cores or more is CPU-bound (one JavaScript thread; GC threads add a little). */
const BUSY_CORES = 0.85;
/** The machine is full at this share of its cores busy. */
const MACHINE_FULL = 0.9;
/** On Redis, the queue holder is where users wait when this share of those in flight wait for enter_queue's answer. */
const HOLDER_SHARE = 0.5;
const STOP_GRACE_MS = 5_000;
/** The queue holder's lease (src/chat/broker/redis/lease.ts, default key prefix): its value is `<processId>:<epoch>`. */
const HOLDER_LEASE = 'mcp-chat:lease:queue';

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

interface Client {
  readonly calls: LeanEndpoint;
  readonly polls: LeanEndpoint;
  /** Opens `count` keep-alive connections in each pool (a GET /healthz on each), so that a round starts on them. */
  connect(count: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

function clientFor(server: ServerProcess, connections: number): Client {
  const posts = new Pool(server.url.origin, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
  // One connection per held poll.
  const held = new Pool(server.url.origin, { connections: null, pipelining: 1 });
  const path = server.url.pathname;
  const open = (pool: Pool, count: number, signal: AbortSignal) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        const response = await pool.request({ path: '/healthz', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000, signal });
        await response.body.dump();
      }),
    );
  return {
    calls: { posts, streams: posts, path },
    polls: { posts: held, streams: held, path },
    connect: async (count, signal) => {
      await Promise.all([open(posts, Math.min(count, connections), signal), open(held, count, signal)]);
    },
    close: async () => {
      await Promise.allSettled([posts.destroy(), held.destroy()]);
    },
  };
}

/** `<sender>.<n>.` padded with `x` to `size` characters. */
const messageText = (sender: number, n: number, size: number) => {
  const head = `${sender}.${n}.`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
};

class BenchUser {
  token: string | undefined;
  roomId: string | undefined;
  partner: BenchUser | undefined;
  /** When enter_queue was called, answered, and when the user knew it was paired (performance.now()). */
  enteredAt = 0;
  answeredAt = 0;
  foundAt = 0;
  /** Its enter_queue answered `matched` (else a wait_for_events told it). */
  answeredMatched = false;
  readonly found: Promise<void>;
  #foundResolve!: () => void;
  #cursor = '0';
  #polling: Promise<void> | undefined;
  #listening = false;
  // As a sender.
  nextN = 1;
  acked = 0;
  sendErrors = 0;
  // As a receiver of the partner's messages.
  lastN = 0;
  received = 0;
  duplicated = 0;
  outOfOrder = 0;
  misrouted = 0;
  unexpected = 0;
  pollErrors = 0;
  firstError: string | undefined;

  constructor(
    readonly index: number,
    readonly pair: number,
    readonly server: number,
    private readonly client: Client,
    private readonly signal: AbortSignal,
  ) {
    this.found = new Promise((resolve) => (this.#foundResolve = resolve));
  }

  #call(endpoint: LeanEndpoint, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    // Never opened, a LeanSession calls without Mcp-Session-Id.
    return new LeanSession(endpoint).call(name, { ...args, ...(this.token !== undefined && { user_token: this.token }) }, this.signal);
  }

  #paired(roomId: string): void {
    this.roomId = roomId;
    this.foundAt = performance.now();
    this.#foundResolve();
  }

  /**
   * enter_queue with the pair's own interest. Answered `matched`, the user knows its room;
   * answered `waiting`, it polls until chatroom.found. With `listen`, it polls on for
   * messages until the signal aborts; without, it stops polling once paired.
   */
  async enter(interest: string, listen: boolean): Promise<void> {
    this.#listening = listen;
    this.enteredAt = performance.now();
    const answer = await this.#call(this.client.calls, 'enter_queue', { interests: [interest] });
    this.answeredAt = performance.now();
    if (typeof answer.user_token !== 'string') throw new Error(`enter_queue answered no user_token: ${JSON.stringify(answer).slice(0, 200)}`);
    this.token = answer.user_token;
    if (answer.status === 'matched') {
      if (typeof answer.room_id !== 'string') throw new Error(`enter_queue answered matched without a room_id: ${JSON.stringify(answer).slice(0, 200)}`);
      this.answeredMatched = true;
      this.#paired(answer.room_id);
    }
    if (listen || this.roomId === undefined) this.#polling = this.#poll();
  }

  async #poll(): Promise<void> {
    while (!this.signal.aborted && (this.#listening || this.roomId === undefined)) {
      try {
        const page = await this.#call(this.client.polls, 'wait_for_events', { after: this.#cursor, timeout_s: POLL_S });
        if (!Array.isArray(page.events) || typeof page.cursor !== 'string') throw new Error(`wait_for_events answered ${JSON.stringify(page).slice(0, 200)}`);
        for (const event of page.events as { method: string; params: Record<string, unknown> }[]) this.#onEvent(event.method, event.params);
        this.#cursor = page.cursor;
      } catch (error) {
        if (this.signal.aborted) return;
        this.pollErrors += 1;
        this.firstError ??= `wait_for_events: ${messageOf(error)}`;
        await new Promise((resolve) => setTimeout(resolve, POLL_RETRY_MS));
      }
    }
  }

  #onEvent(method: string, params: Record<string, unknown>): void {
    if (method === 'chatroom.found' && typeof params.room_id === 'string') {
      if (this.roomId === undefined) this.#paired(params.room_id);
      // The room enter_queue already answered: its event is in the log too.
      else if (params.room_id !== this.roomId) {
        this.misrouted += 1;
        this.firstError ??= `user ${this.index} (room ${this.roomId}) read a second chatroom.found ${JSON.stringify(params).slice(0, 120)}`;
      }
      return;
    }
    if (method !== 'message.received') {
      this.unexpected += 1;
      this.firstError ??= `unexpected ${method} ${JSON.stringify(params).slice(0, 200)}`;
      return;
    }
    const [sender, n] = String(params.message).split('.', 2).map(Number);
    if (params.room_id !== this.roomId || sender !== this.partner?.index || !Number.isInteger(n)) {
      this.misrouted += 1;
      this.firstError ??= `user ${this.index} (room ${this.roomId}) read ${JSON.stringify(params).slice(0, 120)}`;
      return;
    }
    if (n! === this.lastN + 1) {
      this.lastN = n!;
      this.received += 1;
    } else if (n! <= this.lastN) {
      this.duplicated += 1;
    } else {
      this.outOfOrder += 1;
      this.lastN = n!;
      this.received += 1;
    }
  }

  async send(size: number): Promise<void> {
    const n = this.nextN++;
    try {
      await this.#call(this.client.calls, 'send_message', { room_id: this.roomId, message: messageText(this.index, n, size) });
      this.acked += 1;
    } catch (error) {
      this.sendErrors += 1;
      if (!this.signal.aborted) this.firstError ??= `send_message: ${messageOf(error)}`;
    }
  }

  /** Waits for the poll loop to end (once the signal has aborted, or once paired without `listen`). */
  stopped(): Promise<void> {
    return this.#polling ?? Promise.resolve();
  }
}

type Pair = readonly [BenchUser, BenchUser];

/** Runs `work` over `items`, at most `concurrency` at once, until done or `signal` aborts. */
async function bounded<T>(items: readonly T[], concurrency: number, signal: AbortSignal, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal.aborted) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Resolves when `done()` holds, polling every few ms; false if `ms` pass or `signal` aborts first. */
async function until(done: () => boolean, ms: number, signal: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (signal.aborted || performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/** Resolves once `user` knows it is paired; rejects if `signal` aborts first. */
function whenFound(user: BenchUser, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    void user.found.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * Keeps `inFlight` users between enter_queue and knowing they are paired: each slot
 * takes the next user `nextUser` gives (undefined: no more) once its last one knows.
 * Users come a pair at a time, so every member that entered has its partner entering too.
 */
async function pairUp(nextUser: () => BenchUser | undefined, inFlight: number, listen: boolean, signal: AbortSignal): Promise<{ errors: number; firstError?: string }> {
  let errors = 0;
  let firstError: string | undefined;
  const slot = async () => {
    for (let user = nextUser(); user && !signal.aborted; user = nextUser()) {
      try {
        await user.enter(`pair ${user.pair}`, listen);
        await whenFound(user, signal);
      } catch (error) {
        if (signal.aborted) return;
        errors += 1;
        firstError ??= messageOf(error);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, slot));
  return { errors, ...(firstError !== undefined && { firstError }) };
}

const cpuMs = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid) * 1000, 0);

/** CPU seconds this process (the load generator) has used so far. */
const ownCpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** Starts reading CPU: the servers', Redis's, this process's and the machine's; `stop()` answers cores over the span. */
function coresMeter(pids: number[], redisPid: number | null): { stop(holder: number | null): ScaleOutCores } {
  const startedAt = performance.now();
  const servers = pids.map(cpuSeconds);
  const redis = redisPid === null ? 0 : cpuSeconds(redisPid);
  const own = ownCpuSeconds();
  const machine = machineBusySeconds();
  return {
    stop(holder) {
      const wall = Math.max(0.001, (performance.now() - startedAt) / 1000);
      const serverCores = pids.map((pid, i) => (cpuSeconds(pid) - servers[i]!) / wall);
      const redisCores = redisPid === null ? null : (cpuSeconds(redisPid) - redis) / wall;
      const loadGenerator = (ownCpuSeconds() - own) / wall;
      const machineCores = (machineBusySeconds() - machine) / wall;
      const ours = serverCores.reduce((sum, cores) => sum + cores, 0) + (redisCores ?? 0) + loadGenerator;
      return { servers: serverCores, holder, redis: redisCores, loadGenerator, machine: machineCores, other: Math.max(0, machineCores - ours) };
    },
  };
}

/** Reads who holds the queue's lease every SAMPLE_MS, until stopped. */
function watchHolder(redis: Redis): { stop(): Promise<string[]> } {
  const holders: string[] = [];
  let sampling: Promise<void> = Promise.resolve();
  const sample = async () => {
    const lease = await redis.get(HOLDER_LEASE);
    if (lease) holders.push(lease.slice(0, lease.lastIndexOf(':')));
  };
  const timer = setInterval(() => {
    // One read at a time; a failed one is skipped.
    sampling = sampling.then(sample).catch(() => {});
  }, SAMPLE_MS);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      return holders;
    },
  };
}

const mostCommon = (values: readonly string[]): string | undefined => {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
};

function percentiles(samples: readonly number[]): Percentiles {
  if (samples.length === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank, to the µs.
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! * 1000) / 1000;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
}

/** What a pairing round needs of its setup. */
interface RoundContext {
  servers: readonly ServerProcess[];
  clients: readonly Client[];
  redis: BenchRedis | null;
  /** For the holder's lease, line and stream; null in memory. */
  redisClient: Redis | null;
  /** Process id (the prefix of its users' tokens) → index in `servers`, learned as users enter. */
  processIds: Map<string, number>;
  settings: ScaleOutSettings;
  signal: AbortSignal;
  /** The next pair number of the setup: every pair's interest is its own. */
  nextPair: number;
}

/**
 * One pairing round: `inFlight` users in flight, each replaced by a fresh one once it
 * knows it is paired. Once the first `inFlight` users know (the load is steady), a window
 * of `ms` is measured: the pairs completed in it, the latency of the users that entered
 * in it, CPU over it. Then no one new enters, and the last ones finish.
 */
async function pairingRound(context: RoundContext, inFlight: number, ms: number, onPairs: (pairs: number) => void): Promise<ScaleOutPairingRound> {
  const { servers, clients, settings } = context;
  const n = servers.length;
  const stop = new AbortController();
  const onSetupAbort = () => stop.abort();
  context.signal.addEventListener('abort', onSetupAbort, { once: true });
  setMaxListeners(0, stop.signal);
  const users: BenchUser[] = [];
  const firstPair = context.nextPair;
  let known = 0;
  let paired = 0;
  // The users between enter_queue and knowing, and where they wait (sampled in the window).
  const flying = new Set<BenchUser>();
  const where = { samples: 0, answer: 0, found: 0 };
  const sampleWhere = () => {
    where.samples += 1;
    for (const user of flying) where[user.answeredAt === 0 ? 'answer' : 'found'] += 1;
  };
  let window: { from: number; to: number; meter: ReturnType<typeof coresMeter>; watch: ReturnType<typeof watchHolder> | null; sampler: NodeJS.Timeout } | undefined;
  let cores: ScaleOutCores | undefined;
  let watched: Promise<string[]> | undefined;
  let windowTimer: NodeJS.Timeout | undefined;
  const closeWindow = () => {
    if (!window || cores) return;
    clearInterval(window.sampler);
    cores = window.meter.stop(null);
    watched = window.watch?.stop();
  };
  const openWindow = () => {
    const from = performance.now();
    window = {
      from,
      to: from + ms,
      meter: coresMeter(servers.map((server) => server.pid), context.redis?.pid ?? null),
      watch: context.redisClient ? watchHolder(context.redisClient) : null,
      sampler: setInterval(sampleWhere, SAMPLE_MS),
    };
    windowTimer = setTimeout(closeWindow, ms);
  };
  const nextUser = (): BenchUser | undefined => {
    const i = users.length;
    // A pair at a time: a first member's partner always follows it.
    if (i % 2 === 0 && ((window && performance.now() >= window.to) || i >= settings.maxRoundUsers)) return undefined;
    const pair = firstPair + (i >> 1);
    // As a random balancer would: member a on p mod n, member b shifted by ⌊p / n⌋, so one pair in n has both on one process.
    const server = i % 2 === 0 ? pair % n : (pair + Math.floor(pair / n)) % n;
    const user = new BenchUser(i, pair, server, clients[server]!, stop.signal);
    users.push(user);
    flying.add(user);
    void user.found.then(() => {
      flying.delete(user);
      if (++known === inFlight) openWindow();
    });
    if (i % 2 === 1) {
      const first = users[i - 1]!;
      user.partner = first;
      first.partner = user;
      void Promise.all([first.found, user.found]).then(() => onPairs(++paired));
    }
    return user;
  };
  const deadline = setTimeout(() => stop.abort(), ms + 2 * ROUND_DRAIN_MS);
  try {
    const { errors, firstError } = await pairUp(nextUser, inFlight, false, stop.signal);
    if (stop.signal.aborted) {
      const waiting = users.filter((user) => user.roomId === undefined).length;
      throw new Error(context.signal.aborted ? 'the setup ran out of time' : `${waiting} of ${users.length} users at ${inFlight} in flight were not paired within ${(ms + 2 * ROUND_DRAIN_MS) / 1000} s`);
    }
    if (errors > 0) throw new Error(`${errors} users at ${inFlight} in flight could not enter or be paired: ${firstError}`);
  } finally {
    clearTimeout(deadline);
    clearTimeout(windowTimer);
    if (window) clearInterval(window.sampler);
    context.signal.removeEventListener('abort', onSetupAbort);
    stop.abort();
    await Promise.allSettled(users.map((user) => user.stopped()));
    context.nextPair = firstPair + Math.ceil(users.length / 2);
  }
  // Fewer users than in flight (a tiny cap) never open the window: the whole round is it.
  if (!window) throw new Error(`the round at ${inFlight} in flight ended before ${inFlight} users were paired (at most ${settings.maxRoundUsers} users per round)`);
  const { from, to } = window;
  // The last ones finished before the window closed (a cap reached): it closes now.
  closeWindow();
  const holders = (await watched) ?? [];
  for (const user of users) {
    const processId = user.token?.slice(0, user.token.indexOf('.'));
    if (processId && !context.processIds.has(processId)) context.processIds.set(processId, user.server);
  }
  const holderId = mostCommon(holders);
  const measuredCores = cores!;
  measuredCores.holder = context.redisClient === null ? 0 : holderId === undefined ? null : (context.processIds.get(holderId) ?? null);
  const pairs: Pair[] = [];
  for (let i = 0; i + 1 < users.length; i += 2) pairs.push([users[i]!, users[i + 1]!]);
  const split = pairs.find(([a, b]) => a.roomId !== b.roomId);
  if (split) throw new Error(`pair ${split[0].pair} was put in two rooms (${split[0].roomId}, ${split[1].roomId})`);
  const confused = users.find((user) => user.misrouted + user.unexpected > 0);
  if (confused) throw new Error(`a user at ${inFlight} in flight read what it should not: ${confused.firstError}`);
  const seconds = (to - from) / 1000;
  const complete = pairs.filter(([a, b]) => {
    const done = Math.max(a.foundAt, b.foundAt);
    return done > from && done <= to;
  }).length;
  const measured = users.filter((user) => user.enteredAt >= from && user.enteredAt < to);
  return {
    inFlight,
    users: measured.length,
    pairs: complete,
    seconds,
    pairsPerS: complete / seconds,
    enterToFoundMs: percentiles(measured.map((user) => user.foundAt - user.enteredAt)),
    answeredMatched: measured.filter((user) => user.answeredMatched).length,
    foundByWait: measured.filter((user) => !user.answeredMatched).length,
    cores: measuredCores,
    serverCpuMsPerPair: complete > 0 ? (measuredCores.servers.reduce((sum, c) => sum + c, 0) * seconds * 1000) / complete : null,
    waitingFor: { samples: where.samples, answer: where.answer / Math.max(1, where.samples), found: where.found / Math.max(1, where.samples) },
  };
}

const fixed = (value: number, digits: number) => value.toFixed(digits);

/** The cores of a round, one phrase: `servers 0.71 (holder) / 0.30 / 0.28, redis 0.02, load generator 0.15, other 0.9 of 2 cores`. */
function coresPhrase(cores: ScaleOutCores, machineCores: number): string {
  const servers = cores.servers.map((c, i) => `${fixed(c, 2)}${cores.servers.length > 1 && i === cores.holder ? ' (holder)' : ''}`).join(' / ');
  return (
    `server${cores.servers.length > 1 ? 's' : ''} ${servers}` +
    (cores.redis === null ? '' : `, redis-server ${fixed(cores.redis, 2)}`) +
    `, load generator ${fixed(cores.loadGenerator, 2)}, other work ${fixed(cores.other, 2)}; machine ${fixed(cores.machine, 2)} of ${machineCores} cores`
  );
}

/**
 * What limited pairs/s in a setup, from its rounds: whether more in flight raised it, and
 * at the most in flight the CPU of each process, the machine's, and (on Redis) the
 * records waiting for the queue holder.
 */
export function saturationOf(rounds: readonly ScaleOutPairingRound[], machineCores: number, onRedis: boolean): string {
  const last = rounds[rounds.length - 1];
  if (!last) return 'unknown: no pairing round finished';
  const before = rounds[rounds.length - 2];
  const ramp = rounds.map((round) => `${fixed(round.pairsPerS, 0)} at ${round.inFlight}`).join(', ');
  const flat = before ? `more in flight did not raise pairs/s (${ramp} in flight)` : `one round only (${ramp} in flight)`;
  const { cores } = last;
  const holderIndex = cores.holder;
  const candidates: { who: string; cores: number }[] = [
    ...cores.servers.map((c, i) => ({
      who: cores.servers.length === 1 ? 'the server process (which also runs the queue)' : i === holderIndex ? `the queue holder (mcp-chat ${i + 1})` : 'the server processes',
      cores: c,
    })),
    ...(cores.redis === null ? [] : [{ who: 'Redis', cores: cores.redis }]),
    { who: 'the load generator', cores: cores.loadGenerator },
  ];
  const busiest = candidates.reduce((most, c) => (c.cores > most.cores ? c : most));
  if (before && last.pairsPerS >= RAMP_GAIN * before.pairsPerS)
    return (
      `not saturated at ${last.inFlight} in flight: pairs/s still rose (${ramp} in flight)` +
      (busiest.cores >= BUSY_CORES ? `, though ${busiest.who} was at ${fixed(busiest.cores, 2)} cores: the next limit` : '') +
      `; ${coresPhrase(cores, machineCores)}`
    );
  const evidence = `${flat}; ${coresPhrase(cores, machineCores)}`;
  if (busiest.cores >= BUSY_CORES) return `${busiest.who}: ${fixed(busiest.cores, 2)} cores busy, and ${evidence}`;
  const { waitingFor } = last;
  const atHolder =
    onRedis && waitingFor.samples > 0 && waitingFor.answer >= HOLDER_SHARE * last.inFlight
      ? `${fixed(waitingFor.answer, 0)} of the ${last.inFlight} users in flight were on average waiting for enter_queue's answer, which comes once the queue holder decided the join`
      : undefined;
  if (cores.machine >= MACHINE_FULL * machineCores) {
    const servers = cores.servers.reduce((sum, c) => sum + c, 0);
    const ours = cores.machine - cores.other;
    const share =
      `its ${machineCores} cores were ${fixed((100 * cores.machine) / machineCores, 0)} % busy, ${fixed(ours, 2)} of them this run's ` +
      `(server${cores.servers.length > 1 ? 's together' : ''} ${fixed(servers, 2)}, ${cores.redis === null ? '' : `redis-server ${fixed(cores.redis, 2)}, `}load generator ${fixed(cores.loadGenerator, 2)}) and ${fixed(cores.other, 2)} other work, so no process had a core to itself`;
    // Mostly ours, the cores are what the servers share; with much other work, they were not the run's alone.
    const whose =
      cores.other > ours
        ? `the machine's CPU, mostly taken by other work: ${share}`
        : cores.other >= 0.25 * machineCores
          ? `the machine's CPU, shared by this run's processes and other work: ${share}`
          : cores.servers.length > 1
            ? `the CPU the server processes share: ${share}`
            : `the machine's CPU, used by this run's processes: ${share}`;
    return `${whose}${atHolder ? `; ${atHolder} (one batch at a time, on Redis round trips)` : ''}; ${flat}`;
  }
  if (atHolder)
    return (
      `the queue holder: ${atHolder}, though no process used a full core and the machine had cores to spare — ` +
      `it decides one batch at a time, each waiting on its Redis round trips (store the line, hand the pairings and answers over one by one, store again); ${evidence}`
    );
  return `nothing measured was busy (busiest: ${busiest.who}, ${fixed(busiest.cores, 2)} cores), yet ${flat}: waits, not CPU, bound it; ${coresPhrase(cores, machineCores)}`;
}

/** Every message of `pairs` sent so far has been read. */
const drained = (pairs: readonly Pair[]) => pairs.every(([a, b]) => a.received >= b.acked && b.received >= a.acked);

/**
 * `perPair` messages in each pair, members in turn, each send awaited; then waits until
 * every accepted message was read. Answers the messages accepted and how long it took.
 */
async function exchange(pairs: readonly Pair[], perPair: number, settings: ScaleOutSettings, signal: AbortSignal): Promise<{ messages: number; seconds: number }> {
  const ackedBefore = pairs.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0);
  const started = performance.now();
  await bounded(pairs, settings.concurrency, signal, async ([a, b]) => {
    for (let k = 0; k < perPair && !signal.aborted; k++) await (k % 2 === 0 ? a : b).send(settings.messageSize);
  });
  await until(() => drained(pairs), DRAIN_MS, signal);
  const messages = pairs.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0) - ackedBefore;
  return { messages, seconds: (performance.now() - started) / 1000 };
}

interface Round {
  messages: number;
  seconds: number;
  serverCpuMs: number;
  redisCpuMs: number | null;
}

/** One exchange, with the CPU the server processes (and redis-server) used meanwhile. */
async function measuredRound(pairs: readonly Pair[], perPair: number, pids: number[], redisPid: number | null, settings: ScaleOutSettings, signal: AbortSignal): Promise<Round> {
  const serverBefore = cpuMs(pids);
  const redisBefore = redisPid === null ? 0 : cpuMs([redisPid]);
  const { messages, seconds } = await exchange(pairs, perPair, settings, signal);
  return { messages, seconds, serverCpuMs: cpuMs(pids) - serverBefore, redisCpuMs: redisPid === null ? null : cpuMs([redisPid]) - redisBefore };
}

function figuresOf(pairs: number, rounds: readonly Round[]): ScaleOutMessages | null {
  if (rounds.length === 0) return null;
  const sum = (pick: (round: Round) => number) => rounds.reduce((total, round) => total + pick(round), 0);
  const messages = sum((r) => r.messages);
  const seconds = sum((r) => r.seconds);
  const serverCpuMs = sum((r) => r.serverCpuMs);
  const redisCpuMs = rounds[0]!.redisCpuMs === null ? null : sum((r) => r.redisCpuMs ?? 0);
  return {
    pairs,
    messages,
    wallSeconds: seconds,
    messagesPerS: seconds > 0 ? messages / seconds : 0,
    serverCpuMs,
    cpuMsPerMessage: messages > 0 ? serverCpuMs / messages : 0,
    redisCpuMsPerMessage: redisCpuMs === null || messages === 0 ? null : redisCpuMs / messages,
  };
}

function deliveryOf(users: readonly BenchUser[]): ScaleOutDelivery {
  const sum = (pick: (user: BenchUser) => number) => users.reduce((total, user) => total + pick(user), 0);
  return {
    sent: sum((u) => u.acked),
    received: sum((u) => u.received),
    lost: sum((u) => Math.max(0, (u.partner?.acked ?? 0) - u.received)),
    duplicated: sum((u) => u.duplicated),
    outOfOrder: sum((u) => u.outOfOrder),
    misrouted: sum((u) => u.misrouted),
    unexpected: sum((u) => u.unexpected),
    sendErrors: sum((u) => u.sendErrors),
    pollErrors: sum((u) => u.pollErrors),
    ...(users.find((u) => u.firstError) && { firstError: users.find((u) => u.firstError)!.firstError }),
  };
}

/** The pairing rounds of a setup: a short warm-up, then rising in-flight counts until pairs/s stops rising. */
async function measurePairing(name: ScaleOutSetupName, context: RoundContext, setup: ScaleOutSetup, progress: ProgressLine): Promise<void> {
  const { settings } = context;
  const machineCores = cpus().length;
  const first = settings.inFlight[0] ?? 16;
  if (settings.warmupRoundMs > 0) {
    progress.begin(`scale-out · ${name} · pairing warm-up, ${first} in flight`, 'pairs', { durationMs: settings.warmupRoundMs });
    const warm = await pairingRound(context, first, settings.warmupRoundMs, (done) => progress.update(done));
    progress.end(`${warm.pairs} pairs in its window, unmeasured`);
  }
  for (const inFlight of settings.inFlight) {
    // A busy Node server takes a new connection's first request only after the requests
    // ready on its open ones (about one event-loop turn per connection): a round that
    // opened its connections as it went would time that, not the queue.
    await Promise.all(context.clients.map((client) => client.connect(inFlight, context.signal)));
    progress.begin(`scale-out · ${name} · pairing, ${inFlight} in flight`, 'pairs', { durationMs: settings.roundMs });
    const round = await pairingRound(context, inFlight, settings.roundMs, (done) => progress.update(done));
    setup.pairing.push(round);
    const where = `; in flight, on average ${fixed(round.waitingFor.answer, 0)} awaiting enter_queue's answer, ${fixed(round.waitingFor.found, 0)} chatroom.found`;
    progress.end(
      `${fixed(round.pairsPerS, 0)} pairs/s, enter→found p50 ${fixed(round.enterToFoundMs.p50, 0)} ms, p99 ${fixed(round.enterToFoundMs.p99, 0)} ms ` +
        `(${round.answeredMatched} answered matched, ${round.foundByWait} told by wait_for_events); ${coresPhrase(round.cores, machineCores)}${where}`,
    );
    const previous = setup.pairing[setup.pairing.length - 2];
    if (previous && round.pairsPerS < RAMP_GAIN * previous.pairsPerS) break;
  }
  setup.pairsPerS = Math.max(...setup.pairing.map((round) => round.pairsPerS));
  setup.saturation = saturationOf(setup.pairing, machineCores, context.redis !== null);
  progress.note(`scale-out · ${name}, what limited pairs/s: ${setup.saturation}`);
}

/** One setup, from starting its server(s) to stopping them. */
async function runSetup(name: ScaleOutSetupName, settings: ScaleOutSettings, redis: BenchRedis | null, redisClient: Redis | null, progress: ProgressLine): Promise<ScaleOutSetup> {
  const processes = PROCESSES[name];
  const pairCount = Math.floor(settings.users / 2);
  const setup: ScaleOutSetup = {
    name,
    processes,
    pairsPerS: null,
    pairing: [],
    saturation: null,
    users: pairCount * 2,
    pairs: pairCount,
    samePair: null,
    crossPair: null,
    delivery: deliveryOf([]),
  };
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), settings.setupDeadlineMs);
  const { signal } = stop;
  // Every call in flight listens to it.
  setMaxListeners(0, signal);
  const servers: ServerProcess[] = [];
  const clients: Client[] = [];
  const users: BenchUser[] = [];
  try {
    const args = [
      settings.cliPath,
      '--port', '0',
      '--log-level', 'warn',
      // Every bench user comes from 127.0.0.1, and sends as fast as it is answered.
      '--new-users-per-minute', '1000000',
      '--max-per-address', '1000000',
      '--max-users', '1000000',
      '--messages-per-second', '10000',
      '--message-burst', '100000',
      ...(redis ? ['--redis-url', redis.url] : []),
    ];
    const started = await Promise.allSettled(Array.from({ length: processes }, (_, i) => startServer(`mcp-chat ${i + 1} (${name})`, args)));
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // Every enter_queue in flight holds a connection: on Redis it is answered once the holder decided.
    const connections = Math.max(settings.concurrency, ...settings.inFlight) + 4;
    for (const server of servers) clients.push(clientFor(server, connections));

    const context: RoundContext = { servers, clients, redis, redisClient, processIds: new Map(), settings, signal, nextPair: 0 };
    await measurePairing(name, context, setup, progress);

    // Pairs [0, same) have both members on one process (each process in turn); the rest
    // one member on each of two.
    const same = processes === 1 ? pairCount : Math.ceil(pairCount / 2);
    const pairs: Pair[] = [];
    for (let p = 0; p < pairCount; p++) {
      const serverOf = (member: number) => (p < same ? p % processes : (p + member) % processes);
      const pair = context.nextPair + p;
      const a = new BenchUser(2 * p, pair, serverOf(0), clients[serverOf(0)]!, signal);
      const b = new BenchUser(2 * p + 1, pair, serverOf(1), clients[serverOf(1)]!, signal);
      a.partner = b;
      b.partner = a;
      users.push(a, b);
      pairs.push([a, b]);
    }

    progress.begin(`scale-out · ${name} · pair ${pairCount} for the messages`, 'pairs', { total: pairCount });
    let paired = 0;
    for (const user of users) void user.found.then(() => progress.update(++paired / 2));
    let next = 0;
    const entered = await pairUp(() => users[next++], settings.concurrency, true, signal);
    if (entered.errors > 0) throw new Error(`${entered.errors} users could not enter or be paired: ${entered.firstError}`);
    if (signal.aborted) throw new Error(`${users.filter((u) => u.roomId === undefined).length} of ${users.length} users were not paired in time`);
    const split = pairs.find(([a, b]) => a.roomId !== b.roomId);
    if (split) throw new Error(`pair ${split[0].pair} was put in two rooms (${split[0].roomId}, ${split[1].roomId})`);
    progress.end(`${pairCount} pairs`);

    const pids = servers.map((server) => server.pid);
    const redisPid = redis?.pid ?? null;
    const sameGroup = pairs.slice(0, same);
    const crossGroup = pairs.slice(same);
    const sentBy = (group: readonly Pair[]) => group.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0);
    /** Runs `work` with a progress line counting the messages `group` sends. */
    const showing = async <T>(label: string, group: readonly Pair[], total: number, work: () => Promise<T>): Promise<T> => {
      const from = sentBy(group);
      progress.begin(label, 'msgs', { total });
      const tick = setInterval(() => progress.update(sentBy(group) - from), 200);
      try {
        return await work();
      } finally {
        clearInterval(tick);
      }
    };
    // Every pair warms up first, so that neither group is measured on colder code than the other.
    if (settings.warmupMessagesPerPair > 0) {
      const warmed = await showing(`scale-out · ${name} · warm-up, ${settings.warmupMessagesPerPair} messages per pair`, pairs, pairCount * settings.warmupMessagesPerPair, () =>
        exchange(pairs, settings.warmupMessagesPerPair, settings, signal),
      );
      progress.end(`${warmed.messages} messages`);
    }
    // With both kinds, half of each kind's messages, then the other half in reverse order
    // (same, cross, cross, same): code still warming up, or a heap still growing, weighs
    // on both kinds alike.
    const first = Math.ceil(settings.messagesPerPair / 2);
    const schedule: ['same' | 'cross', number][] =
      crossGroup.length === 0
        ? [['same', settings.messagesPerPair]]
        : [['same', first], ['cross', first], ['cross', settings.messagesPerPair - first], ['same', settings.messagesPerPair - first]];
    const rounds = { same: [] as Round[], cross: [] as Round[] };
    const total = (sameGroup.length + crossGroup.length) * settings.messagesPerPair;
    await showing(
      `scale-out · ${name} · ${settings.messagesPerPair} messages per pair, ${sameGroup.length} same-process pairs` + (crossGroup.length > 0 ? `, ${crossGroup.length} cross-process` : ''),
      pairs,
      total,
      async () => {
        for (const [kind, perPair] of schedule) {
          const group = kind === 'same' ? sameGroup : crossGroup;
          if (perPair > 0 && group.length > 0 && !signal.aborted) rounds[kind].push(await measuredRound(group, perPair, pids, redisPid, settings, signal));
        }
      },
    );
    setup.samePair = figuresOf(sameGroup.length, rounds.same);
    setup.crossPair = figuresOf(crossGroup.length, rounds.cross);
    const said = (label: string, figures: ScaleOutMessages | null) =>
      figures
        ? `${label} ${figures.cpuMsPerMessage.toFixed(2)} ms server CPU per message` +
          (figures.redisCpuMsPerMessage === null ? '' : ` (+${figures.redisCpuMsPerMessage.toFixed(3)} ms redis-server)`) +
          `, ${figures.messagesPerS.toFixed(0)} msgs/s`
        : '';
    progress.end([said('same-process:', setup.samePair), said('cross-process:', setup.crossPair)].filter(Boolean).join('; '));
    if (signal.aborted) throw new Error('abandoned');
    const exited = servers.find((server) => server.exited());
    if (exited) throw new Error(`${exited.name} exited (${exited.exited()}): ${exited.stderrTail().slice(-400)}`);
  } catch (error) {
    const died = servers.find((server) => server.exited());
    const why = signal.aborted ? `did not finish within ${settings.setupDeadlineMs / 1000} s (${messageOf(error)})` : messageOf(error);
    // Figures of a setup cut short would mislead: its table cells say it failed.
    setup.samePair = null;
    setup.crossPair = null;
    setup.error = why + (died && !messageOf(error).includes(died.name) ? `; ${died.name} exited (${died.exited()}): ${died.stderrTail().slice(-400)}` : '');
    progress.note(`scale-out · ${name}: ${setup.error}`);
  } finally {
    clearTimeout(timer);
    setup.delivery = deliveryOf(users);
    if (setup.delivery.pollErrors > 0) progress.note(`scale-out · ${name}: ${setup.delivery.pollErrors} wait_for_events calls failed (${setup.delivery.firstError})`);
    stop.abort();
    // Every poll was abandoned with the signal; each loop ends at once.
    await Promise.allSettled(users.map((user) => user.stopped()));
    await Promise.allSettled(clients.map((client) => client.close()));
    await Promise.allSettled(servers.map((server) => server.stop(STOP_GRACE_MS)));
  }
  return setup;
}

/** The four setups in turn; Redis is started for the three that use it and stopped at the end, whatever happens. */
export async function measureScaleOut(settings: ScaleOutSettings, progress: ProgressLine): Promise<ScaleOutFigures> {
  const startedAt = performance.now();
  const setups: ScaleOutSetup[] = [];
  let redis: BenchRedis | null = null;
  let redisClient: Redis | null = null;
  try {
    setups.push(await runSetup('in-memory', settings, null, null, progress));
    let redisError: string | undefined;
    try {
      redis = await startRedis();
      redisClient = new Redis(redis.url, { protocol: 2, maxRetriesPerRequest: 1, commandTimeout: 2_000, connectionName: 'bench-holder-watch' });
    } catch (error) {
      redisError = `could not start redis-server (install Redis 7: apt-get install redis-server): ${messageOf(error)}`;
      progress.note(`scale-out: ${redisError}`);
    }
    for (const name of SCALE_OUT_SETUPS.slice(1)) {
      if (!redis) {
        setups.push({ name, processes: PROCESSES[name], pairsPerS: null, pairing: [], saturation: null, users: 0, pairs: 0, samePair: null, crossPair: null, delivery: deliveryOf([]), error: redisError! });
        continue;
      }
      // Nothing of the last setup (its line, its processes' records) is left for the next.
      await redis.flushAll();
      setups.push(await runSetup(name, settings, redis, redisClient, progress));
    }
  } finally {
    redisClient?.disconnect();
    await redis?.stop();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  progress.note(`scale-out: ${setups.length} setups started, measured and stopped in ${seconds.toFixed(1)} s`);
  return {
    usersPerSetup: settings.users,
    messagesPerPair: settings.messagesPerPair,
    warmupMessagesPerPair: settings.warmupMessagesPerPair,
    messageSize: settings.messageSize,
    concurrency: settings.concurrency,
    inFlight: settings.inFlight,
    roundSeconds: settings.roundMs / 1000,
    cores: cpus().length,
    redisVersion: redis?.version ?? null,
    setups,
    seconds,
  };
}

/**
 * `--only scale-out`: the scale-out run alone; its figures replace the scaleOut field of
 * `resultsPath`, the rest of the file is kept. Answers the exit code.
 */
export async function scaleOutAlone(settings: ScaleOutSettings, quick: boolean, progress: ProgressLine, resultsPath: string): Promise<number> {
  setTimeout(() => {
    process.stderr.write(`\nbench: still running after ${settings.deadlineMs / 1000} s; giving up (children are killed)\n`);
    process.exit(3);
  }, settings.deadlineMs).unref();
  const figures = await measureScaleOut(settings, progress);
  let previous: Record<string, unknown> = {};
  try {
    if (existsSync(resultsPath)) previous = JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, unknown>;
  } catch {
    // An unreadable file from an earlier run is replaced, not merged.
  }
  writeFileSync(resultsPath, `${JSON.stringify({ ...previous, scaleOut: figures }, null, 2)}\n`);
  process.stdout.write(`\n${formatScaleOut(figures)}\n\n`);
  for (const note of scaleOutCaveats(figures, quick)) process.stdout.write(`note: ${note}\n`);
  process.stdout.write(`results: ${resultsPath} (scaleOut)\n`);
  const failures = scaleOutFailures(figures);
  for (const failure of failures) process.stderr.write(`bench: FAILED: ${failure}\n`);
  return failures.length === 0 ? 0 : 1;
}

/** What went wrong, one sentence each: a setup that could not finish, or any message misdelivered. */
export function scaleOutFailures(figures: ScaleOutFigures): string[] {
  const failures: string[] = [];
  for (const setup of figures.setups) {
    const d = setup.delivery;
    const label = `scale-out (${setup.name})`;
    if (setup.error) failures.push(`${label} did not finish: ${setup.error}`);
    // A setup cut short leaves messages unread: only what no abandonment explains is counted.
    const lost = setup.error ? 0 : d.lost;
    const wrong = lost + d.duplicated + d.outOfOrder + d.misrouted + d.unexpected;
    if (wrong > 0)
      failures.push(
        `${label}: messages lost ${lost}, duplicated ${d.duplicated}, out of order ${d.outOfOrder}, misrouted ${d.misrouted}, unexpected events ${d.unexpected}` +
          (d.firstError ? ` (first: ${d.firstError})` : ''),
      );
    if (d.sendErrors > 0 && !setup.error) failures.push(`${label}: ${d.sendErrors} send_message calls failed (${d.firstError ?? 'no error given'})`);
    if (!setup.error && d.sent === 0) failures.push(`${label} accepted no message: delivery went unchecked`);
  }
  return failures;
}

/** What to keep in mind reading the scale-out table. */
export function scaleOutCaveats(figures: ScaleOutFigures, quick: boolean): string[] {
  const saturation = figures.setups.map((setup) => `${setup.name}: ${setup.saturation ?? (setup.error ? 'failed' : 'unknown')}.`).join(' ');
  return [
    `Scale-out pairing: rounds of ${figures.roundSeconds} s with ${figures.inFlight.join(', then ')} users in flight (each from its enter_queue call until it knows it is paired; ` +
      `the ramp stops once a step raises pairs/s by less than ${Math.round((RAMP_GAIN - 1) * 100)} %), after an unmeasured warm-up; ` +
      `over several processes one pair in n has both members on one process, as with a random balancer; each round starts on keep-alive connections opened beforehand. CPU in cores over each round's window, from /proc: ` +
      `each server process, redis-server, the load generator (the bench's own process, every client) and the rest of the machine (${figures.cores} cores shared by all).`,
    `Scale-out, what limited pairs/s (at the most in flight): ${saturation}`,
    `Scale-out messages: each setup's server(s) started afresh, driven from the bench's own process (sessionless clients, at most ${figures.concurrency} pairs in flight, each send awaited), ` +
      `after ${figures.warmupMessagesPerPair} warm-up messages per pair; CPU per message is the server processes' CPU from /proc (all processes summed), redis-server's apart. ` +
      'Pairs of one process and pairs across two alternate (same, cross, cross, same), so that warming code weighs on both alike.' +
      (quick ? ' Quick: short rounds and a few hundred messages on cold processes, so CPU per message is well above a full run’s and pairs/s noisier; compare the columns only.' : ''),
  ];
}

export function formatScaleOut(figures: ScaleOutFigures): string {
  const n = (value: number | null | undefined, digits = 0) =>
    value === null || value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const byName = (name: ScaleOutSetupName) => figures.setups.find((setup) => setup.name === name);
  const cells = (pick: (setup: ScaleOutSetup) => string) =>
    SCALE_OUT_SETUPS.map((name) => {
      const setup = byName(name);
      return !setup ? '-' : setup.error && pick(setup) === '-' ? 'failed' : pick(setup);
    });
  const widths = [12, 20, 22, 22];
  const row = (label: string, values: string[]) => `  ${label.padEnd(46)} ${values.map((v, i) => v.padStart(widths[i] ?? 22)).join(' ')}`;
  const roundAt = (setup: ScaleOutSetup, inFlight: number) => setup.pairing.find((round) => round.inFlight === inFlight);
  const top = (setup: ScaleOutSetup) => setup.pairing[setup.pairing.length - 1];
  const redisCell = (setup: ScaleOutSetup) =>
    setup.name === 'in-memory' ? 'n/a' : setup.crossPair ? `${n(setup.samePair?.redisCpuMsPerMessage, 3)} / ${n(setup.crossPair.redisCpuMsPerMessage, 3)}` : n(setup.samePair?.redisCpuMsPerMessage, 3);
  const serverCores = (setup: ScaleOutSetup) => {
    const cores = top(setup)?.cores;
    return cores ? cores.servers.map((c, i) => `${n(c, 2)}${cores.servers.length > 1 && i === cores.holder ? 'h' : ''}`).join(' ') : '-';
  };
  const otherCores = (setup: ScaleOutSetup) => {
    const cores = top(setup)?.cores;
    return cores ? `${cores.redis === null ? 'n/a' : n(cores.redis, 2)} / ${n(cores.loadGenerator, 2)} / ${n(cores.other, 2)}` : '-';
  };
  return [
    `scale-out (real processes, sessionless clients by user_token; pairing rounds of ${figures.roundSeconds} s; ${n(figures.usersPerSetup)} users, ${n(figures.messagesPerPair)} messages per pair for CPU per message; ${figures.cores} cores)`,
    row('', [...SCALE_OUT_SETUPS]),
    ...figures.inFlight.map((inFlight) => row(`pairs/s, ${inFlight} users in flight`, cells((s) => n(roundAt(s, inFlight)?.pairsPerS)))),
    ...figures.inFlight.map((inFlight) =>
      row(`enter_queue → paired p50 / p99 ms, ${inFlight} in flight`, cells((s) => {
        const round = roundAt(s, inFlight);
        return round ? `${n(round.enterToFoundMs.p50)} / ${n(round.enterToFoundMs.p99)}` : '-';
      })),
    ),
    row('at the most in flight: awaiting answer / found', cells((s) => {
      const round = top(s);
      return round ? `${n(round.waitingFor.answer)} / ${n(round.waitingFor.found)}` : '-';
    })),
    row('  … cores: servers (h: queue holder)', cells(serverCores)),
    row('  … redis-server / load generator / other work', cells(otherCores)),
    row('  … server CPU ms per pair', cells((s) => n(top(s)?.serverCpuMsPerPair, 1))),
    row('CPU ms per message (same-process pairs)', cells((s) => n(s.samePair?.cpuMsPerMessage, 2))),
    row('CPU ms per message (cross-process pairs)', cells((s) => (s.processes < 2 ? 'n/a' : n(s.crossPair?.cpuMsPerMessage, 2)))),
    row('redis-server CPU ms per message (same / cross)', cells(redisCell)),
    '  what limited pairs/s:',
    ...figures.setups.map((setup) => `    ${setup.name}: ${setup.saturation ?? (setup.error ? `failed (${setup.error})` : 'unknown')}`),
  ].join('\n');
}
