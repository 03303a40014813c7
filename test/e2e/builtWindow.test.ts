/**
 * The chat window is built by `npm run build` (scripts/buildWindow.ts), never by the
 * server: the server serves the built file as it is, and a server whose window was
 * never built stops at start naming the command that builds it.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { chatWindow } from '../../src/mcp/chatWindow.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const unbuilt = mkdtempSync(join(tmpdir(), 'mcp-chat-unbuilt-'));
afterAll(() => rmSync(unbuilt, { recursive: true, force: true }));

describe('the chat window, built before the server runs', () => {
  it('is served as npm run build wrote it', () => {
    expect(chatWindow().html).toBe(readFileSync(join(root, 'dist/window/window.html'), 'utf8'));
  });

  it('stops a server whose window was never built at start, naming npm run build', () => {
    // The built server and its package.json, as an install would hold them, minus dist/window/.
    cpSync(join(root, 'package.json'), join(unbuilt, 'package.json'));
    for (const part of ['src', 'machines']) cpSync(join(root, 'dist', part), join(unbuilt, 'dist', part), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(unbuilt, 'node_modules'));
    const run = spawnSync(process.execPath, [join(unbuilt, 'dist/src/cli.js'), '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(1);
    expect(run.stdout).not.toMatch(/http:\/\//); // it never listened
    expect(run.stderr).toContain('The chat window is not built (dist/window/window.html is missing): run `npm run build`.');
  });
});
