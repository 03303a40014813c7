/**
 * The scale-out part's figures as bench/results.json holds them, its settings for `--quick`
 * and a full run, what limited pairs/s in a setup (saturationOf), and its table, notes and
 * failures. The measuring is scaleOut.ts.
 */
import type { PairDelivery } from './chatter.js';
import type { Percentiles } from './figures.js';
import type { BenchOptions } from './options.js';
import { columns, show } from './table.js';

export const SCALE_OUT_SETUPS = ['in-memory', '1 process on Redis', '2 processes on Redis', '3 processes on Redis'] as const;
export type ScaleOutSetupName = (typeof SCALE_OUT_SETUPS)[number];
export const PROCESSES: Record<ScaleOutSetupName, number> = {
  'in-memory': 1,
  '1 process on Redis': 1,
  '2 processes on Redis': 2,
  '3 processes on Redis': 3,
};

/**
 * Per setup: `users` paired for the messages (users / 2 pairs, each sending `messagesPerPair`
 * after `warmupMessagesPerPair`), `concurrency` pairs sending at once (and enter_queue calls
 * in flight as they pair); pairing rounds of `roundMs` at each of `inFlight` users in flight,
 * after `warmupRoundMs` unmeasured, each making at most `maxRoundUsers`; deadlines of one
 * setup and of the part.
 */
export interface ScaleOutSettings {
  cliPath: string;
  users: number;
  messagesPerPair: number;
  warmupMessagesPerPair: number;
  messageSize: number;
  concurrency: number;
  inFlight: number[];
  roundMs: number;
  warmupRoundMs: number;
  maxRoundUsers: number;
  setupDeadlineMs: number;
  deadlineMs: number;
}

export function scaleOutSettings(cliPath: string, options: Pick<BenchOptions, 'quick' | 'messageSize'>): ScaleOutSettings {
  const setupDeadlineMs = (options.quick ? 45 : 300) * 1000;
  const { quick } = options;
  return {
    cliPath,
    users: quick ? 40 : 400,
    messagesPerPair: quick ? 12 : 100,
    warmupMessagesPerPair: quick ? 2 : 10,
    messageSize: options.messageSize,
    concurrency: 16,
    inFlight: quick ? [16, 64, 256] : [16, 64, 256, 1024],
    roundMs: quick ? 1_500 : 5_000,
    warmupRoundMs: quick ? 500 : 2_000,
    maxRoundUsers: 20_000,
    setupDeadlineMs,
    deadlineMs: SCALE_OUT_SETUPS.length * setupDeadlineMs + 30_000,
  };
}

/** Messages of one kind of pair (same-process or cross-process); CPU of the mcp-chat processes summed, redis-server's apart (null in memory). */
export interface ScaleOutMessages {
  pairs: number;
  messages: number;
  wallSeconds: number;
  messagesPerS: number;
  serverCpuMs: number;
  cpuMsPerMessage: number;
  redisCpuMsPerMessage: number | null;
}

/** Every message checked (pairDelivery); unexpected: events other than chatroom.found and message.received. */
export type ScaleOutDelivery = Omit<PairDelivery, 'firstError'> & { unexpected: number; pollErrors: number; firstError?: string };

/** CPU over a round's window, in cores: each server (`holder`: which held the queue, null when unknown), redis-server, this process, the machine, and the machine less all those. */
export interface ScaleOutCores {
  servers: number[];
  holder: number | null;
  redis: number | null;
  loadGenerator: number;
  machine: number;
  other: number;
}

/**
 * One pairing round: `users` entered within the window of `seconds`, `pairs` completed in it;
 * latency from enter_queue to knowing, answered `matched` or told by wait_for_events; and,
 * sampled every 250 ms, how many in flight awaited enter_queue's answer or chatroom.found.
 */
export interface ScaleOutPairingRound {
  inFlight: number;
  users: number;
  pairs: number;
  seconds: number;
  pairsPerS: number;
  enterToFoundMs: Percentiles;
  answeredMatched: number;
  foundByWait: number;
  cores: ScaleOutCores;
  serverCpuMsPerPair: number | null;
  waitingFor: { samples: number; answer: number; found: number };
}

/** One setup: the highest pairs/s of its rounds and what limited it; `error`, why it could not finish. */
export interface ScaleOutSetup {
  name: ScaleOutSetupName;
  processes: number;
  pairsPerS: number | null;
  pairing: ScaleOutPairingRound[];
  saturation: string | null;
  users: number;
  pairs: number;
  samePair: ScaleOutMessages | null;
  crossPair: ScaleOutMessages | null;
  delivery: ScaleOutDelivery;
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
  cores: number;
  redisVersion: string | null;
  setups: ScaleOutSetup[];
  seconds: number;
}

