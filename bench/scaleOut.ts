/**
 * The scale-out run of `npm run bench`: the real server (dist/src/cli.js) in three
 * setups, each started afresh —
 *
 *   1. one process, in memory;
 *   2. one process on Redis (`--redis-url`, a redis-server of the run's own: redisServer.ts);
 *   3. two processes on the same Redis.
 *
 * Clients are sessionless, as ChatGPT calls: every call one POST `tools/call` by
 * `user_token`, news read by long-polling `wait_for_events` from the last cursor. They
 * run in this process; the figures are the servers' CPU from /proc (and Redis's, apart),
 * so the clients' own cost stays out.
 *
 *   - Pairs per second: `users` users enter the queue (at most `concurrency` calls in
 *     flight), timed until every one has read its chatroom.found through wait_for_events.
 *     The members of a pair share an interest no one else has, so who meets whom — and
 *     so which pairs span two processes — is set, whatever order the joins land in.
 *   - CPU per message: each pair sends `messagesPerPair` messages, its members in turn,
 *     each send awaited (at most `concurrency` pairs at once), after a short unmeasured
 *     warm-up of every pair; server CPU (all processes summed) from the first send until
 *     the last message was read, over the messages. Same-process pairs have both members
 *     on one process (in setup 3, half the pairs, on each process in turn);
 *     cross-process pairs (setup 3's other half) have one member on each, so every
 *     message goes through Redis Streams. Setup 3 measures its two kinds in the order
 *     same, cross, cross, same (half the messages each time), so that code still warming
 *     up weighs on both alike.
 *
 * Every message is checked: read exactly once, in order, in its room, from its partner.
 * Every wait is bounded (a setup that overstays `setupDeadlineMs` is abandoned and
 * reported), and every process started is stopped: SIGTERM, then SIGKILL.
 */
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { LeanSession, type LeanEndpoint } from './leanSession.js';
import { cpuSeconds } from './procStats.js';
import type { ProgressLine } from './progressLine.js';
import { startRedis, type BenchRedis } from './redisServer.js';
import { startServer, type ServerProcess } from './serverProcess.js';

export const SCALE_OUT_SETUPS = ['in-memory', '1 process on Redis', '2 processes on Redis'] as const;
export type ScaleOutSetupName = (typeof SCALE_OUT_SETUPS)[number];

