/**
 * The "under attack" part of `npm run bench`: a chatting pair's send_message latency on
 * the real server (dist/src/cli.js) while ONE other client address holds all that the
 * default `--max-per-address` lets it hold at once — listens naming `--max-listen-uris`
 * users each, held `wait_for_events`, 2025-era sessions with their GET streams — against
 * the same pair on the same process before the attack. The attacker calls from 127.0.0.2,
 * the pair from 127.0.0.1 (loopback both: the server tells them apart), both from this
 * process. Every wait is bounded; the server is stopped whatever happens.
 */
import { setMaxListeners } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type Dispatcher, Pool } from 'undici';
import { ToolRefusal } from '../test/support/chatClient.js';
import { MODERN_META, modernHeaders, SseParser, WireError } from '../test/support/jsonRpcWire.js';
import { type SpawnedServer, stopChild } from '../test/support/serverProcess.js';
import { metricGauge } from './benchTarget.js';
import { deliveryOf, type PairDelivery, PairedUser } from './chatter.js';
import { startServer, tailOf } from './children.js';
import type { Percentiles } from './figures.js';
import { type LeanEndpoint, LeanSession } from './leanSession.js';
import { defaultOf, helpOf } from './mcpChatFlags.js';
import type { BenchOptions } from './options.js';
import { rssKiB } from './procStats.js';
import type { ProgressLine } from './progressLine.js';
import { columns, show } from './table.js';
import { boundedTimes, messageOf, percentiles, sleep, until, withDeadline } from './timing.js';

/** What one client address holds at once, each up to `--max-per-address` (src/session/addressAllowance.ts). */
export type Holding = 'sessions' | 'streams' | 'waits' | 'listens';
const HOLDINGS: Holding[] = ['listens', 'waits', 'sessions', 'streams'];

/**
 * `messages` send_message round trips measured per phase (idle, under attack), one at a
 * time, the members in turn, after `warmupMessages` unmeasured; `settleMs` after each
 * forced full GC, before a weighing or a phase; `deadlineMs` for the whole part.
 */
export interface UnderAttackSettings {
  cliPath: string;
  messages: number;
  warmupMessages: number;
  messageSize: number;
  settleMs: number;
  deadlineMs: number;
}

/** The server's defaults for what one address may hold, read from its `--help`. */
export interface Allowance {
  perAddress: number;
  listenUris: number;
  waitsPerUser: number;
}

/** Round trip: send_message sent → its answer read; delivered: → the partner's message.received read off its GET stream. */
export interface UnderAttackPhase {
  roundTrips: number;
  roundTripMs: Percentiles;
  deliveredMs: Percentiles;
  seconds: number;
}

/**
 * What the attacker held: `users` made with enter_queue (2026-07-28 calls), paired among
 * themselves; listens, held waits, 2025-era sessions with one GET stream each. `setupSeconds`
 * from its first enter_queue until all was held. `refusedBeyond`: one more of each was
 * refused (HTTP 429, or the tool's refusal) — streams have no such check (a GET replaces
 * the session's last), so `streams` equal to the allowance is theirs. `otherAddressServed`:
 * a session from the pair's address opened meanwhile. `serverListens`/`serverSessions`:
 * the server's /metrics once all was held; `dropped`: holdings that ended during the attack phase.
 */
export interface AttackerHoldings {
  address: string;
  users: number;
  listens: number;
  urisPerListen: number;
  waits: number;
  waitTimeoutS: number;
  sessions: number;
  streams: number;
  setupSeconds: number;
  refusedBeyond: Record<Exclude<Holding, 'streams'>, boolean>;
  otherAddressServed: boolean;
  serverListens: number | null;
  serverSessions: number | null;
  dropped: Record<Holding, number>;
  firstError?: string;
}

