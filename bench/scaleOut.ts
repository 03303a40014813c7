/**
 * The scale-out part of `npm run bench`: the real server (dist/src/cli.js) in memory, then
 * 1, 2 and 3 processes on a Redis of their own, each setup started afresh, driven by
 * sessionless clients in this process (one POST per call by `user_token`, news by held
 * wait_for_events). Pairing rounds at rising numbers of users in flight measure pairs/s,
 * enter → paired latency and each process's CPU; pairs on one process and across two
 * measure server CPU per message. Every message is checked (once, in order, from the
 * partner); every wait is bounded and every process stopped.
 */
import { setMaxListeners } from 'node:events';
import { cpus } from 'node:os';
import type { Dispatcher } from 'undici';
import { startRedis, type TestRedis } from '../test/support/redis.js';
import { type SpawnedServer, stopChild } from '../test/support/serverProcess.js';
import { TokenClient } from '../test/support/tokenClient.js';
import { deliveryOf, exchange, type Pair, PairedUser, pairFailures, partners } from './chatter.js';
import { leanEndpoint, leanSender } from './leanSession.js';
import type { BenchOptions } from './options.js';
import { CpuMeter, machineBusySeconds, startServer, track } from './procStats.js';
import type { ProgressLine } from './table.js';
import { columns, type PartOutcome, show } from './table.js';
import { bounded, messageOf, orAbort, percentiles, sleep, withDeadline } from './timing.js';

export const SCALE_OUT_SETUPS = ['in-memory', '1 process on Redis', '2 processes on Redis', '3 processes on Redis'] as const;
type SetupName = (typeof SCALE_OUT_SETUPS)[number];

/** How long one wait_for_events is held, in seconds: how often an idle user asks again. */
const POLL_S = 5;
/** How long messages may take to be read after the last send was answered. */
const DRAIN_MS = 10_000;
/** How long the pairs still in flight at a round's end may take to be paired. */
const ROUND_DRAIN_MS = 30_000;
/** A step up in flight that raises pairs/s by less than this is no rise: the ramp stops. */
const RAMP_GAIN = 1.1;
/** Every bench user comes from 127.0.0.1 and sends as fast as it is answered. */
const LIMITS =
  '--new-users-per-minute 1000000 --max-per-address 1000000 --max-users 1000000 --messages-per-second 10000 --message-burst 100000';

export function scaleOutSettings(cliPath: string, { quick, messageSize }: Pick<BenchOptions, 'quick' | 'messageSize'>) {
  const setupDeadlineMs = (quick ? 45 : 300) * 1000;
  return {
    cliPath,
    messageSize,
    /** Users paired for the messages (pairs of one process and across two), each pair sending `messagesPerPair` after `warmupMessagesPerPair`. */
    users: quick ? 40 : 400,
    messagesPerPair: quick ? 12 : 100,
    warmupMessagesPerPair: quick ? 2 : 10,
    /** Pairs sending at once, and pairs entering at once as they pair. */
    concurrency: 16,
    /** Users in flight per pairing round, each round `settleMs` unmeasured, then `roundMs` measured. */
    inFlight: quick ? [16, 64, 256] : [16, 64, 256, 1024],
    settleMs: quick ? 500 : 2_000,
    roundMs: quick ? 1_500 : 5_000,
    setupDeadlineMs,
    deadlineMs: SCALE_OUT_SETUPS.length * setupDeadlineMs + 30_000,
  };
}
type Settings = ReturnType<typeof scaleOutSettings>;
type Client = ReturnType<typeof clientFor>;

/** A server's two pools (calls on keep-alive connections, each held poll on one of its own); `connect` opens `count` connections in each (a GET /healthz on each), so that a round starts on them. */
function clientFor(server: SpawnedServer, connections: number) {
  const endpoint = leanEndpoint(server.url, connections);
  const open = (pool: Dispatcher, count: number, signal: AbortSignal) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        const response = await pool.request({ path: '/healthz', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000, signal });
        await response.body.dump();
      }),
    );
  return {
    calls: endpoint,
    polls: { ...endpoint, posts: endpoint.streams },
    connect: (count: number, signal: AbortSignal) =>
      Promise.all([open(endpoint.posts, Math.min(count, connections), signal), open(endpoint.streams, count, signal)]),
    close: endpoint.close,
  };
}

