/**
 * One person's chat as the window sees it: their `user_token`, where they are (the
 * phase), and their own reading position in their event log.
 *
 * It learns what happens by long-polling `wait_for_events` with its own cursor, so a
 * model that reads the same user with its cursor takes nothing from the window, nor
 * the window from the model. Events are handled by room: a chat's lines are those of
 * the room it is in, and news of an earlier room changes nothing. On a new token, and
 * after any error, it reads the log from the start again and asks `get_status`, so it
 * shows what the user's model (or another window) did meanwhile. Given a memory (the
 * page), it keeps itself there, so a reload picks up from its cursor (`restore`).
 */
import type { ChatMemory, SavedChat } from './chatMemory.js';
import type { ChatView, EndReason, Phase } from './chatView.js';
import { interestsOf, type Preferences } from './preferences.js';
import { structuredOf, TokenRequired, type ToolLink, type ToolResult, textOf } from './toolLink.js';

/** What the person can do to the partner, now or after the chat (README "Whom you meet"). */
export type Verdict = { block: true } | { report: string };

interface ChatEvent {
  method: string;
  params: Record<string, unknown>;
}

/** Held well under the hosts' 60 s limit on a call. */
const WAIT_S = 25;
/** The window is for people (matching: a person says so when entering the queue). */
const I_AM = 'human';
const REASONS = new Set<EndReason>(['left', 'disconnected', 'timeout', 'shutdown']);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const asString = (value: unknown) => (typeof value === 'string' ? value : undefined);

export class Conversation {
  #token: string | undefined;
  #cursor = '0';
  #roomId: string | undefined;
  #phase: Phase = { name: 'connecting' };
  /** The preferences this user last gave, as far as the window knows: its own, or the model's in a host. */
  #asked: Partial<Preferences> = {};
  /** Bumped whenever the reading loop must stop: a new token, the window going away. */
  #generation = 0;

  constructor(
    private readonly link: ToolLink,
    readonly view: ChatView,
    private readonly memory?: ChatMemory,
  ) {}

  get token(): string | undefined {
    return this.#token;
  }

  get phase(): Phase {
    return this.#phase;
  }

  show(phase: Phase): void {
    this.#phase = phase;
    this.view.show(phase);
    this.#save();
  }

  /** Takes up a saved conversation (the page after a reload): shown as it was, then read on from its cursor. */
  restore(saved: SavedChat): void {
    this.#token = saved.token;
    this.#cursor = saved.cursor;
    this.#roomId = saved.roomId;
    this.#phase = saved.phase;
    this.view.restore(saved.phase, saved.lines);
    this.resume();
  }

  /** The preferences of the tool call that opened the window (in a host): those it gave. */
  heard(preferences: Partial<Preferences>): void {
    this.#asked = { ...this.#asked, ...preferences };
  }

