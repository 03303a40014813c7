/**
 * Every chart the model-based tests replay, in memory and over HTTP. A machine added to
 * machines/ with no spec here fails the coverage test, which counts every machine.
 */
import type { AnyEventObject, Snapshot } from 'xstate';
import { presenceChart } from './presenceChart.js';
import { queueChart } from './queueChart.js';
import type { ChartSpec } from './replay.js';
import { roomChart } from './roomChart.js';
import { userChart } from './userChart.js';

export type AnyChartSpec = ChartSpec<Snapshot<unknown>, AnyEventObject, unknown>;

export const CHARTS = [
  userChart('sdk'),
  userChart('per-call'),
  presenceChart('streamable'),
  presenceChart('legacy'),
  roomChart,
  queueChart(2, { quiet: true }),
  queueChart(2, { time: 'waited' }),
  queueChart(3),
  queueChart(4, { time: 'instant' }),
] as unknown as readonly AnyChartSpec[];
