/**
 * The steps the relay and eras parts take on a server under test (a BenchTarget), each
 * with its progress line: open idle sessions and weigh them, pair, warm up, saturate,
 * load at a fixed rate; pair, load and release token clients of a kind; weigh waiting users.
 */
import type { BenchTarget, LoadSettings } from './benchTarget.js';
import { ERAS, type EraRun, type EraServer } from './eraComparison.js';
import type { KindRun, LoadFigures, PairFigures, UserMemoryFigures } from './figures.js';
import type { TokenClientKind } from './leanSession.js';
import type { BenchOptions } from './options.js';
import type { ProgressLine } from './progressLine.js';
import { KIND_LABELS } from './report.js';
import type { ServerRun } from './results.js';
import { brief as show } from './table.js';
import type { ClientKind } from './workerProtocol.js';

export const TOKEN_CLIENT_KINDS: TokenClientKind[] = ['fresh-session', 'no-session'];

/** Rounds to two significant digits, so a chosen rate reads as a round number. */
export const roundRate = (rate: number) => {
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(Math.max(1, rate))) - 1);
  return Math.max(1, Math.round(rate / scale) * scale);
};

/** A server under test, and what a step on it needs. */
export interface Step {
  target: BenchTarget;
  options: BenchOptions;
  settings: LoadSettings;
  progress: ProgressLine;
}

export async function loadPhase(
  step: Step,
  label: string,
  mode: 'saturate' | 'rate',
  rate: number,
  clients: ClientKind = 'session',
): Promise<LoadFigures> {
  const { target, settings, progress } = step;
  progress.begin(`${target.name} · ${label}`, 'msgs', { durationMs: settings.durationMs });
  const figures = await target.load(mode, rate, settings, (done) => progress.update(done), clients);
  progress.end(
    `${show(figures.throughput)} msgs/s, p50 ${show(figures.latencyMs.p50, 2)} ms, p99 ${show(figures.latencyMs.p99, 2)} ms, server ${show(figures.serverCores, 2)} cores, ` +
      `${show(figures.toolCallsPerSecond)} tool calls/s` +
      (figures.lost + figures.duplicated + figures.outOfOrder > 0
        ? `, LOST ${figures.lost} DUP ${figures.duplicated} OOO ${figures.outOfOrder}`
        : '') +
      (figures.refused + figures.errors > 0 ? `, ${figures.refused + figures.errors} sends failed (${figures.firstError})` : ''),
  );
  return figures;
}

/** For one server: idle sessions, pairs, warm-up, saturation. */
export async function measure(step: Step): Promise<ServerRun> {
  const { target, options, progress } = step;
  progress.begin(`${target.name} · open ${show(options.sessions)} idle sessions`, 'sessions', { total: options.sessions });
  const { open, memory } = await target.openIdle(options.warmupSessions, options.sessions, options.quick ? 500 : 3000, (done) =>
    progress.update(done),
  );
  if (open.failed > 0) progress.note(`  ${open.failed} opens failed: ${open.firstError}`);
  progress.end(
    `${show(open.opensPerSecond)} opens/s, ${show(memory.rssPerSessionKiB * 1.024, 1)} KB RSS per session, ${show(open.liveStreams)} live streams`,
  );

  const pairs = Math.min(options.pairs, Math.floor(target.openSessions / 2));
  const { pair, warmup, saturate } = await pairAndSaturate(step, pairs, 'session');
  const health = await target.health();
  const serverSessions = typeof health.sessions === 'number' ? health.sessions : Number.POSITIVE_INFINITY;
  // Held at once: streams still live after saturation, as both sides count them.
  return {
    figures: { name: target.name, open, memory, maxConcurrentSessions: Math.min(saturate.liveStreams, serverSessions), pair, saturate },
    warmup,
  };
}

/** Pairs `pairs` pairs of `clients`, warms up, saturates. */
async function pairAndSaturate(
  step: Step,
  pairs: number,
  clients: ClientKind,
): Promise<{ pair: PairFigures; warmup: LoadFigures; saturate: LoadFigures }> {
  const { target, options, settings, progress } = step;
  const kind = clients === 'session' ? '' : `${KIND_LABELS[clients]} · `;
  progress.begin(`${target.name} · ${kind}pair ${show(pairs)}`, 'pairs', { total: pairs });
  const pair = await target.pair(pairs, (done) => progress.update(done), clients);
  progress.end(`${show(pair.pairsPerSecond)} pairs/s${pair.firstError ? ` (${pair.failed} failed: ${pair.firstError})` : ''}`);
  if (pair.pairs === 0) throw new Error(`${target.name}: no ${clients} pairs formed: ${pair.firstError}`);
  const warmup = await loadPhase(
    { ...step, settings: { ...settings, durationMs: options.quick ? 500 : 2000 } },
    `${kind}warm-up`,
    'saturate',
    0,
    clients,
  );
  const saturate = await loadPhase(step, `${kind}saturate`, 'saturate', 0, clients);
  return { pair, warmup, saturate };
}

/** One kind of token client: pair, warm up, saturate, then stop its polls. */
export async function measureKind(step: Step, kind: TokenClientKind): Promise<KindRun> {
  const { target, options, progress } = step;
  const run = await pairAndSaturate(step, options.kindPairs, kind);
  const release = await target.release(kind);
  if (release.pollErrors > 0)
    progress.note(`  ${KIND_LABELS[kind]}: ${release.pollErrors} wait_for_events calls failed: ${release.firstError}`);
  return { kind, ...run, release };
}

/**
 * For one server: each era's pairs, warm-up and saturation, then each era's users
 * weighed as they wait — after the loads, so that a server started afresh is weighed
 * warm, and so that no load follows the release of thousands of held polls (whose
 * teardown shows in a load's latency tail, whichever the server).
 */
export async function measureEras(step: Step, server: EraServer): Promise<EraRun[]> {
  const loads: KindRun[] = [];
  for (const { kind } of ERAS) loads.push(await measureKind(step, kind));
  const runs: EraRun[] = [];
  for (const load of loads) runs.push({ server, kind: load.kind, users: await weighUsers(step, load.kind), load });
  return runs;
}

/** Weighs `options.users` users of `kind` as they wait on `target`. */
async function weighUsers({ target, options, progress }: Step, kind: TokenClientKind): Promise<UserMemoryFigures> {
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
