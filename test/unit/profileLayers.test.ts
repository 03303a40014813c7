import { describe, expect, it } from 'vitest';
import { type CpuProfile, type Layer, layerOf, layerTable, selfTimeByLayer } from '../../scripts/profileLayers.js';

const frame = (functionName: string, url: string) => ({ functionName, url });

/** Six frames as `node --cpu-prof` writes them; each sample lasts until the next (the last until endTime). */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', '') },
    { id: 2, callFrame: frame('fetch', 'file:///app/node_modules/@hono/node-server/dist/index.mjs') },
    { id: 3, callFrame: frame('attach', 'file:///app/dist/src/session/sessionRegistry.js') },
    { id: 4, callFrame: frame('_parse', 'file:///app/node_modules/zod/v4/core/schemas.js') },
    { id: 5, callFrame: frame('(idle)', '') },
    { id: 6, callFrame: frame('(garbage collector)', '') },
  ],
  startTime: 1000,
  endTime: 3110,
  samples: [2, 3, 3, 4, 5, 6],
  // Sample times: 1010, 1110, 1310, 1610, 2010, 2510.
  timeDeltas: [10, 100, 200, 300, 400, 500],
};

const nonZero = (byLayer: Map<Layer, number>) => Object.fromEntries([...byLayer].filter(([, us]) => us > 0));

describe('CPU profile by layer', () => {
  it('charges each frame to its layer by URL, natives by name', () => {
    const cases: [string, string, Layer][] = [
      ['onData', 'node:_http_server', 'http'],
      ['pull', 'node:internal/webstreams/readablestream', 'http'],
      ['writev', '', 'http'],
      ['dispatch', 'file:///app/node_modules/hono/dist/hono-base.js', 'http'],
      ['handle', 'file:///app/dist/src/http/routes.js', 'http'],
      ['request', 'file:///app/node_modules/@modelcontextprotocol/server/dist/src-Dd.mjs', 'mcp'],
      ['callTool', 'file:///app/dist/src/mcp/tools.js', 'mcp'],
      ['safeParse', 'file:///app/node_modules/zod/v4/classic/schemas.js', 'zod'],
      ['attach', 'file:///app/dist/src/session/sessionRegistry.js', 'session'],
      ['send', 'file:///app/dist/src/chat/chatUser.js', 'chat'],
      ['transition', 'file:///app/node_modules/xstate/dist/raise.esm.js', 'machines/xstate'],
      ['isPartner', 'file:///app/dist/machines/room.js', 'machines/xstate'],
      ['parse', '', 'json/encoding'],
      ['encode', 'node:internal/encoding', 'json/encoding'],
      ['(program)', '', 'node other'],
      ['listOnTimeout', 'node:internal/timers', 'node other'],
      ['handler', 'file:///app/dist/bench/v2Peer.js', 'other'],
      ['get', 'file:///app/node_modules/lru-cache/dist/index.js', 'other'],
    ];
    for (const [functionName, url, layer] of cases)
      expect([url || functionName, layerOf({ functionName, url })]).toEqual([url || functionName, layer]);
  });

  it('adds each sample’s self time (until the next sample) to its layer', () => {
    expect(nonZero(selfTimeByLayer(profile))).toEqual({ http: 100, session: 500, zod: 400, idle: 500, gc: 600 });
  });

  it('keeps only the samples taken inside a window of the profile’s clock', () => {
    expect(nonZero(selfTimeByLayer(profile, { from: 1100, to: 1700 }))).toEqual({ session: 500, zod: 400 });
  });

  it('tabulates ms, share of busy time (idle left out) and µs per message, busiest first', () => {
    const rows = layerTable(selfTimeByLayer(profile), 4).filter((row) => row.ms > 0);
    expect(rows).toEqual([
      { layer: 'gc', ms: 0.6, share: 0.375, usPerMessage: 150 },
      { layer: 'session', ms: 0.5, share: 0.3125, usPerMessage: 125 },
      { layer: 'zod', ms: 0.4, share: 0.25, usPerMessage: 100 },
      { layer: 'http', ms: 0.1, share: 0.0625, usPerMessage: 25 },
      { layer: 'busy', ms: 1.6, share: 1, usPerMessage: 400 },
      { layer: 'idle', ms: 0.5, share: null, usPerMessage: null },
    ]);
  });
});
