/**
 * The scale-out part of `npm run bench`: the real server (dist/src/cli.js) in memory, then
 * 1, 2 and 3 processes on one Redis of the run's own, each setup started afresh, driven by
 * sessionless clients in this process (one POST per call by `user_token`, news by held
 * wait_for_events). Pairing rounds with a rising number of users in flight measure pairs/s
 * and enter → paired latency; pairs on one process and across two measure server CPU per
 * message. Every message is checked (once, in order, from the partner); every wait is
 * bounded and every process stopped. Figures, table and notes: scaleOutReport.ts.
 */
import { setMaxListeners } from 'node:events';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { type SpawnedServer, stopChild } from '../test/support/serverProcess.js';
import { TokenClient } from '../test/support/tokenClient.js';
import { PairedUser, deliveryOf as pairDelivery } from './chatter.js';
import { startServer } from './children.js';
import { type LeanEndpoint, leanSender } from './leanSession.js';
import { CpuMeter, machineBusySeconds } from './procStats.js';
import type { ProgressLine } from './progressLine.js';
import { type BenchRedis, startRedis } from './redisServer.js';
import {
  coresPhrase,
  PROCESSES,
  RAMP_GAIN,
  SCALE_OUT_SETUPS,
  type ScaleOutCores,
  type ScaleOutDelivery,
  type ScaleOutFigures,
  type ScaleOutMessages,
  type ScaleOutPairingRound,
  type ScaleOutSettings,
  type ScaleOutSetup,
  type ScaleOutSetupName,
  saturationOf,
} from './scaleOutReport.js';
import { bounded, messageOf, percentiles, until, withDeadline } from './timing.js';

/** A server of a setup, named for its error messages. */
type ServerProcess = SpawnedServer & { name: string };

/** How long one wait_for_events is held, in seconds: how often an idle user asks again. */
const POLL_S = 5;
/** How long messages may take to be read after the last send was answered. */
const DRAIN_MS = 10_000;
/** How long the users still in flight at a round's end may take to be paired. */
const ROUND_DRAIN_MS = 30_000;
/** How often where the users in flight wait, and who holds the queue, are sampled. */
const SAMPLE_MS = 250;
const STOP_GRACE_MS = 5_000;
/** The queue holder's lease (src/chat/broker/redis/lease.ts, default key prefix): its value is `<processId>:<epoch>`. */
const HOLDER_LEASE = 'mcp-chat:lease:queue';

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

/** A sessionless user (test/support/tokenClient.ts): when it entered and knew its room, and what it read. */
class BenchUser extends PairedUser {
  declare readonly client: TokenClient;
  declare partner: BenchUser | undefined;
  /** When enter_queue was called, answered, and when the user knew it was paired (performance.now()). */
  enteredAt = 0;
  answeredAt = 0;
  foundAt = 0;
  /** Its enter_queue answered `matched` (else a wait_for_events told it). */
  answeredMatched = false;
  readonly found: Promise<void>;
  #foundResolve!: () => void;
  #listening = false;
  /** Events other than chatroom.found and message.received. */
  unexpected = 0;

