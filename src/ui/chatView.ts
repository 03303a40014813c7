/**
 * What a conversation shows: the phases a person's chat goes through, the lines of its
 * log, and the view that shows them (src/ui/view.ts implements it).
 */
import type { Preferences } from './preferences.js';

/** Why a chat ended: the partner's reason, or this user's: `you` (left), `blocked`, `reported`. */
export type EndReason = 'you' | 'blocked' | 'reported' | 'left' | 'disconnected' | 'timeout' | 'shutdown';

export type Phase =
  | { name: 'connecting' }
  | { name: 'token' }
  | { name: 'start' }
  | ({ name: 'waiting'; position?: number } & Partial<Preferences>)
  | { name: 'chatting'; partnerIs?: string; commonInterests?: string[] }
  | { name: 'ended'; reason: EndReason };

/** Who wrote a line of the log: the person, the stranger, or the window itself. */
export type Speaker = 'me' | 'stranger' | 'system';

export interface Line {
  from: Speaker;
  text: string;
}

/** What the conversation shows (src/ui/view.ts). */
export interface ChatView {
  show(phase: Phase): void;
  /** A new chat begins: the last one's lines go. */
  clear(): void;
  line(from: Speaker, text: string): void;
  /** A sentence about something that went wrong, or undefined to clear it. */
  notice(text: string | undefined): void;
  /** The chat's lines, as shown. */
  readonly lines: readonly Line[];
  /** Shows a chat again as it was (after a reload): its lines and its phase, announcing nothing. */
  restore(phase: Phase, lines: readonly Line[]): void;
}
