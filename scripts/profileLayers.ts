/**
 * Where a server's CPU goes, by layer: reads one V8 `.cpuprofile` (`npm run bench -- --cpu-prof`
 * writes them to bench/profiles/) and adds the self time of every sample to the layer of
 * its frame, then prints a Markdown table: ms, share of busy time, and µs per message.
 *
 *   node dist/scripts/profileLayers.js <profile.cpuprofile> [--messages N] [--window FROM_US:TO_US]
 *
 * `--window` keeps the samples taken in one phase: the profile's clock is the monotonic
 * clock of `process.hrtime()` in µs, so a phase timed by another process on this machine
 * can be cut out of it. Idle time is shown but left out of the busy total.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** The parts of a V8 CPU profile (Chrome DevTools' `Profiler.Profile`) that this tool reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const LAYERS = [
  'http',
  'session',
  'mcp',
  'zod',
  'chat',
  'machines/xstate',
  'json/encoding',
  'gc',
  'node other',
  'other',
  'idle',
] as const;
export type Layer = (typeof LAYERS)[number];

// Frames without a URL are V8 or Node natives: the socket writes belong to HTTP, JSON and the
// UTF-8 converters to encoding (V8 builtins often get no frame: their time lands in the caller).
const NATIVES: Record<string, Layer> = {
  '(idle)': 'idle',
  '(garbage collector)': 'gc',
  writev: 'http',
  writeUtf8String: 'http',
  parse: 'json/encoding',
  stringify: 'json/encoding',
  decode: 'json/encoding',
  decodeUTF8: 'json/encoding',
  encodeUtf8String: 'json/encoding',
  encodeInto: 'json/encoding',
};

// First match wins: packages before our own folders, since a package may have a src/http/ too.
// Node's web streams and undici (Request, Headers) are what @hono/node-server serves through.
const BY_URL: [RegExp, Layer][] = [
  [/\/node_modules\/(hono|@hono\/node-server)\//, 'http'],
  [/\/node_modules\/@modelcontextprotocol\//, 'mcp'],
  [/\/node_modules\/zod\//, 'zod'],
  [/\/node_modules\/xstate\//, 'machines/xstate'],
  [/\/node_modules\//, 'other'],
  [/\/src\/http\//, 'http'],
  [/\/src\/session\//, 'session'],
  [/\/src\/mcp\//, 'mcp'],
  [/\/src\/chat\//, 'chat'],
  [/\/machines\//, 'machines/xstate'],
  [/^node:(_http_|https?$|net$|stream$|internal\/(streams|webstreams|stream_base_commons|http|net|deps\/undici)\b)/, 'http'],
  [/^node:(buffer$|string_decoder$|internal\/(encoding|buffer)\b)/, 'json/encoding'],
  [/^node:/, 'node other'],
];

/** The layer a frame's self time is charged to, by its script URL (or, for natives, its name). */
export function layerOf({ functionName, url }: { functionName: string; url: string }): Layer {
  if (url === '') return NATIVES[functionName] ?? 'node other';
  return BY_URL.find(([pattern]) => pattern.test(url))?.[1] ?? 'other';
}

/** Self time per layer in µs, of the samples taken within `window` (profile clock, µs) if given. */
export function selfTimeByLayer(profile: CpuProfile, window?: { from: number; to: number }): Map<Layer, number> {
  const layerOfNode = new Map(profile.nodes.map((node) => [node.id, layerOf(node.callFrame)]));
  const byLayer = new Map<Layer, number>(LAYERS.map((layer) => [layer, 0]));
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    // A sample stands for the time until the next one, as in Chrome DevTools.
    const lasted = i + 1 < profile.samples.length ? profile.timeDeltas[i + 1]! : profile.endTime - at;
    if (window && (at < window.from || at >= window.to)) continue;
    const layer = layerOfNode.get(profile.samples[i]!) ?? 'other';
    byLayer.set(layer, byLayer.get(layer)! + lasted);
  }
  return byLayer;
}

export interface LayerRow {
  layer: Layer | 'busy';
  ms: number;
  /** Share of busy time (idle excluded), 0–1; null for idle. */
  share: number | null;
  usPerMessage: number | null;
}

/** One row per layer, busiest first, then the busy total and idle; µs per message when `messages` is given. */
export function layerTable(byLayer: Map<Layer, number>, messages?: number): LayerRow[] {
  const busyUs = [...byLayer].reduce((sum, [layer, us]) => (layer === 'idle' ? sum : sum + us), 0);
  const row = (layer: LayerRow['layer'], us: number, busy: boolean): LayerRow => ({
    layer,
    ms: us / 1000,
    share: busy && busyUs > 0 ? us / busyUs : null,
    usPerMessage: busy && messages ? us / messages : null,
  });
  const layers = LAYERS.filter((layer) => layer !== 'idle').sort((a, b) => byLayer.get(b)! - byLayer.get(a)!);
  return [
    ...layers.map((layer) => row(layer, byLayer.get(layer)!, true)),
    row('busy', busyUs, true),
    row('idle', byLayer.get('idle')!, false),
  ];
}

function formatted(rows: LayerRow[]): string {
  const cell = (value: number | null, unit = '') => (value === null ? '' : `${value.toFixed(1)}${unit}`);
  const lines = rows.map(
    (row) => `| ${row.layer} | ${cell(row.ms)} | ${cell(row.share && row.share * 100, ' %')} | ${cell(row.usPerMessage)} |`,
  );
  return ['| layer | ms | share of busy | µs/message |', '|---|--:|--:|--:|', ...lines].join('\n');
}

function main(): number {
  const usage = 'usage: node dist/scripts/profileLayers.js <profile.cpuprofile> [--messages N] [--window FROM_US:TO_US]';
  const { values, positionals } = parseArgs({
    options: { messages: { type: 'string' }, window: { type: 'string' } },
    allowPositionals: true,
  });
  const messages = values.messages === undefined ? undefined : Number(values.messages);
  const window = values.window?.match(/^(\d+):(\d+)$/);
  if (positionals.length !== 1 || (messages !== undefined && !(messages > 0)) || (values.window !== undefined && !window)) {
    console.error(usage);
    return 2;
  }
  const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as CpuProfile;
  const byLayer = selfTimeByLayer(profile, window ? { from: Number(window[1]), to: Number(window[2]) } : undefined);
  console.log(formatted(layerTable(byLayer, messages)));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main();