export interface ScaleOutSettings {
  /** dist/src/cli.js */
  cliPath: string;
  /** Users per setup (an even number: they make users / 2 pairs). */
  users: number;
  messagesPerPair: number;
  warmupMessagesPerPair: number;
  messageSize: number;
  /** enter_queue calls in flight at once, and pairs sending at once. */
  concurrency: number;
  /** Longest one setup may take, start to stop. */
  setupDeadlineMs: number;
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

export interface ScaleOutSetup {
  name: ScaleOutSetupName;
  processes: number;
  users: number;
  pairs: number;
  /** From the first enter_queue until the last chatroom.found was read. */
  pairSeconds: number | null;
  pairsPerS: number | null;
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
const STOP_GRACE_MS = 5_000;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

interface Client {
  readonly calls: LeanEndpoint;
  readonly polls: LeanEndpoint;
  close(): Promise<void>;
}

function clientFor(server: ServerProcess, connections: number): Client {
  const posts = new Pool(server.url.origin, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
  // One connection per held poll.
  const held = new Pool(server.url.origin, { connections: null, pipelining: 1 });
  const path = server.url.pathname;
  return {
    calls: { posts, streams: posts, path },
    polls: { posts: held, streams: held, path },
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
  readonly found: Promise<void>;
  #foundResolve!: () => void;
  #cursor = '0';
  #polling: Promise<void> = Promise.resolve();
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

  /** enter_queue with the pair's own interest; then polls for news until the signal aborts. */
  async enter(interest: string): Promise<void> {
    const answer = await this.#call(this.client.calls, 'enter_queue', { interests: [interest] });
    if (typeof answer.user_token !== 'string') throw new Error(`enter_queue answered no user_token: ${JSON.stringify(answer).slice(0, 200)}`);
    this.token = answer.user_token;
    this.#polling = this.#poll();
  }

  async #poll(): Promise<void> {
    while (!this.signal.aborted) {
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
    if (method === 'chatroom.found' && typeof params.room_id === 'string' && this.roomId === undefined) {
      this.roomId = params.room_id;
      this.#foundResolve();
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

  /** Waits for the poll loop to end (once the signal has aborted). */
  stopped(): Promise<void> {
    return this.#polling;
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

const cpuMs = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid) * 1000, 0);

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

/** One setup, from starting its server(s) to stopping them. */
async function runSetup(name: ScaleOutSetupName, settings: ScaleOutSettings, redis: BenchRedis | null, progress: ProgressLine): Promise<ScaleOutSetup> {
  const processes = name === '2 processes on Redis' ? 2 : 1;
  const pairCount = Math.floor(settings.users / 2);
  const setup: ScaleOutSetup = {
    name,
    processes,
    users: pairCount * 2,
    pairs: pairCount,
    pairSeconds: null,
    pairsPerS: null,
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
      '--messages-per-second', '10000',
      '--message-burst', '100000',
      ...(redis ? ['--redis-url', redis.url] : []),
    ];
    const started = await Promise.allSettled(Array.from({ length: processes }, (_, i) => startServer(`mcp-chat ${i + 1} (${name})`, args)));
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    for (const server of servers) clients.push(clientFor(server, settings.concurrency + 4));

    // Pairs [0, same) have both members on one process (each process in turn); the rest
    // one member on each.
    const same = processes === 1 ? pairCount : Math.ceil(pairCount / 2);
    const pairs: Pair[] = [];
    for (let p = 0; p < pairCount; p++) {
      const serverOf = (member: number) => (p < same ? p % processes : (p + member) % processes);
      const a = new BenchUser(2 * p, p, serverOf(0), clients[serverOf(0)]!, signal);
      const b = new BenchUser(2 * p + 1, p, serverOf(1), clients[serverOf(1)]!, signal);
      a.partner = b;
      b.partner = a;
      users.push(a, b);
      pairs.push([a, b]);
    }

    progress.begin(`scale-out · ${name} · pair ${pairCount}`, 'pairs', { total: pairCount });
    let paired = 0;
    for (const user of users) void user.found.then(() => progress.update(++paired / 2));
    const pairStart = performance.now();
    let enterErrors = 0;
    let firstEnterError: string | undefined;
    await bounded(users, settings.concurrency, signal, async (user) => {
      try {
        await user.enter(`pair ${user.pair}`);
      } catch (error) {
        enterErrors += 1;
        firstEnterError ??= messageOf(error);
      }
    });
    if (enterErrors > 0) throw new Error(`${enterErrors} enter_queue calls failed: ${firstEnterError}`);
    const allFound = await until(() => users.every((u) => u.roomId !== undefined), settings.setupDeadlineMs, signal);
    if (!allFound) throw new Error(`${users.filter((u) => u.roomId === undefined).length} of ${users.length} users read no chatroom.found in time`);
    setup.pairSeconds = (performance.now() - pairStart) / 1000;
    setup.pairsPerS = pairCount / setup.pairSeconds;
    const split = pairs.find(([a, b]) => a.roomId !== b.roomId);
    if (split) throw new Error(`pair ${split[0].pair} was put in two rooms (${split[0].roomId}, ${split[1].roomId})`);
    progress.end(`${setup.pairsPerS.toFixed(0)} pairs/s`);

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

/** The three setups in turn; Redis is started for the two that use it and stopped at the end, whatever happens. */
export async function measureScaleOut(settings: ScaleOutSettings, progress: ProgressLine): Promise<ScaleOutFigures> {
  const startedAt = performance.now();
  const setups: ScaleOutSetup[] = [];
  let redis: BenchRedis | null = null;
  try {
    setups.push(await runSetup('in-memory', settings, null, progress));
    let redisError: string | undefined;
    try {
      redis = await startRedis();
    } catch (error) {
      redisError = `could not start redis-server (install Redis 7: apt-get install redis-server): ${messageOf(error)}`;
      progress.note(`scale-out: ${redisError}`);
    }
    for (const name of ['1 process on Redis', '2 processes on Redis'] as const) {
      if (!redis) {
        setups.push({ name, processes: name === '2 processes on Redis' ? 2 : 1, users: 0, pairs: 0, pairSeconds: null, pairsPerS: null, samePair: null, crossPair: null, delivery: deliveryOf([]), error: redisError! });
        continue;
      }
      // Nothing of the last setup (its line, its processes' records) is left for the next.
      await redis.flushAll();
      setups.push(await runSetup(name, settings, redis, progress));
    }
  } finally {
    await redis?.stop();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  progress.note(`scale-out: three setups started, measured and stopped in ${seconds.toFixed(1)} s`);
  return {
    usersPerSetup: settings.users,
    messagesPerPair: settings.messagesPerPair,
    warmupMessagesPerPair: settings.warmupMessagesPerPair,
    messageSize: settings.messageSize,
    concurrency: settings.concurrency,
    redisVersion: redis?.version ?? null,
    setups,
    seconds,
  };
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
  return [
    `Scale-out: each setup's server(s) started afresh, driven from the bench's own process (sessionless clients, at most ${figures.concurrency} calls or pairs in flight, each send awaited), ` +
      `after ${figures.warmupMessagesPerPair} warm-up messages per pair; CPU per message is the server processes' CPU from /proc (both processes summed with two), redis-server's apart. ` +
      'Pairs of one process and pairs across two alternate (same, cross, cross, same), so that warming code weighs on both alike.' +
      (quick ? ' Quick: a few hundred messages on cold processes, so CPU per message is well above a full run’s; compare the columns only.' : ''),
  ];
}

export function formatScaleOut(figures: ScaleOutFigures): string {
  const n = (value: number | null | undefined, digits = 0) =>
    value === null || value === undefined ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const byName = (name: ScaleOutSetupName) => figures.setups.find((setup) => setup.name === name);
  const cells = (pick: (setup: ScaleOutSetup) => string) => SCALE_OUT_SETUPS.map((name) => {
    const setup = byName(name);
    return !setup ? '-' : setup.error && pick(setup) === '-' ? 'failed' : pick(setup);
  });
  const row = (label: string, values: string[]) => `  ${label.padEnd(44)} ${values.map((v, i) => v.padStart(i === 2 ? 22 : 14)).join(' ')}`;
  const redisCell = (setup: ScaleOutSetup) =>
    setup.name === 'in-memory' ? 'n/a' : setup.crossPair ? `${n(setup.samePair?.redisCpuMsPerMessage, 3)} / ${n(setup.crossPair.redisCpuMsPerMessage, 3)}` : n(setup.samePair?.redisCpuMsPerMessage, 3);
  return [
    `scale-out (real processes, sessionless clients by user_token; ${n(figures.usersPerSetup)} users, ${n(figures.messagesPerPair)} messages per pair)`,
    row('', ['in-memory', '1 process on Redis', '2 processes on Redis']),
    row('pairs/s (enter_queue → chatroom.found)', cells((s) => n(s.pairsPerS))),
    row('CPU ms per message (same-process pairs)', cells((s) => n(s.samePair?.cpuMsPerMessage, 2))),
    row('CPU ms per message (cross-process pairs)', cells((s) => (s.processes < 2 ? 'n/a' : n(s.crossPair?.cpuMsPerMessage, 2)))),
    row('redis-server CPU ms per message (same / cross)', cells(redisCell)),
  ].join('\n');
}
