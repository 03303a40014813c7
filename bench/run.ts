/**
 * `npm run bench`: mcp-chat (production build) against a raw relay floor on the same
 * wire, driven by the same lean client from separate load-generator processes.
 *
 *   1. floor: open idle sessions (opens/s, RSS per session), pair, warm up, saturate.
 *   2. mcp-chat: an SDK-client cross-check of the lean client, then the same steps.
 *   3. both at one fixed offered rate below saturation, for latency.
 *   4. mcp-chat with clients that keep no session (a fresh session per call; none),
 *      chatting through wait_for_events: pair, warm up, saturate, each kind in turn.
 *   5. stop the workers, then each server, timing its graceful shutdown.
 *   6. per era, what a user would write instead: mcp-chat, the v2 peer (v2Peer.ts) and
 *      the floor, each started afresh and measured alone with the era's client that
 *      keeps no session (2025: no session; 2026-07-28: the stateless revision) —
 *      pair, warm up and saturate for each era, then weigh each era's waiting users
 *      — then stopped.
 *   7. matching (matching.ts): the queue chart alone on a simulated clock, joins into
 *      lines of 100, 1,000 and 10,000 (2,000 with --quick) against an empty line, and a
 *      crowd with random preferences against arrivals without preferences.
 *   8. scale-out (scaleOut.ts): the real server in memory, on a Redis of the run's own
 *      (redisServer.ts) and as two and three processes on it, with sessionless clients —
 *      pairs per second and enter→paired p50/p99 at rising users in flight, what
 *      saturated, and server CPU per message for pairs on one process and across two;
 *      `--only scale-out` runs this part alone.
 *   9. under attack (underAttack.ts): a pair's send_message latency on a fresh mcp-chat,
 *      idle and then while one other address holds its full allowance (listens, held
 *      waits, sessions with streams); `--only under-attack` runs this part alone.
 *
 * Prints tables (progress on stderr meanwhile) and writes bench/results.json. Speed is
 * reported, never asserted: it exits 1 when delivery was wrong (lost, duplicated, out of
 * order, misrouted), the lean client disagreed with the SDK client, or the run could not
 * finish (a server died); 2 on a bad flag; 3 when the run overstays its deadline.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BenchTarget, type LoadSettings, type TargetSpec } from './benchTarget.js';
import { ERA_SERVERS, ERAS, eraCaveats, formatEraTable, type EraRun, type EraServer } from './eraComparison.js';
import type { LoadFigures, PairFigures, UserMemoryFigures } from './figures.js';
import { mcpChatFlags } from './mcpChatFlags.js';
import { USAGE, UsageError, readOptions, type BenchOptions } from './options.js';
import { ProgressLine } from './progressLine.js';
import { formatMatching, measureMatching } from './matching.js';
import { formatScaleOut, measureScaleOut, scaleOutAlone, scaleOutCaveats, scaleOutFailures, scaleOutSettings } from './scaleOut.js';
import { formatUnderAttack, measureUnderAttack, underAttackAlone, underAttackCaveats, underAttackFailures, underAttackSettings } from './underAttack.js';
import { formatKindTable, formatTable } from './report.js';
import { KIND_LABELS, assembleResults, caveats, deliveryFailures, type KindRun, type ServerRun } from './results.js';
import { sdkCrossCheck } from './sdkCrossCheck.js';
import type { TokenClientKind } from './tokenClient.js';
import type { ClientKind } from './workerProtocol.js';

const TOKEN_CLIENT_KINDS: TokenClientKind[] = ['fresh-session', 'no-session'];

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const RESULTS = here('../../bench/results.json');
const PROFILES = here('../../bench/profiles');

const progress = new ProgressLine();
const show = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

function profiled(options: BenchOptions, args: string[]): string[] {
  return options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, ...args] : args;
}

/** A server to start: `node [--cpu-prof …] --expose-gc --import forcedGc.js <args>`, taking a full GC on SIGUSR2. */
function spec(options: BenchOptions, name: string, args: string[]): TargetSpec {
  return { name, args: profiled(options, ['--expose-gc', '--import', here('./forcedGc.js'), ...args]), workerExecArgv: profiled(options, []), gcOnSignal: true };
}

/** Rounds to two significant digits, so a chosen rate reads as a round number. */
const roundRate = (rate: number) => {
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(Math.max(1, rate))) - 1);
  return Math.max(1, Math.round(rate / scale) * scale);
};

