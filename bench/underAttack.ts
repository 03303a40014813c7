/**
 * The "under attack" part of `npm run bench`: a chatting pair's send_message round trip on
 * the real server (dist/src/cli.js) while ONE other client address holds all that the
 * default `--max-per-address` lets it hold at once — listens naming `--max-listen-uris`
 * users each, held `wait_for_events`, 2025-era sessions with their GET streams — against
 * the same pair on the same process before the attack. The attacker calls from 127.0.0.2,
 * the pair from 127.0.0.1 (loopback both: the server tells them apart), both from this
 * process. Every wait is bounded; the server is stopped whatever happens.
 */
import { setMaxListeners } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ToolRefusal } from '../test/support/chatClient.js';
import { listenFrom, type OpenResponse } from '../test/support/fromAddress.js';
import { WireError } from '../test/support/jsonRpcWire.js';
import { type SpawnedServer, stopChild } from '../test/support/serverProcess.js';
import { TokenClient } from '../test/support/tokenClient.js';
import { deliveryOf, exchange, type Pair, PairedUser, pairFailures, partners } from './chatter.js';
import { LeanSession, leanEndpoint, leanSender } from './leanSession.js';
import type { BenchOptions } from './options.js';
import { defaultOf, helpOf } from './options.js';
import { rssKiB, startServer, tailOf } from './procStats.js';
import type { ProgressLine } from './table.js';
import { columns, type PartOutcome, show } from './table.js';
import { bounded, messageOf, orAbort, percentiles, sleep, withDeadline } from './timing.js';

/** What one client address holds at once, each up to `--max-per-address` (src/session/addressAllowance.ts). */
const HOLDINGS = ['listens', 'waits', 'sessions', 'streams'] as const;
type Holding = (typeof HOLDINGS)[number];

const ATTACKER_ADDRESS = '127.0.0.2';
const PAIR_ADDRESS = '127.0.0.1';
/** The longest wait_for_events the server takes, as an attacker would hold it. */
const WAIT_TIMEOUT_S = 50;
const CALL_TIMEOUT_MS = 10_000;
const OPEN_CONCURRENCY = 16;
/** Rate limits raised so that the pair's back-to-back sends and the attacker's users are not refused; what one address may hold stays at its defaults. */
const SERVER_FLAGS = '--log-level silent --messages-per-second 10000 --message-burst 100000 --new-users-per-minute 1000'.split(' ');

export function underAttackSettings(options: Pick<BenchOptions, 'quick' | 'messageSize'>) {
  const { quick } = options;
  /** Round trips per phase, one at a time, the members in turn, after `warmupMessages`; `settleMs` after each forced full GC. */
  return {
    messages: quick ? 200 : 1000,
    warmupMessages: quick ? 300 : 500,
    messageSize: options.messageSize,
    settleMs: quick ? 300 : 1000,
    deadlineMs: (quick ? 60 : 180) * 1000,
  };
}
type Settings = ReturnType<typeof underAttackSettings>;

/** The server's defaults for what one address may hold, from its `--help`. */
function defaultAllowance(cliPath: string) {
  const help = helpOf(cliPath);
  const of = (flag: string) => {
    const value = defaultOf(help, flag);
    if (Number.isNaN(value)) throw new Error(`mcp-chat --help lists no default for --${flag}: this build has no such limit`);
    return value;
  };
  return { perAddress: of('max-per-address'), listenUris: of('max-listen-uris'), waitsPerUser: of('max-waits-per-user') };
}
type Allowance = ReturnType<typeof defaultAllowance>;
/** What the attacker held (besides its counts): which one-more were refused, what ended during the attack phase, whether another address was served. */
type Holdings = {
  streams: number;
  refusedBeyond: Record<string, boolean>;
  dropped: Record<Holding, number>;
  otherAddressServed: boolean;
  firstError: string | undefined;
};

/** Whether a failed request was the server saying no for the address's allowance. */
const refusedForAllowance = (error: unknown) =>
  (error instanceof WireError && error.message.includes('HTTP 429')) || (error instanceof ToolRefusal && /too many/i.test(error.message));

