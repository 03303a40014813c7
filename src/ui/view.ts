/**
 * What the person sees: the window's DOM, driven by the conversation. Everything a
 * stranger wrote is set as `textContent`: shown as the literal text, never parsed as
 * HTML or Markdown, so it can load nothing and run nothing. While the tab is hidden,
 * the title counts the stranger's new messages until the person looks.
 */
import type { ChatView, EndReason, Line, Phase, Speaker } from './chatView.js';
import type { Verdict } from './conversation.js';
import { MEETS, type Meet, type Preferences, parseInterests } from './preferences.js';

const ENDED: Record<EndReason, string> = {
  you: 'You left the chat.',
  blocked: 'You blocked the stranger: you will not meet them again.',
  reported: 'You reported the stranger: you will not meet them again.',
  left: 'The stranger left the chat.',
  disconnected: 'The stranger disconnected.',
  timeout: 'The stranger went quiet for too long: the chat timed out.',
  shutdown: 'The server is shutting down: the chat ended.',
};

const PARTNERS: Record<string, string> = { human: 'a person', agent: 'an AI agent' };
const MEETING: Record<Meet, string> = { anyone: '', humans: 'You meet people only.', agents: 'You meet AI agents only.' };
/** How many lines the log keeps (and a reload brings back). */
const MAX_LINES = 300;

export interface ViewActions {
  /** "Meet a stranger" and "Meet someone new", with the preferences as the person set them. */
  meet(preferences: Preferences): void;
  /** "Next": the server keeps the preferences. */
  next(): void;
  leave(): void;
  /** Block or Report; resolves true when it was done. */
  judge(verdict: Verdict): Promise<boolean>;
  /** Resolves true when the message was sent (the box is then emptied). */
  send(text: string): Promise<boolean>;
  serverToken(token: string): void;
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the window has no #${id}`);
  return found as T;
}

/** Where the view is: the phase, and for an ended chat why (a verdict after the end is news). */
const keyOf = (phase: Phase) => (phase.name === 'ended' ? `ended ${phase.reason}` : phase.name);

export class WindowView implements ChatView {
  readonly #app = element('app');
  readonly #status = element('status');
  readonly #tokenForm = element<HTMLFormElement>('token-form');
  readonly #tokenInput = element<HTMLInputElement>('token-input');
  readonly #preferences = element<HTMLFormElement>('preferences');
  readonly #intro = element('intro');
  readonly #interests = element<HTMLInputElement>('interests');
  readonly #meet = this.#preferences.elements.namedItem('meet') as RadioNodeList;
  readonly #start = element<HTMLButtonElement>('start');
  readonly #log = element<HTMLOListElement>('log');
  readonly #notice = element('notice');
  readonly #composer = element<HTMLFormElement>('composer');
  readonly #message = element<HTMLTextAreaElement>('message');
  readonly #reportForm = element<HTMLFormElement>('report-form');
  readonly #reason = element<HTMLInputElement>('report-reason');
  readonly #block = element<HTMLButtonElement>('block');
  readonly #report = element<HTMLButtonElement>('report');
  readonly #next = element<HTMLButtonElement>('next');
  readonly #leave = element<HTMLButtonElement>('leave');
  readonly #lines: Line[] = [];
  #shown: string | undefined;
  #unread = 0;