/** A sessionless user (test/support/tokenClient.ts) of pair `pair`, on server `server`: when it entered and knew its room. */
class BenchUser extends PairedUser<TokenClient> {
  enteredAt = 0;

  constructor(
    index: number,
    readonly pair: number,
    client: Client,
  ) {
    super(
      index,
      new TokenClient(leanSender('no-session', client.calls), { pollWith: leanSender('no-session', client.polls), cursor: '0' }),
    );
  }

  /**
   * enter_queue with the pair's own interest; answered `matched`, the user knows its room, else
   * it polls until chatroom.found. With `listen` it polls on for messages (until `stop()`).
   */
  async enter(listen: boolean, signal: AbortSignal): Promise<void> {
    this.enteredAt = performance.now();
    const answer = await this.client.call('enter_queue', { interests: [`pair ${this.pair}`] }, signal);
    if (this.client.token === undefined) throw new Error(`enter_queue answered no user_token: ${JSON.stringify(answer).slice(0, 200)}`);
    if (answer.status === 'matched' && typeof answer.room_id === 'string') this.joined(answer.room_id);
    if (listen || this.roomId === undefined) this.client.poll(POLL_S);
    await orAbort(this.found, signal);
    if (!listen) await this.client.stop();
  }
}

/** A pair's two users, placed as a random balancer would: member a on p mod n, member b shifted by ⌊p / n⌋, so one pair in n has both on one process. */
function pairOf(
  p: number,
  clients: readonly Client[],
  at = (member: number) => (p + member * Math.floor(p / clients.length)) % clients.length,
) {
  return partners(new BenchUser(2 * p, p, clients[at(0)]!), new BenchUser(2 * p + 1, p, clients[at(1)]!));
}

/** Enters both members and waits until both know their room, which must be the same. */
async function pairUp([a, b]: Pair<BenchUser>, listen: boolean, signal: AbortSignal): Promise<void> {
  await Promise.all([a.enter(listen, signal), b.enter(listen, signal)]);
  if (a.roomId !== b.roomId) throw new Error(`pair ${a.pair} was put in two rooms (${a.roomId}, ${b.roomId})`);
}

/** CPU in cores over a span: each server, redis-server (null in memory), this process (the load generator), the machine, and other work. */
function coresMeter(pids: number[], redisPid: number | null) {
  const servers = pids.map((pid) => new CpuMeter([pid]));
  const redis = redisPid === null ? null : new CpuMeter([redisPid]);
  const own = new CpuMeter([process.pid]);
  const machineStart = machineBusySeconds();
  return () => {
    const loadGenerator = own.stop();
    const serverCores = servers.map((meter) => meter.stop().cores);
    const redisCores = redis?.stop().cores ?? null;
    const machine = (machineBusySeconds() - machineStart) / Math.max(0.001, loadGenerator.wallSeconds);
    const ours = serverCores.reduce((sum, c) => sum + c, 0) + (redisCores ?? 0) + loadGenerator.cores;
    return { servers: serverCores, redis: redisCores, loadGenerator: loadGenerator.cores, machine, other: Math.max(0, machine - ours) };
  };
}

/** A setup while it runs: its servers, their clients, its Redis, the next pair number (every pair's interest is its own). */
interface Running {
  servers: SpawnedServer[];
  clients: Client[];
  redis: TestRedis | null;
  settings: Settings;
  signal: AbortSignal;
  nextPair: number;
}

/**
 * One pairing round: `inFlight` users (inFlight / 2 pairs) between enter_queue and knowing
 * their room, each pair replaced by a fresh one once both know. After `settleMs`, a window
 * of `roundMs` is measured: pairs completed in it, the latency of the users that entered in
 * it, CPU over it. Then no pair enters, and the last ones finish.
 */
