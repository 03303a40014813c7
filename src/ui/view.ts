/**
 * What the person sees: the window's DOM, driven by the conversation. Everything a
 * stranger wrote is set as `textContent`: shown as the literal text, never parsed as
 * HTML or Markdown, so it can load nothing and run nothing.
 */
import type { ChatView, EndReason, Phase } from './conversation.js';

const ENDED: Record<EndReason, string> = {
  you: 'You left the chat.',
  left: 'The stranger left the chat.',
  disconnected: 'The stranger disconnected.',
  timeout: 'The stranger went quiet for too long: the chat timed out.',
  shutdown: 'The server is shutting down: the chat ended.',
};

const PARTNERS: Record<string, string> = { human: 'a person', agent: 'an AI agent' };

export interface ViewActions {
  /** "Meet a stranger", "Next" and "Meet someone new". */
  meet(): void;
  leave(): void;
  /** Resolves true when the message was sent (the box is then emptied). */
  send(text: string): Promise<boolean>;
  serverToken(token: string): void;
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the window has no #${id}`);
  return found as T;
}

export class WindowView implements ChatView {
  readonly #app = element('app');
  readonly #status = element('status');
  readonly #tokenForm = element<HTMLFormElement>('token-form');
  readonly #tokenInput = element<HTMLInputElement>('token-input');
  readonly #intro = element('intro');
  readonly #log = element<HTMLOListElement>('log');
  readonly #notice = element('notice');
  readonly #composer = element<HTMLFormElement>('composer');
  readonly #message = element<HTMLTextAreaElement>('message');
  readonly #next = element<HTMLButtonElement>('next');
  readonly #leave = element<HTMLButtonElement>('leave');
  #shown: Phase['name'] | undefined;

  /** `focus`: move the keyboard focus to the message box when a chat begins (not inside a host: it would take it from the host's own input). */
  constructor(
    actions: ViewActions,
    private readonly focus: boolean,
  ) {
    element('start').addEventListener('click', () => actions.meet());
    this.#next.addEventListener('click', () => actions.meet());
    this.#leave.addEventListener('click', () => actions.leave());
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
  }

  show(phase: Phase): void {
    const entering = phase.name !== this.#shown;
    this.#shown = phase.name;
    this.#app.dataset.phase = phase.name;
    this.#status.textContent = statusOf(phase);
    this.#tokenForm.hidden = phase.name !== 'token';
    this.#intro.hidden = phase.name !== 'start';
    this.#composer.hidden = phase.name !== 'chatting';
    this.#next.hidden = !['waiting', 'chatting', 'ended'].includes(phase.name);
    this.#next.textContent = phase.name === 'ended' ? 'Meet someone new' : 'Next';
    this.#leave.hidden = !['waiting', 'chatting'].includes(phase.name);
    if (!entering) return;
    if (phase.name === 'chatting') {
      const about = phase.commonInterests?.length ? ` You both like: ${phase.commonInterests.join(', ')}.` : '';
      this.line('system', `You are chatting with ${PARTNERS[phase.partnerIs ?? ''] ?? 'a stranger'}. Say hello!${about}`);
      if (this.focus) this.#message.focus();
    } else if (phase.name === 'ended') {
      this.line('system', ENDED[phase.reason]);
    } else if (phase.name === 'token' && this.focus) {
      this.#tokenInput.focus();
    }
  }

  clear(): void {
    this.#log.replaceChildren();
  }

  line(from: 'me' | 'stranger' | 'system', text: string): void {
    const atEnd = this.#log.scrollHeight - this.#log.scrollTop - this.#log.clientHeight < 40;
    const item = document.createElement('li');
    item.className = from;
    item.textContent = text;
    this.#log.append(item);
    // Not scrollIntoView: inside a host it would scroll the host's page too.
    if (atEnd || from === 'me') this.#log.scrollTop = this.#log.scrollHeight;
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
    case 'chatting':
      return `Chatting with ${PARTNERS[phase.partnerIs ?? ''] ?? 'a stranger'}`;
    case 'ended':
      return 'Chat ended';
  }
}