/** `serverFlags`: besides --port 0 --host 127.0.0.1; `memory`: the server after a full GC, before the attacker's first request and once it held everything. */
export interface UnderAttackFigures {
  startedAt: string;
  baseline: string;
  allowance: Allowance;
  serverFlags: string[];
  pair: { address: string; client: string; messageSize: number; warmupMessages: number };
  idle: UnderAttackPhase | null;
  underAttack: UnderAttackPhase | null;
  attacker: AttackerHoldings | null;
  memory: { rssBeforeKiB: number; rssAfterKiB: number; heapBeforeBytes: number | null; heapAfterBytes: number | null } | null;
  delivery: Omit<PairDelivery, 'misrouted'>;
  seconds: number;
  error?: string;
}

const ATTACKER_ADDRESS = '127.0.0.2';
const PAIR_ADDRESS = '127.0.0.1';
/** The longest wait_for_events the server takes, as an attacker would hold it. */
const WAIT_TIMEOUT_S = 50;
const CALL_TIMEOUT_MS = 10_000;
const DRAIN_MS = 5_000;
const STOP_GRACE_MS = 5_000;
const OPEN_CONCURRENCY = 16;

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const noneOf = (): Record<Holding, number> => ({ listens: 0, waits: 0, sessions: 0, streams: 0 });

export function underAttackSettings(cliPath: string, options: BenchOptions): UnderAttackSettings {
  return {
    cliPath,
    messages: options.quick ? 200 : 1000,
    warmupMessages: options.quick ? 300 : 500,
    messageSize: options.messageSize,
    settleMs: options.quick ? 300 : 1000,
    deadlineMs: (options.quick ? 60 : 180) * 1000,
  };
}

function defaultAllowance(cliPath: string): Allowance {
  const help = helpOf(cliPath);
  const of = (flag: string) => {
    const value = defaultOf(help, flag);
    if (Number.isNaN(value)) throw new Error(`mcp-chat --help lists no default for --${flag}: this build has no such limit`);
    return value;
  };
  return { perAddress: of('max-per-address'), listenUris: of('max-listen-uris'), waitsPerUser: of('max-waits-per-user') };
}

/** One member of the chatting pair: a 2025-era session with its GET stream, timing what its partner sends. */
class PairMember extends PairedUser {
  declare readonly client: LeanSession;
  declare partner: PairMember;
  /** When each message not yet read by the partner was sent, by number. */
  readonly sentAt = new Map<number, number>();
  /** Delivery times of the phase being measured. */
  delivered: number[] = [];

  constructor(index: number, endpoint: LeanEndpoint) {
    super(index, new LeanSession(endpoint));
    this.client.onNotification = (method, params, at) => {
      if (method === 'chatroom.found' && typeof params.room_id === 'string') this.roomId ??= params.room_id;
      if (method !== 'message.received') return;
      const n = this.read(params);
      const sentAt = n === undefined ? undefined : this.partner.sentAt.get(n);
      if (sentAt !== undefined) this.delivered.push(at - sentAt);
      if (n !== undefined) this.partner.sentAt.delete(n);
    };
  }

  async timedSend(size: number, signal: AbortSignal, roundTrips: number[]): Promise<void> {
    const started = performance.now();
    const sent = await this.send(size, signal, (n) => this.sentAt.set(n, started));
    if (sent) roundTrips.push(performance.now() - started);
    else this.sentAt.delete(this.nextN - 1);
  }
}

type Pair = readonly [PairMember, PairMember];

/** Opens both members' sessions (with their streams) and puts them in one room. */
async function pairUp([a, b]: Pair, signal: AbortSignal): Promise<void> {
  a.partner = b;
  b.partner = a;
  await a.client.open();
  await b.client.open();
  await a.client.call('enter_queue', {}, signal);
  const matched = await b.client.call('enter_queue', {}, signal);
  if (typeof matched.room_id === 'string') b.roomId ??= matched.room_id;
  if (!(await until(() => a.roomId !== undefined && b.roomId !== undefined, CALL_TIMEOUT_MS, signal)))
    throw new Error('the pair was not put in a room');
  if (a.roomId !== b.roomId) throw new Error(`the pair was put in two rooms (${a.roomId}, ${b.roomId})`);
}