async function pairingRound(setup: Running, inFlight: number, onPairs: (pairs: number) => void) {
  const { settings, clients } = setup;
  const stop = AbortSignal.any([setup.signal, AbortSignal.timeout(settings.settleMs + settings.roundMs + ROUND_DRAIN_MS)]);
  const from = performance.now() + settings.settleMs;
  const to = from + settings.roundMs;
  // Every call in flight listens to it.
  setMaxListeners(0, stop);
  // CPU over the window only (undefined if a process is gone by its end).
  const window = (async () => {
    await sleep(settings.settleMs);
    const stopMeter = coresMeter(
      setup.servers.map((s) => s.pid),
      setup.redis?.pid ?? null,
    );
    await sleep(settings.roundMs);
    return stopMeter();
  })().catch(() => undefined);
  const pairs: Pair<BenchUser>[] = [];
  try {
    const slot = async () => {
      while (performance.now() < to) {
        const pair = pairOf(setup.nextPair++, clients);
        pairs.push(pair);
        await pairUp(pair, false, stop);
        onPairs(pairs.length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, inFlight / 2) }, slot));
  } catch (error) {
    const waiting = pairs.flat().filter((user) => user.roomId === undefined).length;
    throw new Error(`at ${inFlight} in flight, ${waiting} of ${2 * pairs.length} users were not paired: ${messageOf(error)}`);
  } finally {
    await Promise.allSettled(pairs.flat().map((user) => user.client.stop()));
  }
  const cores = await window;
  const confused = pairs.flat().find((user) => user.misrouted > 0);
  if (confused) throw new Error(`a user at ${inFlight} in flight read what it should not: ${confused.firstError}`);
  if (!cores) throw new Error(`the CPU of the round at ${inFlight} in flight could not be read`);
  const seconds = settings.roundMs / 1000;
  const complete = pairs.filter(([a, b]) => Math.max(a.foundAt, b.foundAt) > from && Math.max(a.foundAt, b.foundAt) <= to).length;
  const measured = pairs.flat().filter((user) => user.enteredAt >= from && user.enteredAt < to);
  const serverCores = cores.servers.reduce((sum, c) => sum + c, 0);
  return {
    inFlight,
    users: measured.length,
    pairs: complete,
    pairsPerS: complete / seconds,
    enterToFoundMs: percentiles(measured.map((user) => user.foundAt - user.enteredAt)),
    cores,
    serverCpuMsPerPair: complete > 0 ? (serverCores * seconds * 1000) / complete : null,
  };
}
type Round = Awaited<ReturnType<typeof pairingRound>>;

const fixed = (value: number, digits = 2) => value.toFixed(digits);

/**
 * Pairs the message pairs — [0, same) with both members on one process (each process in
 * turn), the rest across two — warms them up, then measures: half of each kind's messages,
 * then the other half in reverse order (same, cross, cross, same), so that code still
 * warming up weighs on both kinds alike. Per kind: messages, their time, and the CPU of
 * the mcp-chat processes summed, redis-server's apart (null in memory).
 */