  /** `focus`: move the keyboard focus to the message box when a chat begins (not inside a host: it would take it from the host's own input). */
  constructor(
    actions: ViewActions,
    private readonly focus: boolean,
  ) {
    this.#preferences.addEventListener('submit', (event) => {
      event.preventDefault();
      const preferences = this.preferences;
      this.setPreferences(preferences);
      actions.meet(preferences);
    });
    this.#next.addEventListener('click', () => actions.next());
    this.#leave.addEventListener('click', () => actions.leave());
    this.#block.addEventListener('click', () => void actions.judge({ block: true }));
    this.#report.addEventListener('click', () => {
      this.#reportForm.hidden = false;
      this.#reason.focus();
    });
    element('report-cancel').addEventListener('click', () => (this.#reportForm.hidden = true));
    this.#reportForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const reason = this.#reason.value.trim();
      if (reason === '') return;
      void actions.judge({ report: reason }).then((done) => {
        if (done) this.#reason.value = '';
      });
    });
    this.#tokenForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const token = this.#tokenInput.value.trim();
      if (token) actions.serverToken(token);
    });
    this.#composer.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.#message.value;
      if (text.trim() === '') return;
      void actions.send(text).then((sent) => {
        if (sent && this.#message.value === text) this.#message.value = '';
      });
    });
    this.#message.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#composer.requestSubmit();
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.#attention(0);
    });
  }

  /** The preferences as the form shows them, interests as the server will hold them. */
  get preferences(): Preferences {
    const meet = this.#meet.value;
    return { interests: parseInterests(this.#interests.value), meet: MEETS.find((m) => m === meet) ?? 'anyone' };
  }

  /** Shows the preferences given (remembered, or the model's in a host). */
  setPreferences({ interests, meet }: Partial<Preferences>): void {
    if (interests) this.#interests.value = interests.join(', ');
    if (meet) this.#meet.value = meet;
  }

  show(phase: Phase): void {
    const key = keyOf(phase);
    const entering = key !== this.#shown;
    this.#shown = key;
    const { name } = phase;
    this.#app.dataset.phase = name;
    this.#status.textContent = statusOf(phase);
    this.#tokenForm.hidden = name !== 'token';
    this.#preferences.hidden = name !== 'start' && name !== 'ended';
    this.#intro.hidden = name !== 'start';
    this.#start.textContent = name === 'ended' ? 'Meet someone new' : 'Meet a stranger';
    this.#composer.hidden = name !== 'chatting';
    const judging = name === 'chatting' || (name === 'ended' && phase.reason !== 'blocked' && phase.reason !== 'reported');
    this.#block.hidden = this.#report.hidden = !judging;
    if (!judging) this.#reportForm.hidden = true;
    this.#next.hidden = name !== 'waiting' && name !== 'chatting';
    this.#leave.hidden = name !== 'waiting' && name !== 'chatting';
    if (entering) this.#announce(phase);
  }

  /** The line a phase begins with, and where the keyboard goes. */
  #announce(phase: Phase): void {
    if (phase.name === 'waiting') {
      const about = [phase.interests?.length ? `Your interests: ${phase.interests.join(', ')}.` : '', MEETING[phase.meet ?? 'anyone']]
        .join(' ')
        .trim();
      if (about) this.line('system', about);
    } else if (phase.name === 'chatting') {
      const about = phase.commonInterests?.length ? ` You both like: ${phase.commonInterests.join(', ')}.` : '';
      this.line('system', `You are chatting with ${PARTNERS[phase.partnerIs ?? ''] ?? 'a stranger'}. Say hello!${about}`);
      if (this.focus) this.#message.focus();
    } else if (phase.name === 'ended') {
      this.line('system', ENDED[phase.reason]);
    } else if (phase.name === 'token' && this.focus) {
      this.#tokenInput.focus();
    }
  }

  get lines(): readonly Line[] {
    return this.#lines;
  }

  restore(phase: Phase, lines: readonly Line[]): void {
    this.clear();
    for (const { from, text } of lines) this.#append(from, text);
    this.#shown = keyOf(phase);
    this.show(phase);
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  clear(): void {
    this.#log.replaceChildren();
    this.#lines.length = 0;
  }

  line(from: Speaker, text: string): void {
    const atEnd = this.#log.scrollHeight - this.#log.scrollTop - this.#log.clientHeight < 40;
    this.#append(from, text);
    // Not scrollIntoView: inside a host it would scroll the host's page too.
    if (atEnd || from === 'me') this.#log.scrollTop = this.#log.scrollHeight;
    if (from === 'stranger' && document.visibilityState === 'hidden') this.#attention(this.#unread + 1);
  }

  #append(from: Speaker, text: string): void {
    const item = document.createElement('li');
    item.className = from;
    item.textContent = text;
    this.#log.append(item);
    this.#lines.push({ from, text });
    if (this.#lines.length > MAX_LINES) {
      this.#lines.shift();
      this.#log.firstElementChild?.remove();
    }
  }

  /** The count of unread messages in the title ("(2) mcp-chat"), or the plain title. */
  #attention(unread: number): void {
    this.#unread = unread;
    document.title = unread > 0 ? `(${unread}) mcp-chat` : 'mcp-chat';
  }

  notice(text: string | undefined): void {
    this.#notice.hidden = text === undefined;
    this.#notice.textContent = text ?? '';
  }
}

function statusOf(phase: Phase): string {
  switch (phase.name) {
    case 'connecting':
      return 'Connecting…';
    case 'token':
      return 'Access token needed';
    case 'start':
      return 'Not in a chat';
    case 'waiting':
      return phase.position === undefined ? 'Looking for a stranger…' : `Looking for a stranger… (#${phase.position} in line)`;
    case 'chatting': {
      const shared = phase.commonInterests?.length ? ` · you both like ${phase.commonInterests.join(', ')}` : '';
      return `Chatting with ${PARTNERS[phase.partnerIs ?? ''] ?? 'a stranger'}${shared}`;
    }
    case 'ended':
      return 'Chat ended';
  }
}