async function loadPhase(
  target: BenchTarget,
  label: string,
  mode: 'saturate' | 'rate',
  rate: number,
  settings: LoadSettings,
  clients: ClientKind = 'session',
): Promise<LoadFigures> {
  progress.begin(`${target.name} · ${label}`, 'msgs', { durationMs: settings.durationMs });
  const figures = await target.load(mode, rate, settings, (done) => progress.update(done), clients);
  progress.end(
    `${show(figures.throughput)} msgs/s, p50 ${show(figures.latencyMs.p50, 2)} ms, p99 ${show(figures.latencyMs.p99, 2)} ms, server ${show(figures.serverCores, 2)} cores, ` +
      `${show(figures.toolCallsPerSecond)} tool calls/s` +
      (figures.lost + figures.duplicated + figures.outOfOrder > 0 ? `, LOST ${figures.lost} DUP ${figures.duplicated} OOO ${figures.outOfOrder}` : '') +
      (figures.refused + figures.errors > 0 ? `, ${figures.refused + figures.errors} sends failed (${figures.firstError})` : ''),
  );
  return figures;
}

/** Steps 1 and 2 for one server: idle sessions, pairs, warm-up, saturation. */
async function measure(target: BenchTarget, options: BenchOptions, settings: LoadSettings): Promise<ServerRun> {
  progress.begin(`${target.name} · open ${show(options.sessions)} idle sessions`, 'sessions', { total: options.sessions });
  const { open, memory } = await target.openIdle(options.warmupSessions, options.sessions, options.quick ? 500 : 3000, (done) => progress.update(done));
  if (open.failed > 0) progress.note(`  ${open.failed} opens failed: ${open.firstError}`);
  progress.end(`${show(open.opensPerSecond)} opens/s, ${show(memory.rssPerSessionKiB * 1.024, 1)} KB RSS per session, ${show(open.liveStreams)} live streams`);

  const pairs = Math.min(options.pairs, Math.floor(target.openSessions / 2));
  const { pair, warmup, saturate } = await pairAndSaturate(target, pairs, 'session', options, settings);
  const health = await target.health();
  const serverSessions = typeof health.sessions === 'number' ? health.sessions : Number.POSITIVE_INFINITY;
  return {
    figures: {
      name: target.name,
      open,
      memory,
      // Held at once: streams still live after saturation, as both sides count them.
      maxConcurrentSessions: Math.min(saturate.liveStreams, serverSessions),
      pair,
      saturate,
    },
    warmup,
  };
}

/** Pairs `pairs` pairs of `clients`, warms up, saturates. */
async function pairAndSaturate(
  target: BenchTarget,
  pairs: number,
  clients: ClientKind,
  options: BenchOptions,
  settings: LoadSettings,
): Promise<{ pair: PairFigures; warmup: LoadFigures; saturate: LoadFigures }> {
  const kind = clients === 'session' ? '' : `${KIND_LABELS[clients]} · `;
  progress.begin(`${target.name} · ${kind}pair ${show(pairs)}`, 'pairs', { total: pairs });
  const pair = await target.pair(pairs, (done) => progress.update(done), clients);
  progress.end(`${show(pair.pairsPerSecond)} pairs/s${pair.firstError ? ` (${pair.failed} failed: ${pair.firstError})` : ''}`);
  if (pair.pairs === 0) throw new Error(`${target.name}: no ${clients} pairs formed: ${pair.firstError}`);
  const warmup = await loadPhase(target, `${kind}warm-up`, 'saturate', 0, { ...settings, durationMs: options.quick ? 500 : 2000 }, clients);
  const saturate = await loadPhase(target, `${kind}saturate`, 'saturate', 0, settings, clients);
  return { pair, warmup, saturate };
}

/** Step 4 for one kind of token client: pair, warm up, saturate, then stop its polls. */
async function measureKind(target: BenchTarget, kind: TokenClientKind, options: BenchOptions, settings: LoadSettings): Promise<KindRun> {
  const run = await pairAndSaturate(target, options.kindPairs, kind, options, settings);
  const release = await target.release(kind);
  if (release.pollErrors > 0) progress.note(`  ${KIND_LABELS[kind]}: ${release.pollErrors} wait_for_events calls failed: ${release.firstError}`);
  return { kind, ...run, release };
}

/**
 * Step 6 for one server: each era's pairs, warm-up and saturation, then each era's users
 * weighed as they wait — after the loads, so that a server started afresh is weighed
 * warm, and so that no load follows the release of thousands of held polls (whose
 * teardown shows in a load's latency tail, whichever the server).
 */
async function measureEras(target: BenchTarget, server: EraServer, options: BenchOptions, settings: LoadSettings): Promise<EraRun[]> {
  const loads: KindRun[] = [];
  for (const { kind } of ERAS) loads.push(await measureKind(target, kind, options, settings));
  const runs: EraRun[] = [];
  for (const load of loads) runs.push({ server, kind: load.kind, users: await weighUsers(target, load.kind, options), load });
  return runs;
}

