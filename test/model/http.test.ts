/**
 * Model-based tests, second replay: every path generated from the charts, run against a
 * real mcp-chat on a free loopback port through real clients — MCP SDK clients (on
 * Streamable HTTP, and on the legacy HTTP+SSE transport), a per-call client that opens a
 * session for every call and, where presence needs one link at a time, plain fetch;
 * each path has a server of its own, so that paths run side by side.
 *
 * Then coverage that cannot rot: every transition of every machine in machines/, read
 * from the machines' definitions, must have been taken by the servers' actors during
 * these replays, as their inspection events report — or be listed as pending, with why.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadMachines } from '../../scripts/machineCatalog.js';
import { CHARTS } from './charts.js';
import { coverageLine, coverageOf, TransitionRecorder } from './coverage.js';
import { httpWorld } from './httpWorld.js';
import { pendingTransitions, replay, specPaths, timersOf } from './replay.js';
import type { Timers } from './world.js';

/**
 * The presence timers: short enough to wait out, long enough for a client to take a
 * step (open its stream, come back) before the shortest, the pairable time, runs out.
 * The page grace: long enough for three steps (close the page, drop the stream, come
 * back) with every path running at once.
 * The matching timers, for the chart that waits them out: short enough to wait out,
 * long next to the few steps its paths take between a timer's start and the wait.
 */
const TIMERS: Timers = { pairableMs: 400, idleMs: 1_000, graceMs: 600, pageGraceMs: 1_500, interestWaitMs: 2_000, rematchAfterMs: 2_000 };

const recorder = new TransitionRecorder();
const planned = CHARTS.map((spec) => ({ spec, paths: specPaths(spec) }));
const total = planned.reduce((sum, { paths }) => sum + paths.length, 0);
let replayed = 0;
let failed = 0;

describe.concurrent.each(planned.map(({ spec, paths }) => [spec.name, spec, paths] as const))('%s chart, over HTTP', (_, spec, paths) => {
  it.each(paths.map((path) => [path.story, path] as const))('%s', async (_story, path) => {
    const world = await httpWorld({ timers: timersOf(spec, TIMERS), inspect: recorder.see });
    try {
      await replay(spec, path, world);
      replayed += 1;
    } catch (error) {
      failed += 1;
      throw error;
    } finally {
      await world.close();
    }
  });
});

describe('transition coverage of the end-to-end replay', () => {
  const lines: string[] = [];
  afterAll(() => {
    if (lines.length > 0) console.log(`End-to-end transition coverage:\n  ${lines.join('\n  ')}`);
  });

  it('takes every transition of every machine in machines/ (or says why it cannot yet)', async (context) => {
    if (replayed + failed < total) context.skip(`only ${replayed + failed} of ${total} paths ran`);
    expect(failed, 'paths that failed (coverage counts only a complete replay)').toBe(0);
    const pending = pendingTransitions(CHARTS);
    const machines = await loadMachines();
    const report = machines.map((machine) => coverageOf(machine, recorder, pending.get(machine.id) ?? new Map()));
    lines.push(...report.map(coverageLine));
    expect(
      report.filter((c) => !CHARTS.some((spec) => spec.machine.id === c.machine)).map((c) => c.machine),
      'machines with no chart spec in test/model/charts.ts',
    ).toEqual([]);
    expect(
      report.flatMap((c) => c.missing.map((key) => `${c.machine}: ${key}`)),
      'transitions no path drove end to end: teach test/model how a client causes them',
    ).toEqual([]);
    expect(
      report.flatMap((c) => c.stalePending.map((key) => `${c.machine}: ${key}`)),
      'transitions listed as pending that the replay now drives: drop them from the list',
    ).toEqual([]);
  });
});