  /** Follows the user that `token` names: from the start of its log, then as it happens. */
  follow(token: string): void {
    if (token === this.#token) return;
    this.#token = token;
    this.#cursor = '0';
    this.#roomId = undefined;
    this.resume();
  }

  /** (Re)starts reading, after a catch-up from the cursor and get_status. */
  resume(): void {
    if (this.#token !== undefined) void this.#read(++this.#generation);
  }

  /** Stops reading (the window goes away); the chat itself goes on. */
  stop(): void {
    this.#generation++;
  }

  /** The tool result that opened the window (enter_queue or next): whose window this is. */
  adopt(result: ToolResult): boolean {
    const token = asString(structuredOf(result).user_token);
    if (result.isError || token === undefined) return false;
    this.follow(token);
    return true;
  }

  /**
   * "Meet a stranger" and "Meet someone new" (with the preferences), and "Next" (without:
   * the server keeps the last ones): enter_queue the first time, else next.
   */
  async meet(preferences?: Preferences): Promise<void> {
    const roomBefore = this.#roomId;
    const result = await this.#act(this.#token === undefined ? 'enter_queue' : 'next', { ...preferences, i_am: I_AM });
    if (!result) return;
    if (preferences) this.heard(preferences);
    const answer = structuredOf(result);
    const token = asString(answer.user_token);
    if (token === undefined) return;
    if (token !== this.#token) {
      this.#token = token;
      this.#cursor = '0';
      this.resume();
    }
    const roomId = asString(answer.room_id);
    // A chatroom.found read meanwhile is as new as this answer, or newer.
    if (answer.status === 'matched' && roomId !== undefined) {
      if (roomId !== this.#roomId) this.#enterRoom(roomId, answer);
    } else if (answer.status === 'waiting' && this.#roomId === roomBefore) this.#wait(answer.position);
  }

  /** Leaves the chat, or the queue. */
  async leave(): Promise<void> {
    const { name } = this.#phase;
    if (!(await this.#act('leave_chat', {}))) return;
    if (name === 'waiting') this.show({ name: 'start' });
    else this.#end('you');
  }

  /** Blocks or reports the partner, leaving the chat, or (after the chat) the last partner. */
  async judge(verdict: Verdict): Promise<boolean> {
    if (!(await this.#act('leave_chat', verdict))) return false;
    this.#end('report' in verdict ? 'reported' : 'blocked');
    return true;
  }

  /**
   * The tab is closing or reloading: stop reading, and leave with a request that outlives
   * the page, which the server carries out only if no call for this user comes within its
   * `--page-grace-ms` (a reload calls again at once, and the partner hears nothing).
   */
  leaveOnClose(): void {
    const { name } = this.#phase;
    this.stop();
    if (this.#token !== undefined && (name === 'waiting' || name === 'chatting'))
      void this.link.call('leave_chat', { user_token: this.#token, grace: true }, { keepalive: true }).catch(() => {
        // The page is gone; if this request is lost, the idle rules end the user.
      });
  }

  /** Sends a message in the current room; false (with a notice) when it was refused. */
  async send(text: string): Promise<boolean> {
    if (this.#roomId === undefined) return false;
    const sent = await this.#act('send_message', { room_id: this.#roomId, message: text });
    if (sent) {
      this.view.line('me', text);
      this.#save();
    }
    return sent !== undefined;
  }

  /** Calls a tool for this user; a refusal or failure becomes a notice and undefined. */
  async #act(name: string, args: Record<string, unknown>): Promise<ToolResult | undefined> {
    try {
      const result = await this.link.call(name, this.#token === undefined ? args : { ...args, user_token: this.#token });
      this.view.notice(result.isError ? textOf(result) : undefined);
      return result.isError ? undefined : result;
    } catch (error) {
      if (error instanceof TokenRequired) this.show({ name: 'token' });
      else this.view.notice(`Could not reach the chat: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** The reading loop of one generation: catch up, then hold wait_for_events again and again. */
  async #read(generation: number): Promise<void> {
    const current = () => generation === this.#generation;
    let catchUp = true;
    let failures = 0;
    let yielded = 0;
    while (current()) {
      try {
        if (catchUp) {
          if (!(await this.#catchUp(current))) return;
          catchUp = false;
        }
        const result = await this.link.call('wait_for_events', { user_token: this.#token, after: this.#cursor, timeout_s: WAIT_S });
        if (!current()) return;
        if (result.isError) {
          // Refused (say, too many readers hold waits for this user): look again in a moment.
          catchUp = true;
          await sleep(2_000);
          continue;
        }
        const superseded = this.#take(result);
        if (failures > 0) this.view.notice(undefined);
        failures = 0;
        // This user holds more calls than the server allows (the model, other windows):
        // this one, the oldest, was replaced. Step back, longer each time it happens
        // again, and read on after (nothing is lost: the cursor stays where it was).
        yielded = superseded ? yielded + 1 : 0;
        if (superseded) await sleep(Math.min(8_000, 500 * 2 ** yielded) * (0.75 + Math.random() / 2));
      } catch (error) {
        if (!current()) return;
        if (error instanceof TokenRequired) {
          this.show({ name: 'token' });
          this.stop();
          return;
        }
        failures += 1;
        catchUp = true;
        this.view.notice('Lost the connection to the chat; trying again…');
        await sleep(Math.min(15_000, 500 * 2 ** failures));
      }
    }
  }

  /**
   * Reads what is pending without waiting and asks where the user is. False when the
   * user is gone (ended by the idle rules, or the server restarted): the window starts over.
   */
  async #catchUp(current: () => boolean): Promise<boolean> {
    const token = this.#token;
    const pending = await this.link.call('wait_for_events', { user_token: token, after: this.#cursor, timeout_s: 0 });
    if (!current()) return false;
    if (!pending.isError) this.#take(pending);
    const status = await this.link.call('get_status', { user_token: token });
    if (!current()) return false;
    if (status.isError) {
      this.#token = undefined;
      this.#roomId = undefined;
      this.stop();
      this.#save();
      if (this.#phase.name !== 'ended') this.show({ name: 'start' });
      this.view.notice('This chat is over: the server no longer knows you. Meet someone new?');
      return false;
    }
    const where = structuredOf(status);
    const { state, room_id: roomId, position } = where;
    if (state === 'chatting' && typeof roomId === 'string') {
      if (roomId !== this.#roomId) this.#enterRoom(roomId, where);
      else if (this.#phase.name !== 'chatting') this.show({ name: 'chatting' });
    } else if (state === 'waiting') {
      if (this.#phase.name !== 'waiting') this.#wait(position);
    } else if (this.#phase.name === 'chatting') {
      this.#end('you');
    } else if (this.#phase.name !== 'ended') {
      this.show({ name: 'start' });
    }
    return true;
  }

  /** Takes a page of events; true when the call was superseded by another reader. */
  #take(result: ToolResult): boolean {
    const page = structuredOf(result);
    const events = Array.isArray(page.events) ? (page.events as ChatEvent[]) : [];
    for (const event of events) this.#apply(event);
    if (typeof page.cursor === 'string') this.#cursor = page.cursor;
    this.#save();
    return events.length === 0 && typeof page.note === 'string';
  }

  #apply({ method, params }: ChatEvent): void {
    const roomId = asString(params.room_id);
    if (method === 'chatroom.found' && roomId !== undefined && roomId !== this.#roomId) this.#enterRoom(roomId, params);
    else if (method === 'message.received' && roomId === this.#roomId && typeof params.message === 'string')
      this.view.line('stranger', params.message);
    else if (method === 'partner.disconnected' && roomId === this.#roomId && this.#phase.name === 'chatting')
      this.#end(REASONS.has(params.reason as EndReason) ? (params.reason as EndReason) : 'disconnected');
    // A window opened on a long-lived user reads from the start: that older events are gone is no news.
    else if (method === 'events.missed' && this.#cursor !== '0')
      this.view.line('system', `${String(params.count)} earlier event(s) were lost.`);
  }

  #enterRoom(roomId: string, about: Record<string, unknown>): void {
    this.#roomId = roomId;
    this.view.clear();
    this.show({ name: 'chatting', partnerIs: asString(about.partner_is), commonInterests: interestsOf(about.common_interests) });
  }

  #wait(position: unknown): void {
    this.#roomId = undefined;
    // Next while waiting keeps the place in line, and the lines that say what this user asked for.
    if (this.#phase.name !== 'waiting') this.view.clear();
    this.show({ name: 'waiting', position: typeof position === 'number' ? position : undefined, ...this.#asked });
  }

  #end(reason: EndReason): void {
    this.show({ name: 'ended', reason });
  }

  #save(): void {
    const token = this.#token;
    this.memory?.save(
      token === undefined
        ? undefined
        : { token, cursor: this.#cursor, roomId: this.#roomId, phase: this.#phase, lines: [...this.view.lines] },
    );
  }
}