/** A step up in flight that raises pairs/s by less than this is no rise. */
export const RAMP_GAIN = 1.1;
/** A process at this many cores or more is CPU-bound (one JavaScript thread; GC threads add a little). */
const BUSY_CORES = 0.85;
/** The machine is full at this share of its cores busy. */
const MACHINE_FULL = 0.9;
/** On Redis, the queue holder is where users wait when this share of those in flight wait for enter_queue's answer. */
const HOLDER_SHARE = 0.5;

const fixed = (value: number, digits: number) => value.toFixed(digits);

/** The cores of a round, one phrase: `servers 0.71 (holder) / 0.30 / 0.28, redis 0.02, load generator 0.15, other 0.9 of 2 cores`. */
export function coresPhrase(cores: ScaleOutCores, machineCores: number): string {
  const servers = cores.servers
    .map((c, i) => `${fixed(c, 2)}${cores.servers.length > 1 && i === cores.holder ? ' (holder)' : ''}`)
    .join(' / ');
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
      who:
        cores.servers.length === 1
          ? 'the server process (which also runs the queue)'
          : i === holderIndex
            ? `the queue holder (mcp-chat ${i + 1})`
            : 'the server processes',
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
    if (d.sendErrors > 0 && !setup.error)
      failures.push(`${label}: ${d.sendErrors} send_message calls failed (${d.firstError ?? 'no error given'})`);
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
      (quick
        ? ' Quick: short rounds and a few hundred messages on cold processes, so CPU per message is well above a full run’s and pairs/s noisier; compare the columns only.'
        : ''),
  ];
}

export function formatScaleOut(figures: ScaleOutFigures): string {
  const n = (value: number | null | undefined, digits = 0) => show(value, digits, '-');
  const cells = (pick: (setup: ScaleOutSetup) => string) =>
    SCALE_OUT_SETUPS.map((name) => {
      const setup = figures.setups.find((s) => s.name === name);
      return !setup ? '-' : setup.error && pick(setup) === '-' ? 'failed' : pick(setup);
    });
  const row = (label: string, pick: (setup: ScaleOutSetup) => string) => [label, ...cells(pick)];
  /** A row of the last round's figures (the most in flight). */
  const atTop = (label: string, pick: (round: ScaleOutPairingRound) => string) =>
    row(label, (setup) => {
      const round = setup.pairing.at(-1);
      return round ? pick(round) : '-';
    });
  /** A row per number in flight, `#` in `label` standing for it. */
  const byInFlight = (label: string, pick: (round: ScaleOutPairingRound) => string) =>
    figures.inFlight.map((inFlight) =>
      row(label.replace('#', String(inFlight)), (s) => {
        const round = s.pairing.find((r) => r.inFlight === inFlight);
        return round ? pick(round) : '-';
      }),
    );
  const redisCell = (setup: ScaleOutSetup) =>
    setup.name === 'in-memory'
      ? 'n/a'
      : [setup.samePair, ...(setup.crossPair ? [setup.crossPair] : [])].map((m) => n(m?.redisCpuMsPerMessage, 3)).join(' / ');
  const body = [
    ...byInFlight('pairs/s, # users in flight', (r) => n(r.pairsPerS)),
    ...byInFlight('enter_queue → paired p50 / p99 ms, # in flight', (r) => `${n(r.enterToFoundMs.p50)} / ${n(r.enterToFoundMs.p99)}`),
    atTop('at the most in flight: awaiting answer / found', (r) => `${n(r.waitingFor.answer)} / ${n(r.waitingFor.found)}`),
    atTop('  … cores: servers (h: queue holder)', ({ cores: c }) =>
      c.servers.map((x, i) => `${n(x, 2)}${c.servers.length > 1 && i === c.holder ? 'h' : ''}`).join(' '),
    ),
    atTop('  … redis-server / load generator / other work', ({ cores: c }) =>
      [c.redis === null ? 'n/a' : n(c.redis, 2), n(c.loadGenerator, 2), n(c.other, 2)].join(' / '),
    ),
    atTop('  … server CPU ms per pair', (r) => n(r.serverCpuMsPerPair, 1)),
    row('CPU ms per message (same-process pairs)', (s) => n(s.samePair?.cpuMsPerMessage, 2)),
    row('CPU ms per message (cross-process pairs)', (s) => (s.processes < 2 ? 'n/a' : n(s.crossPair?.cpuMsPerMessage, 2))),
    row('redis-server CPU ms per message (same / cross)', redisCell),
  ];
  return [
    `scale-out (real processes, sessionless clients by user_token; pairing rounds of ${figures.roundSeconds} s; ${n(figures.usersPerSetup)} users, ${n(figures.messagesPerPair)} messages per pair for CPU per message; ${figures.cores} cores)`,
    columns(['', ...SCALE_OUT_SETUPS], body),
    '  what limited pairs/s:',
    ...figures.setups.map((setup) => `    ${setup.name}: ${setup.saturation ?? (setup.error ? `failed (${setup.error})` : 'unknown')}`),
  ].join('\n');
}