async function measureMessages(setup: Running, name: SetupName, users: BenchUser[], progress: ProgressLine) {
  const { settings, signal, clients } = setup;
  const [n, count] = [clients.length, Math.floor(settings.users / 2)];
  const same = n === 1 ? count : Math.ceil(count / 2);
  const pairs = Array.from({ length: count }, (_, p) =>
    pairOf(setup.nextPair + p, clients, (member) => (p < same ? p % n : (p + member) % n)),
  );
  users.push(...pairs.flat());
  progress.begin(`scale-out · ${name} · pair ${count} for the messages`, 'pairs', { total: count });
  let paired = 0;
  const enter = async (pair: Pair<BenchUser>) => {
    await pairUp(pair, true, signal);
    progress.update(++paired);
  };
  await bounded(pairs, settings.concurrency, enter, signal);
  progress.end(`${paired} pairs`);

  const limits = { size: settings.messageSize, concurrency: settings.concurrency, drainMs: DRAIN_MS, signal };
  const [all, half] = [settings.messagesPerPair, Math.ceil(settings.messagesPerPair / 2)];
  const kinds = { same: pairs.slice(0, same), cross: pairs.slice(same) };
  const tallies = {
    same: { messages: 0, seconds: 0, serverCpuMs: 0, redisCpuMs: 0 },
    cross: { messages: 0, seconds: 0, serverCpuMs: 0, redisCpuMs: 0 },
  };
  progress.begin(`scale-out · ${name} · ${all} messages per pair, ${same} same-process pairs, ${count - same} cross-process`, 'runs', {
    total: 4,
  });
  await exchange(pairs, settings.warmupMessagesPerPair, limits);
  for (const [i, [kind, perPair]] of (
    [
      ['same', half],
      ['cross', half],
      ['cross', all - half],
      ['same', all - half],
    ] as const
  ).entries()) {
    if (kinds[kind].length === 0 || perPair === 0) continue;
    const [server, redis, started] = [
      new CpuMeter(setup.servers.map((s) => s.pid)),
      setup.redis && new CpuMeter([setup.redis.pid]),
      performance.now(),
    ];
    tallies[kind].messages += await exchange(kinds[kind], perPair, limits);
    tallies[kind].seconds += (performance.now() - started) / 1000;
    tallies[kind].serverCpuMs += server.stop().cpuSeconds * 1000;
    tallies[kind].redisCpuMs += (redis?.stop().cpuSeconds ?? 0) * 1000;
    progress.update(i + 1);
  }
  const figures = (kind: 'same' | 'cross') => {
    const t = tallies[kind];
    return kinds[kind].length === 0
      ? null
      : {
          pairs: kinds[kind].length,
          ...t,
          messagesPerS: t.seconds > 0 ? t.messages / t.seconds : 0,
          cpuMsPerMessage: t.messages > 0 ? t.serverCpuMs / t.messages : NaN,
          redisCpuMsPerMessage: setup.redis && t.messages > 0 ? t.redisCpuMs / t.messages : null,
        };
  };
  const result = { samePair: figures('same'), crossPair: figures('cross') };
  const said = (label: string, f: ReturnType<typeof figures>) =>
    f ? [`${label} ${fixed(f.cpuMsPerMessage)} ms server CPU per message, ${fixed(f.messagesPerS, 0)} msgs/s`] : [];
  progress.end([...said('same-process:', result.samePair), ...said('cross-process:', result.crossPair)].join('; '));
  return result;
}
type Messages = Awaited<ReturnType<typeof measureMessages>>['samePair'];