/** `count` send_message round trips, one at a time, the members in turn; then waits until every accepted message was read. */
async function exchange(pair: Pair, count: number, size: number, signal: AbortSignal): Promise<UnderAttackPhase> {
  const roundTrips: number[] = [];
  for (const member of pair) member.delivered = [];
  const started = performance.now();
  for (let k = 0; k < count && !signal.aborted; k++) await pair[k % 2]!.timedSend(size, signal, roundTrips);
  await until(() => pair.every((m) => m.reads.received >= m.partner.acked), DRAIN_MS, signal);
  return {
    roundTrips: roundTrips.length,
    roundTripMs: percentiles(roundTrips),
    deliveredMs: percentiles([...pair[0].delivered, ...pair[1].delivered]),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Whether a failed request was the server saying no for the address's allowance. */
const refusedForAllowance = (error: unknown) =>
  (error instanceof WireError && error.message.includes('HTTP 429')) || (error instanceof ToolRefusal && /too many/i.test(error.message));

/** A 2026-07-28 tools/call that may be held up to `holdMs` (a wait's answer, and its headers, come when it ends). */
const modernCall = (endpoint: LeanEndpoint, name: string, args: Record<string, unknown>, signal: AbortSignal, holdMs = CALL_TIMEOUT_MS) =>
  new LeanSession(endpoint, 'modern').call(name, args, signal, holdMs);

let nextRpcId = 1;

/**
 * Opens a `subscriptions/listen` on `uris`; resolves once the server acknowledged it, with
 * a function that closes it. `onEnded` hears of a stream that ended unasked.
 */
async function openListen(
  pool: Dispatcher,
  path: string,
  uris: readonly string[],
  signal: AbortSignal,
  onEnded: (why: string) => void,
): Promise<() => void> {
  const id = nextRpcId++;
  const response = await pool.request({
    path,
    method: 'POST',
    headers: modernHeaders('subscriptions/listen'),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'subscriptions/listen',
      params: { _meta: MODERN_META, notifications: { resourceSubscriptions: uris } },
    }),
    headersTimeout: CALL_TIMEOUT_MS,
    bodyTimeout: 0,
    signal,
  });
  if (response.statusCode !== 200) throw new WireError(`HTTP ${response.statusCode}: ${(await response.body.text()).slice(0, 200)}`);
  const body = response.body;
  let closing = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new WireError('subscriptions/listen: no acknowledgement within 10 s')), CALL_TIMEOUT_MS);
    const parser = new SseParser((data) => {
      if (!data.includes('notifications/subscriptions/acknowledged')) return;
      clearTimeout(timer);
      resolve();
    });
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => parser.push(chunk));
    const ended = (why: string) => () => {
      if (closing) return;
      closing = true;
      clearTimeout(timer);
      reject(new WireError(`subscriptions/listen ${why}`));
      onEnded(`subscriptions/listen ${why}`);
    };
    body.once('end', ended('stream ended'));
    body.once('error', ended('stream failed'));
  });
  return () => {
    closing = true;
    body.destroy();
  };
}

/** The attacker: one client address, its users, and what it holds. */
class Attacker {
  readonly pool: Pool;
  readonly endpoint: LeanEndpoint;
  readonly #stop = new AbortController();
  readonly users: { token: string; eventsUri: string; cursor: string }[] = [];
  readonly sessions: LeanSession[] = [];
  readonly #listens: (() => void)[] = [];
  readonly #waits: Promise<void>[] = [];
  /** Holdings that ended unasked (a wait answered or failed, a listen's stream ended), so far. */
  readonly ended = noneOf();
  firstError: string | undefined;

