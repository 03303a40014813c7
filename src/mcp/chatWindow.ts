/**
 * The chat window for people (src/ui/), built by `npm run build` into one
 * self-contained HTML file (scripts/buildWindow.ts), read once when the server starts,
 * and served two ways:
 *
 * - as the MCP Apps resource (`ui://mcp-chat/window.html`, `text/html;profile=mcp-app`)
 *   that hosts show beside enter_queue and next (both eras register it);
 * - as the page at `GET /` (src/http/app.ts), marked with the endpoint it speaks MCP to,
 *   with a Content-Security-Policy that lets its own inline script and style run and
 *   nothing else load.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { McpServer } from '@modelcontextprotocol/server';
import { CHAT_WINDOW_URI } from './toolSpecs.js';

/** The MIME type of an MCP App's HTML (SEP-1865). */
export const MCP_APP_MIME_TYPE = 'text/html;profile=mcp-app';

export interface ChatWindow {
  /** The resource's HTML. */
  readonly html: string;
  /** The page's HTML: the same, marked to speak MCP to /mcp itself. */
  readonly pageHtml: string;
  /** The page's Content-Security-Policy. */
  readonly pageCsp: string;
}

const ROOT_TAG = '<html lang="en">';

/**
 * The built file, found through package.json's `imports` (`#window.html`), which names
 * it the same for this file in src/ (tests) and in dist/src/ (`npm start`).
 */
function readBuiltWindow(): string {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('#window.html'), 'utf8');
  } catch (cause) {
    throw new Error('The chat window is not built (dist/window/window.html is missing): run `npm run build`.', { cause });
  }
}

/** The text of the window's one inline element `tag` (the build keeps its end tag out of it). */
function inline(html: string, tag: 'script' | 'style'): string {
  const text = new RegExp(`<${tag}>([^]*?)</${tag}>`).exec(html)?.[1];
  if (text === undefined) throw new Error(`dist/window/window.html has no <${tag}>: run \`npm run build\`.`);
  return text;
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function load(): ChatWindow {
  const html = readBuiltWindow();
  if (!html.includes(ROOT_TAG)) throw new Error(`src/ui/window.html lost its ${ROOT_TAG} tag.`);
  return {
    html,
    pageHtml: html.replace(ROOT_TAG, () => '<html lang="en" data-mcp-endpoint="/mcp">'),
    pageCsp: [
      "default-src 'none'",
      `script-src ${sha256(inline(html, 'script'))}`,
      // Hashes cover <style> elements; the window sets CSS variables through the CSSOM.
      `style-src ${sha256(inline(html, 'style'))}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
  };
}

// Read when the server loads, so a missing build stops start-up rather than a request.
const loaded = load();

/** The window, read at start and kept for the life of the process. */
export function chatWindow(): ChatWindow {
  return loaded;
}

/** Registers the window as an MCP Apps resource (both eras: each server registers it). */
export function registerChatWindow(server: McpServer): void {
  const ui = { prefersBorder: true };
  server.registerResource(
    'chat-window',
    CHAT_WINDOW_URI,
    {
      title: 'mcp-chat window',
      description:
        "The chat window for people: waiting, pairing, the stranger's messages as they arrive, a message box, Next, Leave, Block and Report, and the interests and whom to meet. Shown by hosts with MCP Apps beside enter_queue and next.",
      mimeType: MCP_APP_MIME_TYPE,
      _meta: { ui },
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: MCP_APP_MIME_TYPE, text: chatWindow().html, _meta: { ui } }] }),
  );
}