/** The attacker: one client address, its users, and what it holds. */
class Attacker {
  readonly endpoint: ReturnType<typeof leanEndpoint>;
  readonly #stop = new AbortController();
  readonly users: { client: TokenClient; eventsUri: string }[] = [];
  readonly sessions: LeanSession[] = [];
  readonly #listens: OpenResponse[] = [];
  #nextId = 1;
  readonly #waits: TokenClient[] = [];
  /** Held waits answered (with events) while they should have been held. */
  #answeredWaits = 0;
  firstError: string | undefined;

  constructor(
    private readonly server: SpawnedServer,
    signal: AbortSignal,
  ) {
    // Unbounded: every held wait, listen and stream keeps a connection of its own.
    this.endpoint = leanEndpoint(server.url, null, { localAddress: ATTACKER_ADDRESS });
    signal.addEventListener('abort', () => this.#stop.abort(), { once: true });
    setMaxListeners(0, this.#stop.signal);
  }

  /**
   * Takes all of `allowance`: users enough for the waits (`waitsPerUser` each) and the
   * listens, plus a spare, paired among themselves (an even count, so none waits); then
   * listens, waits and sessions; then tries one more of each. `step` hears of each step.
   */
  async takeAll({ perAddress, listenUris, waitsPerUser }: Allowance, step: (done: number) => void) {
    const { signal } = this.#stop;
    const waitUsers = Math.ceil(perAddress / waitsPerUser);
    const users = Math.max(waitUsers, listenUris) + 1;
    for (let i = 0; i < users + (users % 2); i++) {
      const client = new TokenClient(leanSender('modern', this.endpoint));
      const entered = await client.call('enter_queue', {}, signal);
      if (client.token === undefined || typeof entered.events_uri !== 'string')
        throw new Error(`enter_queue answered no user_token or events_uri: ${JSON.stringify(entered).slice(0, 200)}`);
      this.users.push({ client, eventsUri: entered.events_uri });
    }
    for (const { client } of this.users) await client.waitForEvents(0, signal);
    step(1);
    const uris = this.users.map((user) => user.eventsUri);
    await bounded([...Array(perAddress).keys()], OPEN_CONCURRENCY, async (i) => {
      const named = Array.from({ length: listenUris }, (_, k) => uris[(i * listenUris + k) % uris.length]!);
      this.#listens.push(await this.#listen(named));
    });
    step(2);
    // Each held wait is a client of its user's token, polling on: an answer is a wait that ended.
    for (const { client } of this.users.slice(0, waitUsers))
      for (let k = 0; k < waitsPerUser; k++) {
        const wait = Object.assign(new TokenClient(leanSender('modern', this.endpoint), { cursor: client.cursor! }), {
          token: client.token,
        });
        wait.onNotification = (method) => {
          this.#answeredWaits += 1;
          this.firstError ??= `a wait_for_events was answered early (${method})`;
        };
        wait.poll(WAIT_TIMEOUT_S);
        this.#waits.push(wait);
      }
    await bounded(Array.from({ length: perAddress }), OPEN_CONCURRENCY, async () => {
      const session = new LeanSession(this.endpoint);
      await session.open();
      this.sessions.push(session);
    });
    step(3);
    return { waits: waitUsers * waitsPerUser, refusedBeyond: await this.#oneMoreOfEach(this.users.at(-1)!.client) };
  }

  /** A `subscriptions/listen` from the attacker's address (a connection of its own), once acknowledged. */
  async #listen(uris: readonly string[]): Promise<OpenResponse> {
    const listen = await listenFrom(ATTACKER_ADDRESS, this.server.url, this.#nextId++, uris);
    try {
      if (listen.status !== 200) throw new WireError(`subscriptions/listen: HTTP ${listen.status}`);
      await listen.until('notifications/subscriptions/acknowledged', CALL_TIMEOUT_MS);
      return listen;
    } catch (error) {
      listen.close();
      throw error;
    }
  }

  /** Tries one more of each kind (streams have no such check: a GET replaces the session's last); answers which were refused for the allowance. */
  async #oneMoreOfEach(spare: TokenClient): Promise<Record<Exclude<Holding, 'streams'>, boolean>> {
    const refused = (attempt: () => Promise<unknown>) =>
      attempt().then(
        () => false,
        (error: unknown) => {
          if (!refusedForAllowance(error)) this.firstError ??= `one more: ${messageOf(error)}`;
          return refusedForAllowance(error);
        },
      );
    const listens = await refused(async () => (await this.#listen([this.users[0]!.eventsUri])).close());
    // The waits were sent without waiting for their answers: asked until they are all held (or 3 s pass).
    let waits = false;
    for (let tries = 0; !waits && tries < 30; tries++) {
      waits = await refused(() => spare.waitForEvents(0, this.#stop.signal));
      if (!waits) await sleep(100);
    }
    const sessions = await refused(async () => {
      const session = new LeanSession(this.endpoint);
      await session.open({ stream: false });
      await session.close();
    });
    return { listens, waits, sessions };
  }

  /** Holdings lost so far: a wait ended unasked, a listen's stream ended, a session whose stream closed. */
  lost(): Record<Holding, number> {
    const closed = this.sessions.filter((session) => !session.streamOpen).length;
    const waits = this.#answeredWaits + this.#waits.reduce((sum, wait) => sum + wait.pollErrors, 0);
    this.firstError ??= this.#waits.find((wait) => wait.firstPollError)?.firstPollError;
    return { listens: this.#listens.filter((listen) => listen.ended()).length, waits, streams: closed, sessions: closed };
  }

  /** Lets go of everything: waits abandoned, listens and streams closed, connections gone. */
  async release(): Promise<void> {
    this.#stop.abort();
    for (const listen of this.#listens) listen.close();
    await Promise.allSettled(this.#waits.map((wait) => wait.stop()));
    await this.endpoint.close();
  }
}

/** Starts the server, measures the pair idle and under attack, and stops everything. */
async function measureUnderAttack(cliPath: string, settings: Settings, progress: ProgressLine) {
  const startedAt = performance.now();
  const allowance = defaultAllowance(cliPath);
  const phase = (roundTrips: number[]) => ({ roundTrips: roundTrips.length, roundTripMs: percentiles(roundTrips) });
  const figures = {
    allowance,
    serverFlags: SERVER_FLAGS,
    pair: { address: PAIR_ADDRESS, client: '2025-era sessions, each with its GET stream', warmupMessages: settings.warmupMessages },
    idle: null as ReturnType<typeof phase> | null,
    underAttack: null as ReturnType<typeof phase> | null,
    attacker: null as (Holdings & Record<string, unknown>) | null,
    /** The server's RSS after a full GC, before the attacker's first request and once it held everything. */
    rssKiB: null as { before: number; after: number } | null,
    delivery: deliveryOf([]),
    seconds: 0,
    error: undefined as string | undefined,
  };
  let server: SpawnedServer | undefined;
  let endpoint: ReturnType<typeof leanEndpoint> | undefined;
  let attacker: Attacker | undefined;
  let pair: Pair<PairedUser<LeanSession>> | undefined;
  const died = () => {
    const exited = server?.exited();
    return exited && server && `the server exited (${exited}): ${tailOf(server).slice(-400)}`;
  };
  figures.error = await withDeadline(settings.deadlineMs, died, async (signal) => {
    const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
    const running = await startServer({
      entry: cliPath,
      nodeArgs: ['--expose-gc', '--import', here('./forcedGc.js')],
      args: ['--host', PAIR_ADDRESS, ...SERVER_FLAGS],
    });
    server = running;
    const pairs = leanEndpoint(running.url, 4, { localAddress: PAIR_ADDRESS });
    endpoint = pairs;
    /** A full GC in the server (it preloads forcedGc.js), a pause, then its RSS. */
    const weigh = async () => {
      process.kill(running.pid, 'SIGUSR2');
      await sleep(settings.settleMs);
      return rssKiB(running.pid);
    };
    const limits = { size: settings.messageSize, concurrency: 1, drainMs: 5_000, signal };
    const measured = async (label: string) => {
      progress.begin(`under attack · ${label} · ${settings.messages} send_message, one at a time`, 'msgs', { total: settings.messages });
      await weigh();
      const roundTrips: number[] = [];
      await exchange([pair!], settings.messages, { ...limits, roundTrips });
      const result = phase(roundTrips);
      progress.end(`round trip p50 ${show(result.roundTripMs.p50, 2)} ms, p99 ${show(result.roundTripMs.p99, 2)} ms`);
      return result;
    };

    progress.begin(`under attack · pair 2 users on ${PAIR_ADDRESS}, warm up ${settings.warmupMessages} messages`, 'msgs', {
      total: settings.warmupMessages,
    });
    pair = partners(new PairedUser(0, new LeanSession(pairs)), new PairedUser(1, new LeanSession(pairs)));
    const [a, b] = pair;
    await a.client.open();
    await b.client.open();
    await a.client.call('enter_queue', {}, signal);
    const matched = await b.client.call('enter_queue', {}, signal);
    if (typeof matched.room_id === 'string') b.joined(matched.room_id);
    await orAbort(Promise.all([a.found, b.found]), AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]));
    if (a.roomId !== b.roomId) throw new Error(`the pair was put in two rooms (${a.roomId}, ${b.roomId})`);
    await exchange([pair], settings.warmupMessages, limits);
    progress.end(`room ${a.roomId!.slice(0, 8)}…`);
    figures.idle = await measured('idle server');

    const { perAddress, listenUris } = allowance;
    progress.begin(
      `under attack · ${ATTACKER_ADDRESS} takes ${perAddress} listens × ${listenUris} URIs, ${perAddress} held waits, ${perAddress} sessions with GET streams`,
      'steps',
      { total: 4 },
    );
    const before = await weigh();
    const setupStart = performance.now();
    attacker = new Attacker(running, signal);
    const { waits, refusedBeyond } = await attacker.takeAll(allowance, (step) => progress.update(step));
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const other = new LeanSession(pairs);
    const otherAddressServed = await other.open({ stream: false }).then(
      () => other.close().then(() => true),
      () => false,
    );
    figures.rssKiB = { before, after: await weigh() };
    // Listens and waits as the allowance says (their one more was refused), each wait held WAIT_TIMEOUT_S.
    const holdings = {
      users: attacker.users.length,
      waits,
      sessions: attacker.sessions.length,
      streams: attacker.sessions.filter((s) => s.streamOpen).length,
      setupSeconds,
      refusedBeyond,
      otherAddressServed,
      /** Holdings that ended during the attack phase. */
      dropped: attacker.lost(),
      firstError: undefined as string | undefined,
    };
    figures.attacker = holdings;
    const full = Object.values(refusedBeyond).every(Boolean) && holdings.streams === perAddress;
    progress.end(
      `in ${show(setupSeconds, 1)} s; allowance full (one more refused): ${full ? 'yes' : 'NO'}; RSS ${show(before / 1024, 1)} → ${show(figures.rssKiB.after / 1024, 1)} MB`,
    );

    const lostBefore = attacker.lost();
    figures.underAttack = await measured('attacked server');
    const lostAfter = attacker.lost();
    holdings.dropped = Object.fromEntries(HOLDINGS.map((k) => [k, lostAfter[k] - lostBefore[k]])) as Record<Holding, number>;
    holdings.firstError = attacker.firstError;
  });
  if (figures.error) progress.note(`under attack: ${figures.error}`);
  if (pair) figures.delivery = deliveryOf(pair);
  await attacker?.release();
  await endpoint?.close();
  if (server) await stopChild(server.child, 5_000);
  figures.seconds = (performance.now() - startedAt) / 1000;
  return figures;
}
type Figures = Awaited<ReturnType<typeof measureUnderAttack>>;

/** What went wrong, one sentence each: the part could not finish, the pair's delivery was wrong, or the attacker did not hold its full allowance throughout. */
function underAttackFailures(figures: Figures): string[] {
  const failures = [
    ...(figures.error ? [`under attack did not finish: ${figures.error}`] : []),
    ...pairFailures("under attack: the pair's", figures.delivery, figures.error !== undefined),
  ];
  const attacker = figures.attacker;
  if (!attacker) return failures;
  const why = `(${attacker.firstError ?? 'no error given'})`;
  const { perAddress } = figures.allowance;
  const notRefused = Object.entries(attacker.refusedBeyond).flatMap(([kind, refused]) => (refused ? [] : [kind]));
  if (notRefused.length > 0)
    failures.push(
      `under attack: one more ${notRefused.join(', ')} than ${perAddress} was not refused — the attacker did not hold its full allowance ${why}`,
    );
  if (attacker.streams < perAddress)
    failures.push(`under attack: the attacker held ${attacker.streams} GET streams, not ${perAddress} ${why}`);
  const dropped = HOLDINGS.filter((k) => attacker.dropped[k] > 0);
  if (dropped.length > 0)
    failures.push(
      `under attack: the attacker's ${dropped.map((k) => `${attacker.dropped[k]} ${k}`).join(', ')} ended during the attack phase ${why}`,
    );
  if (!attacker.otherAddressServed)
    failures.push(`under attack: a session from ${PAIR_ADDRESS} was refused while ${ATTACKER_ADDRESS} held its allowance`);
  return failures;
}

function formatUnderAttack(figures: Figures): string {
  const n = (value: number | null | undefined, digits: number) => show(value, digits, '-');
  const latency = (label: string, pick: (phase: NonNullable<Figures['idle']>) => number) => {
    const [idle, attacked] = [figures.idle, figures.underAttack].map((phase) => (phase ? pick(phase) : undefined));
    return [label, n(idle, 2), n(attacked, 2), idle && attacked !== undefined ? `${(attacked / idle).toFixed(2)}×` : '-'];
  };
  const rss = figures.rssKiB;
  const a = figures.allowance;
  return [
    `under attack (one address holds its full allowance of ${a.perAddress} each: listens of ${a.listenUris} URIs, held wait_for_events, sessions with GET streams; ` +
      `a pair on another address, ${n(figures.idle?.roundTrips, 0)} send_message one at a time per phase)${figures.error ? ` — FAILED: ${figures.error}` : ''}`,
    columns(
      ['', 'idle server', 'under attack', 'change'],
      [
        latency('send_message round trip p50 (ms)', (p) => p.roundTripMs.p50),
        latency('send_message round trip p95 (ms)', (p) => p.roundTripMs.p95),
        latency('send_message round trip p99 (ms)', (p) => p.roundTripMs.p99),
        [
          'server RSS after full GC (MB)',
          n(rss && rss.before / 1024, 1),
          n(rss && rss.after / 1024, 1),
          rss ? `+${n((rss.after - rss.before) / 1024, 1)}` : '-',
        ],
      ],
    ),
  ].join('\n');
}

export async function underAttackPart(cliPath: string, options: BenchOptions, progress: ProgressLine): Promise<PartOutcome> {
  const underAttack = await measureUnderAttack(cliPath, underAttackSettings(options), progress);
  const a = underAttack.allowance;
  const note =
    `Under attack: one mcp-chat process started afresh with ${SERVER_FLAGS.join(' ')} (so the pair’s back-to-back sends and the attacker’s users are not rate-limited) and --max-per-address ${a.perAddress}, --max-listen-uris ${a.listenUris}, --max-waits-per-user ${a.waitsPerUser} at their defaults. ` +
    `The baseline is the same server process and pair before the attacker’s first request, after ${underAttack.pair.warmupMessages} warm-up messages; each phase and each weighing follows a full GC in the server. ` +
    `The pair (${underAttack.pair.client}, ${PAIR_ADDRESS}) and the attacker (${ATTACKER_ADDRESS}: users made with enter_queue, paired among themselves; listens naming their events URIs; ${WAIT_TIMEOUT_S} s waits, ${a.waitsPerUser} per user; sessions kept open by their GET streams) run in the bench’s own process. ` +
    'Round trip: send_message sent → its answer read; every message is also checked read once, in order, by the partner. The attacker only holds (nothing it holds is updated meanwhile), so this is the cost of holding, not of traffic.' +
    (options.quick
      ? ` Quick: ${underAttack.idle?.roundTrips ?? 0} round trips per phase, so p99 is the third-slowest; run without --quick for 1,000.`
      : '');
  return { json: { underAttack }, tables: [formatUnderAttack(underAttack)], notes: [note], failures: underAttackFailures(underAttack) };
}