  constructor(
    origin: string,
    readonly path: string,
    readonly signal: AbortSignal,
  ) {
    // Unbounded: every held wait, listen and stream keeps a connection of its own.
    this.pool = new Pool(origin, { connections: null, pipelining: 1, localAddress: ATTACKER_ADDRESS });
    this.endpoint = { posts: this.pool, streams: this.pool, path };
    signal.addEventListener('abort', () => this.#stop.abort(), { once: true });
    setMaxListeners(0, this.#stop.signal);
  }

  /**
   * Takes all of `allowance`: users enough for the waits (`waitsPerUser` each) and the
   * listens, plus a spare; then listens, waits and sessions. `step` hears of each step.
   */
  async takeAll(
    allowance: Allowance,
    step: (done: number) => void,
  ): Promise<{ waits: number; refusedBeyond: AttackerHoldings['refusedBeyond'] }> {
    const waitUsers = Math.ceil(allowance.perAddress / allowance.waitsPerUser);
    const users = Math.max(waitUsers, allowance.listenUris) + 1;
    // An even count, so every user is paired with another of the attacker's and none waits.
    await this.makeUsers(users + (users % 2));
    step(1);
    await this.listen(allowance.perAddress, allowance.listenUris);
    step(2);
    this.holdWaits(waitUsers, allowance.waitsPerUser);
    await this.openSessions(allowance.perAddress);
    step(3);
    return { waits: waitUsers * allowance.waitsPerUser, refusedBeyond: await this.oneMoreOfEach(this.users.at(-1)!) };
  }

  /** Makes `count` users, in turn (so they pair among themselves), and reads each one's cursor. */
  async makeUsers(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const entered = await modernCall(this.endpoint, 'enter_queue', {}, this.signal);
      if (typeof entered.user_token !== 'string' || typeof entered.events_uri !== 'string')
        throw new Error(`enter_queue answered no user_token or events_uri: ${JSON.stringify(entered).slice(0, 200)}`);
      this.users.push({ token: entered.user_token, eventsUri: entered.events_uri, cursor: '0' });
    }
    for (const user of this.users) user.cursor = await this.#cursorOf(user.token, user.cursor);
  }

  async #cursorOf(token: string, after: string): Promise<string> {
    const page = await modernCall(this.endpoint, 'wait_for_events', { user_token: token, after, timeout_s: 0 }, this.signal);
    if (typeof page.cursor !== 'string') throw new Error(`wait_for_events answered no cursor: ${JSON.stringify(page).slice(0, 200)}`);
    return page.cursor;
  }

  /** Opens `count` listens of `size` URIs each, the users' events URIs in turn. */
  async listen(count: number, size: number): Promise<void> {
    const uris = this.users.map((user) => user.eventsUri);
    await boundedTimes(count, { concurrency: OPEN_CONCURRENCY }, async (i) => {
      const named = Array.from({ length: size }, (_, k) => uris[(i * size + k) % uris.length]!);
      this.#listens.push(await openListen(this.pool, this.path, named, this.#stop.signal, (why) => this.#ended('listens', why)));
    });
  }

  /** Holds `perUser` wait_for_events on each of `users` users; each one answered is asked again. */
  holdWaits(users: number, perUser: number): void {
    for (const user of this.users.slice(0, users)) for (let k = 0; k < perUser; k++) this.#waits.push(this.#holdWait(user));
  }

