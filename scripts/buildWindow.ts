/**
 * `npm run build` step: builds the chat window for people (src/ui/) into one
 * self-contained HTML file, dist/window/window.html, which the server reads at start
 * (src/mcp/chatWindow.ts). The script is bundled and minified, the CSS minified, both
 * inlined into the slots of src/ui/window.html, so the server needs no bundler.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, transformSync } from 'esbuild';

const STYLE_SLOT = '<style>/* window.css */</style>';
const SCRIPT_SLOT = '<script>/* window.ts */</script>';

/** The window's HTML, built from the sources in `uiFolder` (a path ending in `/`). */
function buildWindow(uiFolder: string): string {
  const template = readFileSync(`${uiFolder}window.html`, 'utf8');
  const css = transformSync(readFileSync(`${uiFolder}window.css`, 'utf8'), {
    loader: 'css',
    minify: true,
    legalComments: 'none',
  }).code.trim();
  const script = buildSync({
    entryPoints: [`${uiFolder}window.ts`],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2022',
    legalComments: 'none',
    charset: 'utf8',
    write: false,
  }).outputFiles[0]!.text.trim();
  for (const [slot, text] of [
    [STYLE_SLOT, css],
    [SCRIPT_SLOT, script],
  ] as const) {
    if (!template.includes(slot)) throw new Error(`src/ui/window.html lost its ${slot} slot.`);
    // The server finds each inline element by its end tag (to hash it for the CSP).
    if (/<\/(script|style)/i.test(text)) throw new Error(`the window's ${slot} would end its own element early.`);
  }
  // Function replacers: `$` in the code must stay as it is.
  return template.replace(STYLE_SLOT, () => `<style>${css}</style>`).replace(SCRIPT_SLOT, () => `<script>${script}</script>`);
}

const root = new URL('../../', import.meta.url); // this file runs as dist/scripts/buildWindow.js
const target = fileURLToPath(new URL('dist/window/window.html', root));
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, buildWindow(fileURLToPath(new URL('src/ui/', root))));
