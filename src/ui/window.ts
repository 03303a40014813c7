/**
 * The chat window's entry point. One HTML file serves two ways (src/mcp/chatWindow.ts):
 * as the MCP Apps resource a host shows beside enter_queue and next, where every call
 * goes through the host; and as the page at `GET /`, marked with the endpoint it
 * speaks MCP to (`data-mcp-endpoint`), for a person in a browser.
 */
import { tabChatMemory } from './chatMemory.js';
import { Conversation } from './conversation.js';
import { HostLink } from './hostLink.js';
import { PageLink } from './pageLink.js';
import { loadPreferences, preferencesIn, savePreferences } from './preferences.js';
import { applyHostContext } from './theme.js';
import { type ViewActions, WindowView } from './view.js';

/** How long a window in a host waits for the result of the tool call that opened it. */
const TOOL_RESULT_PATIENCE_MS = 3_000;

const endpoint = document.documentElement.dataset.mcpEndpoint;
if (endpoint) startPage(endpoint);
else void startInHost();

/** The buttons and the forms, wired to a conversation; the preferences remembered for the tab. */
function actionsFor(chat: () => Conversation, onServerToken: (token: string) => void): ViewActions {
  return {
    meet: (preferences) => {
      savePreferences(preferences);
      void chat().meet(preferences);
    },
    next: () => void chat().meet(),
    leave: () => void chat().leave(),
    judge: (verdict) => chat().judge(verdict),
    send: (text) => chat().send(text),
    serverToken: onServerToken,
  };
}

/** The window's view, showing the preferences remembered for this tab. */
function viewFor(actions: ViewActions, focus: boolean): WindowView {
  const view = new WindowView(actions, focus);
  view.setPreferences(loadPreferences());
  return view;
}

function startPage(endpoint: string): void {
  document.documentElement.style.setProperty('--window-height', '100dvh');
  const link = new PageLink(endpoint);
  const view = viewFor(
    actionsFor(
      () => chat,
      (token): void => {
        link.setServerToken(token);
        // The token was asked for when the person tried to enter: enter now, or read on.
        if (chat.token === undefined) void chat.meet(view.preferences);
        else chat.resume();
      },
    ),
    true,
  );
  const chat: Conversation = new Conversation(link, view, tabChatMemory);
  // A reload goes back to the chat (or the line) the person was in, and reads on from its cursor.
  const saved = tabChatMemory.load();
  if (saved) chat.restore(saved);
  else chat.show({ name: 'start' });
  // Closing (or reloading) the tab leaves the chat, unless the page is back within the server's grace.
  window.addEventListener('pagehide', () => chat.leaveOnClose());
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) chat.resume();
  });
}

async function startInHost(): Promise<void> {
  let inputToken: string | undefined;
  const link: HostLink = new HostLink({
    toolInput: (args) => {
      if (typeof args.user_token === 'string') inputToken = args.user_token;
      // What the model asked for is what the person sees (and may change).
      const preferences = preferencesIn(args);
      chat.heard(preferences);
      view.setPreferences(preferences);
    },
    toolResult: (result) => {
      // A refused call (say, enter_queue while chatting) still names its user when the model passed a token.
      if (!chat.adopt(result) && inputToken !== undefined) chat.follow(inputToken);
    },
    context: (context) => applyHostContext(context),
    // Closing or scrolling away the window does not end the chat: the model may still be in it.
    teardown: () => chat.stop(),
  });
  const view = viewFor(
    actionsFor(
      () => chat,
      () => {},
    ),
    false,
  );
  const chat: Conversation = new Conversation(link, view);
  chat.show({ name: 'connecting' });
  try {
    await link.connect();
  } catch (error) {
    chat.view.notice(`The host did not let the window in: ${(error as Error).message}`);
    return;
  }
  // Opened with no token (no tool result came): the person can enter on their own.
  setTimeout(() => {
    if (chat.token === undefined && chat.phase.name === 'connecting') chat.show({ name: 'start' });
  }, TOOL_RESULT_PATIENCE_MS);
}
