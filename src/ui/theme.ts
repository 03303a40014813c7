/**
 * The host's look, applied to the window: its theme (light or dark, through
 * `color-scheme`, which the window's `light-dark()` colours follow), its standard CSS
 * variables (colours, fonts, radii: they override the window's fallbacks in
 * window.css), its fonts, and the room its frame gives.
 */
import type { HostContext } from './hostLink.js';

/** The window's own height when the host lets it choose (window.css uses the same). */
const HEIGHT_PX = 440;

export function applyHostContext(context: HostContext, root: HTMLElement = document.documentElement): void {
  if (context.theme === 'light' || context.theme === 'dark') {
    root.style.colorScheme = context.theme;
    root.dataset.theme = context.theme;
  }
  for (const [name, value] of Object.entries(context.styles?.variables ?? {}))
    if (name.startsWith('--') && typeof value === 'string') root.style.setProperty(name, value);
  const fonts = context.styles?.css?.fonts;
  if (typeof fonts === 'string') {
    let style = document.getElementById('host-fonts');
    if (!style) {
      style = document.createElement('style');
      style.id = 'host-fonts';
      document.head.append(style);
    }
    style.textContent = fonts;
  }
  const room = context.containerDimensions;
  if (typeof room?.height === 'number') root.style.setProperty('--window-height', '100vh');
  else if (typeof room?.maxHeight === 'number') root.style.setProperty('--window-height', `${Math.min(HEIGHT_PX, room.maxHeight)}px`);
}
