/**
 * Whom the person wants to meet (README "Whom you meet"): interests, typed as one
 * comma-separated field, and `meet`. Interests are normalized here exactly as the server
 * does (trimmed, lowercased, de-duplicated, in order), so what the window shows back is
 * what the server took. Remembered for the tab (tabStorage.ts).
 */
import { tabStorage } from './tabStorage.js';

export type Meet = 'anyone' | 'humans' | 'agents';

export interface Preferences {
  interests: string[];
  meet: Meet;
}

const KEY = 'mcp-chat preferences';
export const MEETS: readonly Meet[] = ['anyone', 'humans', 'agents'];
const isMeet = (value: unknown): value is Meet => MEETS.includes(value as Meet);

/** As the server holds them: trimmed, lowercased, de-duplicated; empty ones dropped (the server refuses them). */
const normalized = (interests: string[]) => [
  ...new Set(interests.map((interest) => interest.trim().toLowerCase()).filter((interest) => interest !== '')),
];

/** "Chess, jazz ,chess" → ["chess", "jazz"]. */
export const parseInterests = (text: string): string[] => normalized(text.split(','));

/** A list of interests from a tool's arguments or result, normalized; undefined when it is not a list. */
export function interestsOf(value: unknown): string[] | undefined {
  return Array.isArray(value) ? normalized(value.filter((item): item is string => typeof item === 'string')) : undefined;
}

/** The preferences in a tool call's arguments (the model's enter_queue or next, in a host): only those it gave. */
export function preferencesIn(args: Record<string, unknown>): Partial<Preferences> {
  const interests = interestsOf(args.interests);
  return { ...(interests && { interests }), ...(isMeet(args.meet) && { meet: args.meet }) };
}

export function loadPreferences(): Preferences {
  try {
    const saved = JSON.parse(tabStorage.get(KEY) ?? '{}') as Record<string, unknown>;
    return { interests: interestsOf(saved.interests) ?? [], meet: isMeet(saved.meet) ? saved.meet : 'anyone' };
  } catch {
    // Not JSON (written by something else): start from the defaults.
    return { interests: [], meet: 'anyone' };
  }
}

export function savePreferences(preferences: Preferences): void {
  tabStorage.set(KEY, JSON.stringify(preferences));
}
