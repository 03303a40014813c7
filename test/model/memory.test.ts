/**
 * Model-based tests, first replay: every path generated from the charts, run against
 * the actor system in memory (the in-memory broker, its queue and rooms, and a user
 * actor per person), checking at each step what people are told and what the actors hold.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { roomMachine } from '../../machines/room.js';
import { chartEdges, pathEdges } from './chartPaths.js';
import { CHARTS } from './charts.js';
import { coverageOf, TransitionRecorder } from './coverage.js';
import { memoryWorld } from './memoryWorld.js';
import { assertDriversMatch, replay, specModel, specPaths, timersOf } from './replay.js';
import { roomChart } from './roomChart.js';
import type { Timers } from './world.js';

/**
 * The timers in memory: short, since nothing here is slow. The presence timers: the
 * pairable time the shortest. The matching timers, for the chart that waits them out:
 * long next to the few steps its paths take between a timer's start and the wait.
 */
const TIMERS: Timers = { pairableMs: 100, idleMs: 250, graceMs: 150, pageGraceMs: 150, interestWaitMs: 400, rematchAfterMs: 400 };

describe.each(CHARTS.map((spec) => [spec.name, spec] as const))('%s chart', (_, spec) => {
  it(`has a driver for every event ${spec.machine.id} takes`, () => {
    expect(() => assertDriversMatch(spec)).not.toThrow();
  });

  const paths = specPaths(spec);

  // A spec that walks only part of its model (the 3- and 4-user queues) makes no claim
  // here; its chart's transitions are still checked by the coverage test over HTTP.
  if (spec.model.everyEdge !== false) {
    it('its paths take every edge of its model', () => {
      const model = specModel(spec);
      const taken = new Set(paths.flatMap((path) => pathEdges(model, path)));
      expect(chartEdges(model).filter((edge) => !taken.has(edge))).toEqual([]);
    });
  }

  describe.concurrent('replayed in memory', () => {
    it.each(paths.map((path) => [path.story, path] as const))('%s', async (_story, path) => {
      const world = memoryWorld(timersOf(spec, TIMERS));
      try {
        await replay(spec, path, world);
      } finally {
        await world.close();
      }
    });
  });
});

describe('a chart that grows a transition the replay was not taught', () => {
  // The room chart with one more event: what a change to machines/room.ts could add.
  const config = roomMachine.config as unknown as { states: { open: { on: Record<string, unknown> } } };
  const grown = createMachine({
    ...(roomMachine.config as object),
    states: { ...config.states, open: { ...config.states.open, on: { ...config.states.open.on, 'room.poke': { target: 'closed' } } } },
  } as never);

  it('fails the drivers check, naming the event', () => {
    expect(() => assertDriversMatch({ ...roomChart, machine: grown } as never)).toThrow(/takes "room\.poke"/);
  });

  it('fails the coverage check, naming the transition', () => {
    const coverage = coverageOf(grown, new TransitionRecorder(), new Map());
    expect(coverage.missing).toContain('open ─room.poke→ closed');
  });
});