/** One setup, from starting its Redis and server(s) to stopping them. */
async function runSetup(name: SetupName, processes: number, settings: Settings, progress: ProgressLine) {
  const setup = {
    name,
    processes,
    pairsPerS: null as number | null,
    pairing: [] as Round[],
    samePair: null as Messages,
    crossPair: null as Messages,
    delivery: { ...deliveryOf([]), pollErrors: 0 },
    redisVersion: null as string | null,
    error: undefined as string | undefined,
  };
  const servers: SpawnedServer[] = [];
  const clients: Client[] = [];
  const users: BenchUser[] = [];
  let redis: TestRedis | null = null;
  const died = () => {
    const i = servers.findIndex((server) => server.exited());
    return i < 0 ? undefined : `mcp-chat ${i + 1} exited (${servers[i]!.exited()}): ${servers[i]!.output().slice(-400)}`;
  };
  setup.error = await withDeadline(settings.setupDeadlineMs, died, async (signal) => {
    if (name !== 'in-memory') {
      redis = await startRedis({ onSpawn: track }).catch((error: unknown) => {
        throw new Error(`could not start redis-server (install Redis 7: apt-get install redis-server): ${messageOf(error)}`);
      });
      setup.redisVersion = /Redis version=([^\s,]+)/.exec(redis.output())?.[1] ?? null;
    }
    const args = ['--log-level', 'warn', ...LIMITS.split(' '), ...(redis ? ['--redis-url', redis.url] : [])];
    for (let i = 0; i < processes; i++) servers.push(await startServer({ entry: settings.cliPath, args }));
    // Every enter_queue in flight holds a connection: on Redis it is answered once the queue holder decided.
    for (const server of servers) clients.push(clientFor(server, Math.max(settings.concurrency, ...settings.inFlight) + 4));
    const running: Running = { servers, clients, redis, settings, signal, nextPair: 0 };
    for (const inFlight of settings.inFlight) {
      // A busy Node server takes a new connection's first request only after the requests
      // ready on its open ones: a round that opened connections as it went would time that.
      await Promise.all(clients.map((client) => client.connect(inFlight, signal)));
      progress.begin(`scale-out · ${name} · pairing, ${inFlight} in flight`, 'pairs', { durationMs: settings.settleMs + settings.roundMs });
      const round = await pairingRound(running, inFlight, (done) => progress.update(done));
      setup.pairing.push(round);
      const { p50, p99 } = round.enterToFoundMs;
      const c = round.cores;
      progress.end(
        `${fixed(round.pairsPerS, 0)} pairs/s, enter→paired p50 ${fixed(p50, 0)} ms, p99 ${fixed(p99, 0)} ms; cores: servers ${c.servers.map((x) => fixed(x)).join(' / ')}` +
          `${c.redis === null ? '' : `, redis-server ${fixed(c.redis)}`}, load generator ${fixed(c.loadGenerator)}, other ${fixed(c.other)}`,
      );
      const previous = setup.pairing.at(-2);
      if (previous && round.pairsPerS < RAMP_GAIN * previous.pairsPerS) break;
    }
    setup.pairsPerS = Math.max(...setup.pairing.map((round) => round.pairsPerS));
    Object.assign(setup, await measureMessages(running, name, users, progress));
  });
  if (setup.error) {
    // Figures of a setup cut short would mislead: its table cells say it failed.
    Object.assign(setup, { samePair: null, crossPair: null });
    progress.note(`scale-out · ${name}: ${setup.error}`);
  }
  const pollErrors = users.reduce((sum, user) => sum + user.client.pollErrors, 0);
  setup.delivery = { ...deliveryOf(users), pollErrors };
  if (pollErrors > 0)
    progress.note(
      `scale-out · ${name}: ${pollErrors} wait_for_events calls failed (${users.find((u) => u.client.firstPollError)?.client.firstPollError})`,
    );
  await Promise.allSettled(users.map((user) => user.client.stop()));
  await Promise.allSettled(clients.map((client) => client.close()));
  await Promise.allSettled(servers.map((server) => stopChild(server.child, 5_000)));
  await (redis as TestRedis | null)?.stop();
  return setup;
}
type Setup = Awaited<ReturnType<typeof runSetup>>;

async function measureScaleOut(settings: Settings, progress: ProgressLine) {
  const startedAt = performance.now();
  const setups: Setup[] = [];
  for (const [i, name] of SCALE_OUT_SETUPS.entries()) setups.push(await runSetup(name, Math.max(1, i), settings, progress));
  const seconds = (performance.now() - startedAt) / 1000;
  progress.note(`scale-out: ${setups.length} setups started, measured and stopped in ${fixed(seconds, 1)} s`);
  const { cliPath: _, setupDeadlineMs: __, deadlineMs: ___, ...shown } = settings;
  return { ...shown, cores: cpus().length, setups, seconds };
}
type Figures = Awaited<ReturnType<typeof measureScaleOut>>;

