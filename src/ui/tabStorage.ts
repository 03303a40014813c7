/**
 * What the window remembers for this tab: the page's server token, the person's
 * preferences, and (page only) where their chat was, so a reload goes back to it. It
 * lives in `sessionStorage`; where the window may not touch it (an MCP Apps sandbox
 * without `allow-same-origin` throws on every access, and storage may be full or
 * switched off) it lives in memory, for as long as the window does.
 */

const memory = new Map<string, string>();

/**
 * The tab's storage, or undefined where touching it throws. This is the one place that
 * decides such a failure is harmless: the window then remembers in memory only.
 */
function session<T>(use: (storage: Storage) => T): T | undefined {
  try {
    return use(window.sessionStorage);
  } catch {
    return undefined;
  }
}

export const tabStorage = {
  get(key: string): string | undefined {
    return memory.get(key) ?? session((storage) => storage.getItem(key)) ?? undefined;
  },

  /** Remembers `value` under `key`, or forgets it (undefined). */
  set(key: string, value: string | undefined): void {
    if (value === undefined) memory.delete(key);
    else memory.set(key, value);
    session((storage) => (value === undefined ? storage.removeItem(key) : storage.setItem(key, value)));
  },
};