/** Weighs `options.users` users of `kind` as they wait on `target`, with a progress line. */
async function weighUsers(target: BenchTarget, kind: TokenClientKind, options: BenchOptions): Promise<UserMemoryFigures> {
  progress.begin(`${target.name} · ${KIND_LABELS[kind]} · enter ${show(options.users)} waiting users`, 'users', { total: options.users });
  // Each weighing follows a forced full GC, so a short settle suffices.
  const users = await target.weighUsers(kind, options.users, options.quick ? 300 : 2000, (done) => progress.update(done));
  const heap = users.heapPerUserKiB === null ? 'n/a' : show(users.heapPerUserKiB * 1.024, 1);
  progress.end(
    `${show(users.usersPerSecond)} users/s, ${show(users.rssPerUserKiB * 1.024, 1)} KB RSS and ${heap} KB heap per user` +
      (users.failed > 0 ? ` (${users.failed} failed: ${users.firstError})` : ''),
  );
  return users;
}

async function main(): Promise<number> {
  let options;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const underAttackRun = underAttackSettings(here('../src/cli.js'), options);
  if (options.only === 'under-attack') return underAttackAlone(underAttackRun, options.quick, progress, RESULTS);
  const scaleOutRun = scaleOutSettings(here('../src/cli.js'), options);
  if (options.only === 'scale-out') return scaleOutAlone(scaleOutRun, options.quick, progress, RESULTS);
  const startedAt = new Date();
  // Generous for what was asked — six load phases, two per client kind and two per era on
  // each of three servers, opening sessions and entering the users weighed at ≥ 50/s on
  // each server — but finite, whatever happens.
  const sessionsOpened = options.sessions + options.warmupSessions;
  const loadPhases = 6 + 2 * TOKEN_CLIENT_KINDS.length + 2 * ERA_SERVERS.length * ERAS.length;
  const usersEntered = ERA_SERVERS.length * ERAS.length * options.users;
  const runDeadlineS = Math.round(
    120 + loadPhases * (Math.max(options.duration, options.kindDuration) + 10) + (2 * sessionsOpened + usersEntered) / 50 + scaleOutRun.deadlineMs / 1000 + underAttackRun.deadlineMs / 1000,
  );
  setTimeout(() => {
    process.stderr.write(`\nbench: still running after ${runDeadlineS} s; giving up (children are killed)\n`);
    process.exit(3);
  }, runDeadlineS * 1000).unref();

  const notes: string[] = [];
  if (options.capNote) {
    notes.push(options.capNote);
    progress.note(`bench: ${options.capNote}`);
  }
  progress.note(
    `bench: ${options.quick ? 'quick, ' : ''}${show(options.sessions)} idle sessions (+${options.warmupSessions} warm-up), ${show(options.pairs)} pairs (${show(options.kindPairs)} of each client kind), ` +
      `${options.duration} s phases, ${options.workers} load workers per server, ${options.messageSize}-char messages, ${cpus().length} cores`,
  );
  const settings: LoadSettings = { durationMs: options.duration * 1000, maxMessages: options.messages, messageSize: options.messageSize, drainMs: 5000 };
  const floorSpec = spec(options, 'floor', [here('./relayBaseline.js'), '--port', '0']);
  const mcpFlags = mcpChatFlags(here('../src/cli.js'), options.sessions + options.warmupSessions + 2);
  if (mcpFlags.note) notes.push(mcpFlags.note);
  const mcpSpec = spec(options, 'mcp-chat', [here('../src/cli.js'), '--port', '0', ...mcpFlags.args, ...options.serverArgs]);
  const eraSpecs: Record<EraServer, TargetSpec> = { 'mcp-chat': mcpSpec, 'v2 peer': spec(options, 'v2 peer', [here('./v2Peer.js'), '--port', '0']), floor: floorSpec };

  const targets: BenchTarget[] = [];
  try {
    const floor = await BenchTarget.start(floorSpec, options.workers);
    targets.push(floor);
    const floorRun = await measure(floor, options, settings);

    const mcp = await BenchTarget.start(mcpSpec, options.workers);
    targets.push(mcp);
    progress.begin('mcp-chat · SDK client cross-check', 'checks', { total: 1 });
    const crossCheck = await sdkCrossCheck(mcp.url);
    progress.end(crossCheck.ok ? `lean client agrees with the SDK client on ${crossCheck.compared} fields` : `MISMATCH: ${crossCheck.mismatches.join('; ')}`);
    const mcpRun = await measure(mcp, options, settings);

    const floorSat = floorRun.figures.saturate.throughput;
    const mcpSat = mcpRun.figures.saturate.throughput;
    // Half of the slower server's saturation: a load both can carry, so that latency is
    // compared below saturation (once mcp-chat keeps up with the floor, half the floor's).
    const rate = options.rate ?? roundRate(0.5 * Math.min(floorSat, mcpSat));
    const chosenBy = options.rate !== null ? '--rate' : floorSat <= mcpSat ? 'half the floor’s saturation throughput' : 'half of mcp-chat’s saturation throughput (below the floor’s)';
    progress.note(`bench: latency phases at ${show(rate)} msgs/s (${chosenBy})`);
    floorRun.figures.rate = await loadPhase(floor, `${show(rate)} msgs/s`, 'rate', rate, settings);
    mcpRun.figures.rate = await loadPhase(mcp, `${show(rate)} msgs/s`, 'rate', rate, settings);
    const kinds: KindRun[] = [];
    const kindSettings: LoadSettings = { ...settings, durationMs: options.kindDuration * 1000 };
    for (const kind of TOKEN_CLIENT_KINDS) kinds.push(await measureKind(mcp, kind, options, kindSettings));

    progress.begin('stop the load workers, then each server (SIGTERM)', 'servers', { total: 2 });
    targets.length = 0;
    floorRun.shutdown = await floor.stop();
    mcpRun.shutdown = await mcp.stop();
    progress.end(`floor in ${show(floorRun.shutdown.seconds, 1)} s, mcp-chat in ${show(mcpRun.shutdown.seconds, 1)} s${mcpRun.shutdown.killed ? ' (killed)' : ''}`);

    // Each server afresh and alone, so that none is weighed or loaded beside another's
    // sessions, or beside what steps 1–4 left in it.
    const eras: EraRun[] = [];
    for (const server of ERA_SERVERS) {
      const target = await BenchTarget.start(eraSpecs[server], options.workers);
      targets.push(target);
      eras.push(...(await measureEras(target, server, options, kindSettings)));
      targets.length = 0;
      await target.stop();
    }

    const matchingUsers = options.quick ? 2_000 : 10_000;
    progress.begin(`matching · the queue chart, ${show(matchingUsers)} users`, 'runs', { total: 1 });
    const matching = measureMatching(matchingUsers);
    progress.end(`${show(matching.longLine.joinsPerS)} joins/s into a line of ${show(matchingUsers)}`);

    const scaleOut = await measureScaleOut(scaleOutRun, progress);
    const underAttack = await measureUnderAttack(underAttackRun, progress);
    notes.push(...underAttackCaveats(underAttack, options.quick));

    notes.push(...caveats(floorRun, mcpRun, rate, kinds), ...eraCaveats(eras, options.users, options.quick), ...scaleOutCaveats(scaleOut, options.quick));
    const { table, kindTable, json } = assembleResults({ startedAt, options, rate, chosenBy, crossCheck, floor: floorRun, mcp: mcpRun, kinds, eras, notes });
    writeFileSync(RESULTS, `${JSON.stringify({ ...json, matching, scaleOut, underAttack }, null, 2)}\n`);
    process.stdout.write(
      `\n${formatTable(table)}\n\n${formatKindTable(kindTable)}\n\n${formatEraTable(ERAS, eras, options.kindPairs, options.users)}\n\n${formatMatching(matching)}\n\n${formatScaleOut(scaleOut)}\n\n${formatUnderAttack(underAttack)}\n\n`,
    );
    for (const note of notes) process.stdout.write(`note: ${note}\n`);
    process.stdout.write(`results: ${RESULTS}${options.cpuProf ? `; CPU profiles: ${PROFILES}` : ''}\n`);
    const failures = [
      ...(crossCheck.ok ? [] : ['the lean client disagreed with the SDK client (or the cross-check failed)']),
      ...deliveryFailures(floorRun, mcpRun, kinds, eras),
      ...scaleOutFailures(scaleOut),
      ...underAttackFailures(underAttack),
    ];
    for (const failure of failures) process.stderr.write(`bench: FAILED: ${failure}\n`);
    return failures.length === 0 ? 0 : 1;
  } catch (error) {
    // A server that died explains the error better than the error does.
    for (const target of targets) {
      const diagnosis = target.diagnose();
      if (diagnosis) progress.note(`bench: ${diagnosis}`);
    }
    throw error;
  } finally {
    // Only on the way out of a failed run: a finished run has stopped them already.
    if (targets.length > 0) progress.note('bench: stopping servers and workers');
    await Promise.allSettled(targets.map((target) => target.stop()));
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`\nbench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