function formatScaleOut(figures: Figures): string {
  const n = (value: number | null | undefined, digits = 0) => show(value, digits, '-');
  const row = (label: string, pick: (setup: Setup) => string) => [
    label,
    ...figures.setups.map((setup) => (setup.error && pick(setup) === '-' ? 'failed' : pick(setup))),
  ];
  /** A row of one round's figures: the one at `inFlight`, or the last (the most in flight). */
  const round = (label: string, pick: (round: Round) => string, inFlight?: number) =>
    row(label, (s) => {
      const r = inFlight === undefined ? s.pairing.at(-1) : s.pairing.find((x) => x.inFlight === inFlight);
      return r ? pick(r) : '-';
    });
  const body = [
    ...figures.inFlight.map((k) => round(`pairs/s, ${k} users in flight`, (r) => n(r.pairsPerS), k)),
    ...figures.inFlight.map((k) =>
      round(`enter_queue → paired p50 / p99 ms, ${k} in flight`, (r) => `${n(r.enterToFoundMs.p50)} / ${n(r.enterToFoundMs.p99)}`, k),
    ),
    round('at the most in flight: server cores', (r) => r.cores.servers.map((x) => n(x, 2)).join(' ')),
    round('  … redis-server / load generator / other work', ({ cores: c }) =>
      [c.redis === null ? 'n/a' : n(c.redis, 2), n(c.loadGenerator, 2), n(c.other, 2)].join(' / '),
    ),
    round(`  … machine busy (cores of ${figures.cores})`, (r) => n(r.cores.machine, 2)),
    round('  … server CPU ms per pair', (r) => n(r.serverCpuMsPerPair, 1)),
    row('CPU ms per message (same-process pairs)', (s) => n(s.samePair?.cpuMsPerMessage, 2)),
    row('CPU ms per message (cross-process pairs)', (s) => (s.processes < 2 ? 'n/a' : n(s.crossPair?.cpuMsPerMessage, 2))),
    row('redis-server CPU ms per message (same / cross)', (s) =>
      s.name === 'in-memory'
        ? 'n/a'
        : [s.samePair, ...(s.crossPair ? [s.crossPair] : [])].map((m) => n(m?.redisCpuMsPerMessage, 3)).join(' / '),
    ),
  ];
  return [
    `scale-out (real processes, sessionless clients by user_token; pairing rounds of ${figures.roundMs / 1000} s; ${n(figures.users)} users, ${n(figures.messagesPerPair)} messages per pair for CPU per message; ${figures.cores} cores)`,
    columns(['', ...SCALE_OUT_SETUPS], body),
    ...figures.setups.flatMap((s) => (s.error ? [`  ${s.name} failed: ${s.error}`] : [])),
  ].join('\n');
}

export async function scaleOutPart(cliPath: string, options: BenchOptions, progress: ProgressLine): Promise<PartOutcome> {
  const scaleOut = await measureScaleOut(scaleOutSettings(cliPath, options), progress);
  const failures = scaleOut.setups.flatMap((setup) => {
    const label = `scale-out (${setup.name})`;
    return [
      ...(setup.error ? [`${label} did not finish: ${setup.error}`] : []),
      ...pairFailures(label, setup.delivery, setup.error !== undefined),
    ];
  });
  const notes = [
    `Scale-out pairing: rounds of ${scaleOut.settleMs / 1000} s unmeasured, then ${scaleOut.roundMs / 1000} s measured, at ${scaleOut.inFlight.join(', then ')} users in flight (each from its enter_queue call until it knows its room; ` +
      `the ramp stops once a step raises pairs/s by less than ${Math.round((RAMP_GAIN - 1) * 100)} %); over several processes one pair in n has both members on one process, as with a random balancer; ` +
      `each round starts on keep-alive connections opened beforehand. CPU in cores over each window, from /proc: each server process, redis-server, the load generator (the bench's own process, every client) and the rest of the machine (${scaleOut.cores} cores shared by all).`,
    `Scale-out messages: after ${scaleOut.warmupMessagesPerPair} warm-up messages per pair, at most ${scaleOut.concurrency} pairs in flight, each send awaited; CPU per message is the server processes' CPU from /proc (summed), redis-server's apart. ` +
      'Pairs of one process and pairs across two alternate (same, cross, cross, same), so that warming code weighs on both alike.' +
      (options.quick
        ? ' Quick: short rounds and a few hundred messages on cold processes, so CPU per message is well above a full run’s and pairs/s noisier; compare the columns only.'
        : ''),
  ];
  return { json: { scaleOut }, tables: [formatScaleOut(scaleOut)], notes, failures };
}
