// An agent on the AI SDK's MCP client 2.x (which needs Node 22: the test runs this file
// on the Node 22 binary). It calls the tools through the objects the AI SDK hands a
// model, and prints one JSON line per step on stdout, plus every request's protocol
// version and every HTTP status, so the test can tell it never fell back to 2025.
import { createMCPClient } from '@ai-sdk/mcp-v2';

const url = process.argv[2];
const seen = { versions: [], statuses: [], methods: [] };
const fetchSeen = async (input, init) => {
  const headers = new Headers(init?.headers);
  seen.versions.push(headers.get('mcp-protocol-version'));
  try {
    seen.methods.push(JSON.parse(String(init?.body ?? '{}')).method ?? null);
  } catch {
    seen.methods.push(null);
  }
  const response = await fetch(input, init);
  seen.statuses.push(response.status);
  return response;
};
const say = (step, data) => process.stdout.write(`${JSON.stringify({ step, ...data })}\n`);
const client = await createMCPClient({ transport: { type: 'http', url, fetch: fetchSeen } });
const tools = await client.tools();
const run = async (name, input) => {
  const output = await tools[name].execute(input, { toolCallId: `${name}-${Date.now()}`, messages: [] });
  return output.structuredContent ?? JSON.parse(output.content[0].text);
};
const entered = await run('enter_queue', {});
say('entered', { entered });
const token = entered.user_token;
let cursor = '0';
const found = await run('wait_for_events', { user_token: token, after: cursor, timeout_s: 20 });
cursor = found.cursor;
say('found', { events: found.events });
const room = found.events[0].params.room_id;
await run('send_message', { user_token: token, room_id: room, message: 'hello from the AI SDK on 2026-07-28' });
const heard = await run('wait_for_events', { user_token: token, after: cursor, timeout_s: 20 });
say('heard', { events: heard.events });
await run('leave_chat', { user_token: token });
await client.close();
say('done', { seen });
