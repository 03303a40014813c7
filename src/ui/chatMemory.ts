/**
 * The page's memory of its conversation (README "People: the chat window"): the
 * person's `user_token`, their cursor, room, phase and lines, kept in the tab's
 * storage, so a reload goes back to the same chat and reads on from the cursor.
 */
import type { Line, Phase } from './chatView.js';
import { tabStorage } from './tabStorage.js';

/** A conversation as a memory keeps it. */
export interface SavedChat {
  token: string;
  cursor: string;
  roomId?: string;
  phase: Phase;
  lines: Line[];
}

/** Where a conversation keeps itself (the page: the tab's storage); undefined forgets it. */
export interface ChatMemory {
  save(chat: SavedChat | undefined): void;
}

const KEY = 'mcp-chat conversation';
/** The phases worth going back to; any other starts the page afresh. */
const RESUMABLE = new Set<Phase['name']>(['waiting', 'chatting', 'ended']);
const isLine = (line: Partial<Line> | null): line is Line =>
  typeof line?.text === 'string' && ['me', 'stranger', 'system'].includes(line.from ?? '');

export const tabChatMemory: ChatMemory & { load(): SavedChat | undefined } = {
  load() {
    try {
      const saved = JSON.parse(tabStorage.get(KEY) ?? 'null') as Partial<SavedChat> | null;
      if (typeof saved?.token !== 'string' || typeof saved.cursor !== 'string' || !RESUMABLE.has(saved.phase?.name as Phase['name']))
        return undefined;
      return {
        token: saved.token,
        cursor: saved.cursor,
        roomId: saved.roomId,
        phase: saved.phase!,
        lines: Array.isArray(saved.lines) ? saved.lines.filter(isLine) : [],
      };
    } catch {
      // Not JSON (written by something else): start afresh.
      return undefined;
    }
  },
  save(chat) {
    tabStorage.set(KEY, chat && JSON.stringify(chat));
  },
};
