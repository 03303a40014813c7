/**
 * `npm run conformance`: starts mcp-chat on a free loopback port and runs the official
 * MCP conformance suite's server scenarios that apply to any server against it, with
 * Node 22 (the suite needs it; the server stays on the Node it was started with).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { node22 } from './node22.js';
import { spawnServer } from './spawnServer.js';

const SCENARIOS = [
  'server-initialize',
  'ping',
  'tools-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
  'logging-set-level',
];

async function main(): Promise<number> {
  const suite = createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/dist/index.js');
  const node = node22();
  const server = await spawnServer();
  const { url } = server;
  const failed: string[] = [];
  try {
    for (const scenario of SCENARIOS) {
      const run = spawnSync(node, [suite, 'server', '--url', url.href, '--scenario', scenario], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
      const summary = /Passed: (\d+)\/(\d+), (\d+) failed/.exec(output);
      const passed = run.status === 0 && summary !== null && summary[3] === '0';
      process.stdout.write(`${passed ? 'PASS' : 'FAIL'} ${scenario}${summary ? ` (${summary[1]}/${summary[2]} checks)` : ''}\n`);
      if (!passed) {
        failed.push(scenario);
        process.stdout.write(output);
      }
    }
  } finally {
    await server.stop();
  }
  process.stdout.write(`conformance: ${SCENARIOS.length - failed.length} passed, ${failed.length} failed\n`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`conformance: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