  constructor(
    index: number,
    readonly pair: number,
    readonly server: number,
    endpoints: Client,
    private readonly signal: AbortSignal,
  ) {
    super(
      index,
      new TokenClient(leanSender('no-session', endpoints.calls), { pollWith: leanSender('no-session', endpoints.polls), cursor: '0' }),
    );
    this.found = new Promise((resolve) => (this.#foundResolve = resolve));
    this.client.onNotification = (method, params) => this.#onEvent(method, params);
    signal.addEventListener('abort', () => void this.client.stop(), { once: true });
  }

  #paired(roomId: string): void {
    this.roomId = roomId;
    this.foundAt = performance.now();
    this.#foundResolve();
    if (!this.#listening) void this.client.stop();
  }

  /**
   * enter_queue with the pair's own interest. Answered `matched`, the user knows its room;
   * answered `waiting`, it polls until chatroom.found. With `listen`, it polls on for
   * messages until the signal aborts; without, it stops polling once paired.
   */
  async enter(interest: string, listen: boolean): Promise<void> {
    this.#listening = listen;
    this.enteredAt = performance.now();
    const answer = await this.client.call('enter_queue', { interests: [interest] }, this.signal);
    this.answeredAt = performance.now();
    if (this.client.token === undefined) throw new Error(`enter_queue answered no user_token: ${JSON.stringify(answer).slice(0, 200)}`);
    if (answer.status === 'matched') {
      if (typeof answer.room_id !== 'string')
        throw new Error(`enter_queue answered matched without a room_id: ${JSON.stringify(answer).slice(0, 200)}`);
      this.answeredMatched = true;
      this.#paired(answer.room_id);
    }
    if (listen || this.roomId === undefined) this.client.poll(POLL_S);
  }

  #onEvent(method: string, params: Record<string, unknown>): void {
    if (method === 'message.received') this.read(params);
    else if (method !== 'chatroom.found' || typeof params.room_id !== 'string') {
      this.unexpected += 1;
      this.firstError ??= `unexpected ${method} ${JSON.stringify(params).slice(0, 200)}`;
    } else if (this.roomId === undefined) this.#paired(params.room_id);
    // The room enter_queue already answered: its event is in the log too.
    else if (params.room_id !== this.roomId) {
      this.misrouted += 1;
      this.firstError ??= `user ${this.index} (room ${this.roomId}) read a second chatroom.found ${JSON.stringify(params).slice(0, 120)}`;
    }
  }
}

type Pair = readonly [BenchUser, BenchUser];

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
async function pairUp(
  nextUser: () => BenchUser | undefined,
  inFlight: number,
  listen: boolean,
  signal: AbortSignal,
): Promise<{ errors: number; firstError?: string }> {
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

/** Starts reading CPU: the servers', Redis's, this process's and the machine's; `stop()` answers cores over the span. */
function coresMeter(pids: number[], redisPid: number | null): { stop(holder: number | null): ScaleOutCores } {
  const servers = pids.map((pid) => new CpuMeter([pid]));
  const redis = redisPid === null ? null : new CpuMeter([redisPid]);
  const own = new CpuMeter([process.pid]);
  const machine = machineBusySeconds();
  return {
    stop(holder) {
      const loadGenerator = own.stop();
      const serverCores = servers.map((meter) => meter.stop().cores);
      const redisCores = redis?.stop().cores ?? null;
      const machineCores = (machineBusySeconds() - machine) / Math.max(0.001, loadGenerator.wallSeconds);
      const ours = serverCores.reduce((sum, cores) => sum + cores, 0) + (redisCores ?? 0) + loadGenerator.cores;
      const other = Math.max(0, machineCores - ours);
      return { servers: serverCores, holder, redis: redisCores, loadGenerator: loadGenerator.cores, machine: machineCores, other };
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
async function pairingRound(
  context: RoundContext,
  inFlight: number,
  ms: number,
  onPairs: (pairs: number) => void,
): Promise<ScaleOutPairingRound> {
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
  let window:
    | {
        from: number;
        to: number;
        meter: ReturnType<typeof coresMeter>;
        watch: ReturnType<typeof watchHolder> | null;
        sampler: NodeJS.Timeout;
      }
    | undefined;
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
      meter: coresMeter(
        servers.map((server) => server.pid),
        context.redis?.pid ?? null,
      ),
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
      throw new Error(
        context.signal.aborted
          ? 'the setup ran out of time'
          : `${waiting} of ${users.length} users at ${inFlight} in flight were not paired within ${(ms + 2 * ROUND_DRAIN_MS) / 1000} s`,
      );
    }
    if (errors > 0) throw new Error(`${errors} users at ${inFlight} in flight could not enter or be paired: ${firstError}`);
  } finally {
    clearTimeout(deadline);
    clearTimeout(windowTimer);
    if (window) clearInterval(window.sampler);
    context.signal.removeEventListener('abort', onSetupAbort);
    stop.abort();
    await Promise.allSettled(users.map((user) => user.client.stop()));
    context.nextPair = firstPair + Math.ceil(users.length / 2);
  }
  // Fewer users than in flight (a tiny cap) never open the window: the whole round is it.
  if (!window)
    throw new Error(
      `the round at ${inFlight} in flight ended before ${inFlight} users were paired (at most ${settings.maxRoundUsers} users per round)`,
    );
  const { from, to } = window;
  // The last ones finished before the window closed (a cap reached): it closes now.
  closeWindow();
  const holders = (await watched) ?? [];
  for (const user of users) {
    const token = user.client.token;
    const processId = token?.slice(0, token.indexOf('.'));
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
    waitingFor: {
      samples: where.samples,
      answer: where.answer / Math.max(1, where.samples),
      found: where.found / Math.max(1, where.samples),
    },
  };
}

/** Messages of one kind of pair, and the CPU the servers (and redis-server) used sending them, over its exchanges. */
type Tally = { messages: number; seconds: number; serverCpuMs: number; redisCpuMs: number };

/**
 * `perPair` messages in each pair, members in turn, each send awaited, at most `concurrency`
 * pairs at once; then waits until every accepted message was read. Answers the messages
 * accepted; adds them, the time and the CPU of `pids` (and `redisPid`) to `tally`.
 */
async function exchange(
  pairs: readonly Pair[],
  perPair: number,
  settings: ScaleOutSettings,
  signal: AbortSignal,
  tally?: { into: Tally; pids: number[]; redisPid: number | null },
): Promise<number> {
  const acked = () => pairs.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0);
  const ackedBefore = acked();
  const started = performance.now();
  const server = new CpuMeter(tally?.pids ?? []);
  const redis = tally?.redisPid ? new CpuMeter([tally.redisPid]) : null;
  await bounded(
    pairs,
    settings.concurrency,
    async ([a, b]) => {
      for (let k = 0; k < perPair && !signal.aborted; k++) await (k % 2 === 0 ? a : b).send(settings.messageSize, signal);
    },
    signal,
  );
  await until(() => pairs.every(([a, b]) => a.reads.received >= b.acked && b.reads.received >= a.acked), DRAIN_MS, signal);
  const messages = acked() - ackedBefore;
  if (tally) {
    tally.into.messages += messages;
    tally.into.seconds += (performance.now() - started) / 1000;
    tally.into.serverCpuMs += server.stop().cpuSeconds * 1000;
    tally.into.redisCpuMs += (redis?.stop().cpuSeconds ?? 0) * 1000;
  }
  return messages;
}

function figuresOf(pairs: number, tally: Tally | undefined, onRedis: boolean): ScaleOutMessages | null {
  if (!tally) return null;
  const { messages, seconds, serverCpuMs, redisCpuMs } = tally;
  return {
    pairs,
    messages,
    wallSeconds: seconds,
    messagesPerS: seconds > 0 ? messages / seconds : 0,
    serverCpuMs,
    cpuMsPerMessage: messages > 0 ? serverCpuMs / messages : 0,
    redisCpuMsPerMessage: !onRedis || messages === 0 ? null : redisCpuMs / messages,
  };
}

/**
 * Every pair warms up, then the measured messages: with both kinds of pair, half of each
 * kind's, then the other half in reverse order (same, cross, cross, same), so that code
 * still warming up, or a heap still growing, weighs on both kinds alike.
 */
async function measureMessages(
  name: ScaleOutSetupName,
  pairs: readonly Pair[],
  same: number,
  context: RoundContext,
  progress: ProgressLine,
) {
  const { settings, signal } = context;
  const groups = { same: pairs.slice(0, same), cross: pairs.slice(same) };
  const sent = () => pairs.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0);
  /** Runs `work` with a progress line counting the messages sent. */
  const showing = async <T>(label: string, total: number, work: () => Promise<T>): Promise<T> => {
    const from = sent();
    progress.begin(`scale-out · ${name} · ${label}`, 'msgs', { total });
    const tick = setInterval(() => progress.update(sent() - from), 200);
    try {
      return await work();
    } finally {
      clearInterval(tick);
    }
  };
  const warmup = settings.warmupMessagesPerPair;
  if (warmup > 0) {
    const warmed = await showing(`warm-up, ${warmup} messages per pair`, pairs.length * warmup, () =>
      exchange(pairs, warmup, settings, signal),
    );
    progress.end(`${warmed} messages`);
  }
  const all = settings.messagesPerPair;
  const first = Math.ceil(all / 2);
  const schedule: ['same' | 'cross', number][] =
    groups.cross.length === 0
      ? [['same', all]]
      : [
          ['same', first],
          ['cross', first],
          ['cross', all - first],
          ['same', all - first],
        ];
  const tallies: Partial<Record<'same' | 'cross', Tally>> = {};
  const pids = context.servers.map((server) => server.pid);
  const redisPid = context.redis?.pid ?? null;
  const label = `${all} messages per pair, ${groups.same.length} same-process pairs${groups.cross.length > 0 ? `, ${groups.cross.length} cross-process` : ''}`;
  await showing(label, pairs.length * all, async () => {
    for (const [kind, perPair] of schedule)
      if (perPair > 0 && groups[kind].length > 0 && !signal.aborted) {
        tallies[kind] ??= { messages: 0, seconds: 0, serverCpuMs: 0, redisCpuMs: 0 };
        await exchange(groups[kind], perPair, settings, signal, { into: tallies[kind], pids, redisPid });
      }
  });
  const samePair = figuresOf(groups.same.length, tallies.same, redisPid !== null);
  const crossPair = figuresOf(groups.cross.length, tallies.cross, redisPid !== null);
  const said = (label: string, figures: ScaleOutMessages | null) =>
    figures
      ? `${label} ${figures.cpuMsPerMessage.toFixed(2)} ms server CPU per message` +
        (figures.redisCpuMsPerMessage === null ? '' : ` (+${figures.redisCpuMsPerMessage.toFixed(3)} ms redis-server)`) +
        `, ${figures.messagesPerS.toFixed(0)} msgs/s`
      : '';
  progress.end([said('same-process:', samePair), said('cross-process:', crossPair)].filter(Boolean).join('; '));
  return { samePair, crossPair };
}

function deliveryOf(users: readonly BenchUser[]): ScaleOutDelivery {
  const { sendErrors, firstError: _, ...counts } = pairDelivery(users);
  const firstError = users.map((u) => u.firstError ?? u.client.firstPollError).find(Boolean);
  return {
    ...counts,
    unexpected: users.reduce((sum, u) => sum + u.unexpected, 0),
    sendErrors,
    pollErrors: users.reduce((sum, u) => sum + u.client.pollErrors, 0),
    ...(firstError && { firstError }),
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
    const where = `; in flight, on average ${round.waitingFor.answer.toFixed(0)} awaiting enter_queue's answer, ${round.waitingFor.found.toFixed(0)} chatroom.found`;
    progress.end(
      `${round.pairsPerS.toFixed(0)} pairs/s, enter→found p50 ${round.enterToFoundMs.p50.toFixed(0)} ms, p99 ${round.enterToFoundMs.p99.toFixed(0)} ms ` +
        `(${round.answeredMatched} answered matched, ${round.foundByWait} told by wait_for_events); ${coresPhrase(round.cores, machineCores)}${where}`,
    );
    const previous = setup.pairing[setup.pairing.length - 2];
    if (previous && round.pairsPerS < RAMP_GAIN * previous.pairsPerS) break;
  }
  setup.pairsPerS = Math.max(...setup.pairing.map((round) => round.pairsPerS));
  setup.saturation = saturationOf(setup.pairing, machineCores, context.redis !== null);
  progress.note(`scale-out · ${name}, what limited pairs/s: ${setup.saturation}`);
}

const emptySetup = (name: ScaleOutSetupName, pairs: number): ScaleOutSetup => ({
  ...{ name, processes: PROCESSES[name], pairsPerS: null, pairing: [], saturation: null, users: 2 * pairs, pairs },
  ...{ samePair: null, crossPair: null, delivery: deliveryOf([]) },
});

/** One setup, from starting its server(s) to stopping them. */
async function runSetup(
  name: ScaleOutSetupName,
  settings: ScaleOutSettings,
  redis: BenchRedis | null,
  redisClient: Redis | null,
  progress: ProgressLine,
): Promise<ScaleOutSetup> {
  const processes = PROCESSES[name];
  const pairCount = Math.floor(settings.users / 2);
  const setup = emptySetup(name, pairCount);
  const servers: ServerProcess[] = [];
  const clients: Client[] = [];
  const users: BenchUser[] = [];
  const died = () => {
    const exited = servers.find((server) => server.exited());
    return exited && `${exited.name} exited (${exited.exited()}): ${exited.output().slice(-400)}`;
  };
  const error = await withDeadline(settings.setupDeadlineMs, died, async (signal) => {
    // Every bench user comes from 127.0.0.1, and sends as fast as it is answered.
    const limits =
      '--new-users-per-minute 1000000 --max-per-address 1000000 --max-users 1000000 --messages-per-second 10000 --message-burst 100000';
    const args = ['--log-level', 'warn', ...limits.split(' '), ...(redis ? ['--redis-url', redis.url] : [])];
    const started = await Promise.allSettled(
      Array.from({ length: processes }, async (_, i) =>
        Object.assign(await startServer({ entry: settings.cliPath, args }), { name: `mcp-chat ${i + 1} (${name})` }),
      ),
    );
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
    if (signal.aborted)
      throw new Error(`${users.filter((u) => u.roomId === undefined).length} of ${users.length} users were not paired in time`);
    const split = pairs.find(([a, b]) => a.roomId !== b.roomId);
    if (split) throw new Error(`pair ${split[0].pair} was put in two rooms (${split[0].roomId}, ${split[1].roomId})`);
    progress.end(`${pairCount} pairs`);

    Object.assign(setup, await measureMessages(name, pairs, same, context, progress));
  });
  if (error) {
    // Figures of a setup cut short would mislead: its table cells say it failed.
    Object.assign(setup, { samePair: null, crossPair: null, error });
    progress.note(`scale-out · ${name}: ${error}`);
  }
  setup.delivery = deliveryOf(users);
  if (setup.delivery.pollErrors > 0)
    progress.note(`scale-out · ${name}: ${setup.delivery.pollErrors} wait_for_events calls failed (${setup.delivery.firstError})`);
  // Every poll was abandoned with the signal; each loop ends at once.
  await Promise.allSettled(users.map((user) => user.client.stop()));
  await Promise.allSettled(clients.map((client) => client.close()));
  await Promise.allSettled(servers.map((server) => stopChild(server.child, STOP_GRACE_MS)));
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
      redisClient = new Redis(redis.url, {
        protocol: 2,
        maxRetriesPerRequest: 1,
        commandTimeout: 2_000,
        connectionName: 'bench-holder-watch',
      });
    } catch (error) {
      redisError = `could not start redis-server (install Redis 7: apt-get install redis-server): ${messageOf(error)}`;
      progress.note(`scale-out: ${redisError}`);
    }
    for (const name of SCALE_OUT_SETUPS.slice(1)) {
      if (!redis) {
        setups.push({ ...emptySetup(name, 0), error: redisError! });
        continue;
      }
      // Nothing of the last setup (its line, its processes' records) is left for the next.
      await redisClient!.flushall();
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