  async #holdWait(user: { token: string; cursor: string }): Promise<void> {
    const { signal } = this.#stop;
    while (!signal.aborted) {
      try {
        const page = await modernCall(
          this.endpoint,
          'wait_for_events',
          { user_token: user.token, after: user.cursor, timeout_s: WAIT_TIMEOUT_S },
          signal,
          (WAIT_TIMEOUT_S + 10) * 1000,
        );
        if (typeof page.cursor === 'string') user.cursor = page.cursor;
        this.#ended('waits', `a wait_for_events was answered early (${JSON.stringify(page).slice(0, 120)})`);
      } catch (error) {
        if (signal.aborted) return;
        this.#ended('waits', `wait_for_events: ${messageOf(error)}`);
        await sleep(100);
      }
    }
  }

  /** Opens `count` 2025-era sessions, each with its GET stream. */
  async openSessions(count: number): Promise<void> {
    await boundedTimes(count, { concurrency: OPEN_CONCURRENCY }, async () => {
      const session = new LeanSession(this.endpoint);
      await session.open();
      this.sessions.push(session);
    });
  }

  #ended(kind: Holding, why: string): void {
    this.ended[kind] += 1;
    this.firstError ??= why;
  }

  /** Tries one more of each kind; answers which were refused for the allowance. */
  async oneMoreOfEach(spare: { token: string; cursor: string }): Promise<AttackerHoldings['refusedBeyond']> {
    const refused = (attempt: () => Promise<unknown>) =>
      attempt().then(
        () => false,
        (error: unknown) => {
          if (!refusedForAllowance(error)) this.firstError ??= `one more: ${messageOf(error)}`;
          return refusedForAllowance(error);
        },
      );
    const listens = await refused(async () =>
      (await openListen(this.pool, this.path, [this.users[0]!.eventsUri], this.signal, () => {}))(),
    );
    // The waits were sent without waiting for their answers: asked until they are all held (or 3 s pass).
    let waits = false;
    for (let tries = 0; !waits && tries < 30; tries++) {
      waits = await refused(() =>
        modernCall(this.endpoint, 'wait_for_events', { user_token: spare.token, after: spare.cursor, timeout_s: 0 }, this.signal),
      );
      if (!waits) await sleep(100);
    }
    const sessions = await refused(async () => {
      const session = new LeanSession(this.endpoint);
      await session.open({ stream: false });
      await session.close();
    });
    return { listens, waits, sessions };
  }

  /** Holdings lost so far: ended unasked, or a session whose stream closed. */
  lost(): Record<Holding, number> {
    const closed = this.sessions.filter((session) => !session.streamOpen).length;
    return { ...this.ended, streams: closed, sessions: closed };
  }

  /** Lets go of everything: waits abandoned, listens and streams closed, connections gone. */
  async release(): Promise<void> {
    this.#stop.abort();
    for (const close of this.#listens) close();
    await Promise.allSettled(this.#waits);
    await this.pool.destroy().catch(() => {});
  }
}

/** A full GC in the server (it preloads forcedGc.js), then a pause. */
async function collected(server: SpawnedServer, settleMs: number): Promise<void> {
  process.kill(server.pid, 'SIGUSR2');
  await sleep(settleMs);
}

async function weigh(server: SpawnedServer, pool: Dispatcher, settleMs: number): Promise<{ rssKiB: number; heapBytes: number | null }> {
  await collected(server, settleMs);
  const heapBytes = await metricGauge(server.url, 'nodejs_heap_size_used_bytes', pool);
  return { rssKiB: rssKiB(server.pid), heapBytes };
}

/** Starts the server, measures the pair idle and under attack, and stops everything. */
export async function measureUnderAttack(settings: UnderAttackSettings, progress: ProgressLine): Promise<UnderAttackFigures> {
  const startedAt = new Date();
  const allowance = defaultAllowance(settings.cliPath);
  // Rate limits raised so that the pair's back-to-back sends and the attacker's users
  // are not refused. Not mcpChatFlags(): it lifts --max-per-address too, and what one
  // address may hold must stay at the server's defaults here.
  const serverFlags = '--log-level silent --messages-per-second 10000 --message-burst 100000 --new-users-per-minute 1000'.split(' ');
  const figures: UnderAttackFigures = {
    startedAt: startedAt.toISOString(),
    baseline: 'the same server process and pair, before the attacker’s first request',
    allowance,
    serverFlags,
    pair: {
      address: PAIR_ADDRESS,
      client: '2025-era sessions, each with its GET stream',
      messageSize: settings.messageSize,
      warmupMessages: settings.warmupMessages,
    },
    idle: null,
    underAttack: null,
    attacker: null,
    memory: null,
    delivery: { sent: 0, received: 0, lost: 0, duplicated: 0, outOfOrder: 0, sendErrors: 0 },
    seconds: 0,
  };
  let server: SpawnedServer | undefined;
  const pools: Pool[] = [];
  let attacker: Attacker | undefined;
  let pair: Pair | undefined;
  const died = () => {
    const exited = server?.exited();
    return exited && server && `the server exited (${exited}): ${tailOf(server).slice(-400)}`;
  };
  const error = await withDeadline(settings.deadlineMs, died, async (signal) => {
    server = await startServer({
      entry: settings.cliPath,
      nodeArgs: ['--expose-gc', '--import', here('./forcedGc.js')],
      args: ['--host', PAIR_ADDRESS, ...serverFlags],
    });
    const posts = new Pool(server.url.origin, { connections: 4, pipelining: 1, localAddress: PAIR_ADDRESS });
    const streams = new Pool(server.url.origin, { connections: null, pipelining: 1, localAddress: PAIR_ADDRESS });
    pools.push(posts, streams);
    const endpoint: LeanEndpoint = { posts, streams, path: server.url.pathname };

    progress.begin(`under attack · pair 2 users on ${PAIR_ADDRESS}, warm up ${settings.warmupMessages} messages`, 'msgs', {
      total: settings.warmupMessages,
    });
    pair = [new PairMember(0, endpoint), new PairMember(1, endpoint)];
    await pairUp(pair, signal);
    await exchange(pair, settings.warmupMessages, settings.messageSize, signal);
    progress.end(`room ${pair[0].roomId!.slice(0, 8)}…`);

    progress.begin(`under attack · idle server · ${settings.messages} send_message, one at a time`, 'msgs', { total: settings.messages });
    await collected(server, settings.settleMs);
    figures.idle = await exchange(pair, settings.messages, settings.messageSize, signal);
    progress.end(`round trip p50 ${figures.idle.roundTripMs.p50} ms, p99 ${figures.idle.roundTripMs.p99} ms`);

    const label =
      `${allowance.perAddress} listens × ${allowance.listenUris} URIs, ${allowance.perAddress} held waits, ` +
      `${allowance.perAddress} sessions with GET streams`;
    progress.begin(`under attack · ${ATTACKER_ADDRESS} takes ${label}`, 'steps', { total: 4 });
    const before = await weigh(server, posts, settings.settleMs);
    const setupStart = performance.now();
    attacker = new Attacker(server.url.origin, server.url.pathname, signal);
    const { waits, refusedBeyond } = await attacker.takeAll(allowance, (step) => progress.update(step));
    const full = Object.values(refusedBeyond).every(Boolean) && attacker.sessions.every((session) => session.streamOpen);
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const other = new LeanSession(endpoint);
    const otherAddressServed = await other.open({ stream: false }).then(
      () => other.close().then(() => true),
      () => false,
    );
    const after = await weigh(server, posts, settings.settleMs);
    figures.memory = {
      rssBeforeKiB: before.rssKiB,
      rssAfterKiB: after.rssKiB,
      heapBeforeBytes: before.heapBytes,
      heapAfterBytes: after.heapBytes,
    };
    const holdings: AttackerHoldings = {
      address: ATTACKER_ADDRESS,
      users: attacker.users.length,
      listens: allowance.perAddress,
      urisPerListen: allowance.listenUris,
      waits,
      waitTimeoutS: WAIT_TIMEOUT_S,
      sessions: attacker.sessions.length,
      streams: attacker.sessions.filter((s) => s.streamOpen).length,
      setupSeconds,
      refusedBeyond,
      otherAddressServed,
      serverListens: await metricGauge(server.url, 'mcp_chat_listens', posts),
      serverSessions: await metricGauge(server.url, 'mcp_chat_sessions', posts),
      dropped: noneOf(),
    };
    figures.attacker = holdings;
    const mb = (kib: number) => (kib / 1024).toFixed(1);
    progress.end(
      `in ${setupSeconds.toFixed(1)} s; allowance full (one more refused): ${full ? 'yes' : 'NO'}; ` +
        `server counts ${holdings.serverListens ?? '?'} listens, ${holdings.serverSessions ?? '?'} sessions; RSS ${mb(before.rssKiB)} → ${mb(after.rssKiB)} MB`,
    );

    progress.begin(`under attack · attacked server · ${settings.messages} send_message, one at a time`, 'msgs', {
      total: settings.messages,
    });
    const lostBefore = attacker.lost();
    figures.underAttack = await exchange(pair, settings.messages, settings.messageSize, signal);
    const lostAfter = attacker.lost();
    holdings.dropped = Object.fromEntries(HOLDINGS.map((k) => [k, lostAfter[k] - lostBefore[k]])) as Record<Holding, number>;
    if (attacker.firstError) holdings.firstError = attacker.firstError;
    progress.end(`round trip p50 ${figures.underAttack.roundTripMs.p50} ms, p99 ${figures.underAttack.roundTripMs.p99} ms`);
  });
  if (error) {
    figures.error = error;
    progress.note(`under attack: ${error}`);
  }
  if (pair) {
    const { misrouted: _, ...delivery } = deliveryOf(pair);
    figures.delivery = delivery;
  }
  await attacker?.release();
  await Promise.allSettled(pools.map((pool) => pool.destroy()));
  if (server) await stopChild(server.child, STOP_GRACE_MS);
  figures.seconds = (Date.now() - startedAt.getTime()) / 1000;
  return figures;
}

/** What went wrong, one sentence each: the part could not finish, the pair's delivery was wrong, or the attacker did not hold its full allowance throughout. */
export function underAttackFailures(figures: UnderAttackFigures): string[] {
  const failures: string[] = [];
  if (figures.error) failures.push(`under attack did not finish: ${figures.error}`);
  const d = figures.delivery;
  // A part cut short leaves messages unread: only what no abandonment explains is counted.
  const lost = figures.error ? 0 : d.lost;
  if (lost + d.duplicated + d.outOfOrder > 0)
    failures.push(
      `under attack: the pair's messages lost ${lost}, duplicated ${d.duplicated}, out of order ${d.outOfOrder}${d.firstError ? ` (first: ${d.firstError})` : ''}`,
    );
  if (d.sendErrors > 0 && !figures.error)
    failures.push(`under attack: ${d.sendErrors} of the pair's send_message calls failed (${d.firstError ?? 'no error given'})`);
  const attacker = figures.attacker;
  if (attacker) {
    const notRefused = Object.entries(attacker.refusedBeyond).flatMap(([kind, refused]) => (refused ? [] : [kind]));
    if (notRefused.length > 0)
      failures.push(
        `under attack: one more ${notRefused.join(', ')} than ${figures.allowance.perAddress} was not refused — the attacker did not hold its full allowance (${attacker.firstError ?? 'no error given'})`,
      );
    if (attacker.streams < figures.allowance.perAddress)
      failures.push(
        `under attack: the attacker held ${attacker.streams} GET streams, not ${figures.allowance.perAddress} (${attacker.firstError ?? 'no error given'})`,
      );
    const dropped = HOLDINGS.filter((k) => attacker.dropped[k] > 0);
    if (dropped.length > 0)
      failures.push(
        `under attack: the attacker's ${dropped.map((k) => `${attacker.dropped[k]} ${k}`).join(', ')} ended during the attack phase (${attacker.firstError ?? 'no error given'})`,
      );
    if (!attacker.otherAddressServed)
      failures.push(`under attack: a session from ${figures.pair.address} was refused while ${attacker.address} held its allowance`);
  }
  return failures;
}

/** What to keep in mind reading the under-attack table. */
export function underAttackCaveats(figures: UnderAttackFigures, quick: boolean): string[] {
  const a = figures.allowance;
  return [
    `Under attack: one mcp-chat process started afresh with ${figures.serverFlags.join(' ')} (so the pair’s back-to-back sends and the attacker’s ${figures.attacker?.users ?? '?'} users are not rate-limited) and --max-per-address ${a.perAddress}, --max-listen-uris ${a.listenUris}, --max-waits-per-user ${a.waitsPerUser} at their defaults. ` +
      `The baseline is ${figures.baseline}, after ${figures.pair.warmupMessages} warm-up messages; each phase and each weighing follows a full GC in the server. ` +
      `The pair (${figures.pair.client}, ${figures.pair.address}) and the attacker (${figures.attacker?.address ?? ATTACKER_ADDRESS}: users made with enter_queue, paired among themselves; listens naming their events URIs; ${WAIT_TIMEOUT_S} s waits, ${a.waitsPerUser} per user; sessions kept open by their GET streams) run in the bench’s own process. ` +
      'Round trip: send_message sent → its answer read; delivered: → the partner’s message.received read off its stream. The attacker only holds (nothing it holds is updated meanwhile), so this is the cost of holding, not of traffic.' +
      (quick
        ? ` Quick: ${figures.idle?.roundTrips ?? 0} round trips per phase, so p99 is the third-slowest; run without --quick for 1,000.`
        : ''),
  ];
}

export function formatUnderAttack(figures: UnderAttackFigures): string {
  const n = (value: number | null | undefined, digits: number) => show(value, digits, '-');
  const latency = (label: string, pick: (phase: UnderAttackPhase) => number) => {
    const [idle, attacked] = [figures.idle, figures.underAttack].map((phase) => (phase ? pick(phase) : undefined));
    return [label, n(idle, 2), n(attacked, 2), idle && attacked !== undefined ? `${(attacked / idle).toFixed(2)}×` : '-'];
  };
  const m = figures.memory;
  const memory = (label: string, before: number | null | undefined, after: number | null | undefined) => {
    const change =
      before === null || before === undefined || after === null || after === undefined
        ? '-'
        : `${after >= before ? '+' : ''}${n(after - before, 1)}`;
    return [label, n(before, 1), n(after, 1), change];
  };
  const mb = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? null : bytes / 1024 / 1024);
  const a = figures.allowance;
  const rounds = figures.underAttack?.roundTrips ?? figures.idle?.roundTrips ?? 0;
  return [
    `under attack (one address holds its full allowance of ${a.perAddress} each: listens of ${a.listenUris} URIs, held wait_for_events, sessions with GET streams; ` +
      `a pair on another address, ${n(rounds, 0)} send_message one at a time per phase)` +
      (figures.error ? ` — FAILED: ${figures.error}` : ''),
    columns(
      ['', 'idle server', 'under attack', 'change'],
      [
        latency('send_message round trip p50 (ms)', (p) => p.roundTripMs.p50),
        latency('send_message round trip p99 (ms)', (p) => p.roundTripMs.p99),
        latency('delivered to the partner p50 (ms)', (p) => p.deliveredMs.p50),
        latency('delivered to the partner p99 (ms)', (p) => p.deliveredMs.p99),
        memory('server RSS after full GC (MB)', m ? m.rssBeforeKiB / 1024 : null, m ? m.rssAfterKiB / 1024 : null),
        memory('server heap used after full GC (MB)', mb(m?.heapBeforeBytes), mb(m?.heapAfterBytes)),
      ],
    ),
  ].join('\n');
}
