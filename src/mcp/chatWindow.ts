/**
 * The chat window for people (src/ui/), built once per process into one
 * self-contained HTML file, and served two ways:
 *
 * - as the MCP Apps resource (`ui://mcp-chat/window.html`, `text/html;profile=mcp-app`)
 *   that hosts show beside enter_queue and next (both eras register it);
 * - as the page at `GET /` (src/http/app.ts), marked with the endpoint it speaks MCP to,
 *   with a Content-Security-Policy that lets its own inline script and style run and
 *   nothing else load.
 *
 * Built by the server itself with esbuild (a runtime dependency), so `npm start` on a
 * fresh clone serves it and nothing generated is committed: the script bundled and
 * minified, the CSS minified, both inlined. The build (about 0.1 s, most of it starting
 * esbuild) happens on the first read of the window, not at start: servers that never
 * show it never pay.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSync, transformSync } from 'esbuild';
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

const STYLE_SLOT = '<style>/* window.css */</style>';
const SCRIPT_SLOT = '<script>/* window.ts */</script>';
const ROOT_TAG = '<html lang="en">';

/**
 * The window's sources: beside this file's folder when it runs from src/ (tests), or
 * in the package's src/ when it runs from dist/src/ (the build leaves src/ui/ out:
 * scripts/tsconfig.build.json).
 */
function uiFolder(): string {
  for (const relative of ['../ui/', '../../../src/ui/']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${folder}window.html`)) return folder;
  }
  throw new Error('The chat window sources (src/ui/window.html) are missing from this installation.');
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function build(): ChatWindow {
  const folder = uiFolder();
  const template = readFileSync(`${folder}window.html`, 'utf8');
  const css = transformSync(readFileSync(`${folder}window.css`, 'utf8'), { loader: 'css', minify: true, legalComments: 'none' }).code.trim();
  const script = buildSync({
    entryPoints: [`${folder}window.ts`],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2022',
    legalComments: 'none',
    charset: 'utf8',
    write: false,
  }).outputFiles[0]!.text.trim();
  for (const [slot, text] of [[STYLE_SLOT, css], [SCRIPT_SLOT, script]] as const) {
    if (!template.includes(slot)) throw new Error(`src/ui/window.html lost its ${slot} slot.`);
    if (/<\/(script|style)/i.test(text)) throw new Error(`the window's ${slot} would end its own element early.`);
  }
  // Function replacers: `$` in the code must stay as it is.
  const html = template.replace(STYLE_SLOT, () => `<style>${css}</style>`).replace(SCRIPT_SLOT, () => `<script>${script}</script>`);
  if (!html.includes(ROOT_TAG)) throw new Error(`src/ui/window.html lost its ${ROOT_TAG} tag.`);
  return {
    html,
    pageHtml: html.replace(ROOT_TAG, () => '<html lang="en" data-mcp-endpoint="/mcp">'),
    pageCsp: [
      "default-src 'none'",
      `script-src ${sha256(script)}`,
      // Hashes cover <style> elements; the window sets CSS variables through the CSSOM.
      `style-src ${sha256(css)}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
  };
}

let built: ChatWindow | undefined;

/** The window, built on first use and kept for the life of the process. */
export function chatWindow(): ChatWindow {
  return (built ??= build());
}

/** Registers the window as an MCP Apps resource (both eras: each server registers it). */
export function registerChatWindow(server: McpServer): void {
  const ui = { prefersBorder: true };
  server.registerResource(
    'chat-window',
    CHAT_WINDOW_URI,
    {
      title: 'mcp-chat window',
      description: 'The chat window for people: waiting, pairing, the stranger\'s messages as they arrive, a message box, Next, Leave, Block and Report, and the interests and whom to meet. Shown by hosts with MCP Apps beside enter_queue and next.',
      mimeType: MCP_APP_MIME_TYPE,
      _meta: { ui },
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: MCP_APP_MIME_TYPE, text: chatWindow().html, _meta: { ui } }] }),
  );
}
