/**
 * The world over HTTP: a real mcp-chat on a loopback port chosen by the OS, and people
 * who are real MCP SDK clients (test/support/chatClient.ts), legacy HTTP+SSE clients,
 * per-call clients — or, to drive presence one link at a time, a session opened with
 * plain fetch whose GET stream is its one link. The server runs in this process, so a
 * replay may also read its actors (white box) besides what the clients observe.
 */
import pino from 'pino';
import type { InspectionEvent } from 'xstate';
import type { ChatConfig } from '../../src/config.js';
import { listen } from '../../src/http/listen.js';
import { createChatServer } from '../../src/server.js';
import { ActorDirectory } from './actorDirectory.js';
import { LegacyPerson } from './httpLegacyPerson.js';
import { RawPerson, type Shared, StreamPerson } from './httpPeople.js';
import { PerCallPerson } from './httpPerCallPerson.js';
import { eventually, type PersonOptions, type Timers, type World } from './world.js';

export interface HttpWorldOptions {
  timers: Timers;
  config?: Partial<ChatConfig>;
  /** Sees every inspection event of the server's actors (the coverage recorder). */
  inspect?: (event: InspectionEvent) => void;
}

export async function httpWorld({ timers, config, inspect }: HttpWorldOptions): Promise<World> {
  const actors = new ActorDirectory();
  const server = await listen(
    await createChatServer({
      config: {
        host: '127.0.0.1',
        port: 0,
        pairableMs: timers.pairableMs,
        idleTimeoutMs: timers.idleMs,
        graceMs: timers.graceMs,
        pageGraceMs: timers.pageGraceMs,
        interestWaitMs: timers.interestWaitMs,
        rematchAfterMs: timers.rematchAfterMs,
        ...config,
      },
      log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
      inspect: (event) => {
        actors.see(event);
        inspect?.(event);
      },
    }),
  );
  const shared: Shared = { server, stopped: false };
  const people: (StreamPerson | RawPerson | LegacyPerson | PerCallPerson)[] = [];

  const stop = async () => {
    if (shared.stopped) return;
    shared.stopped = true;
    await server.close();
  };

  const connect = (name: string, client: PersonOptions['client']) => {
    switch (client) {
      case 'sdk':
        return StreamPerson.connect(name, shared);
      case 'bare':
        return RawPerson.open(name, shared);
      case 'legacy':
        return LegacyPerson.connect(name, shared);
      case 'per-call':
        return Promise.resolve(new PerCallPerson(name, shared));
    }
  };

  return {
    kind: 'http',
    timers,
    async join(name: string, { client }: PersonOptions = { client: 'sdk' }) {
      const person = await connect(name, client);
      people.push(person);
      return person;
    },
    queue: () => actors.get('queue'),
    room: (roomId) => actors.room(roomId),
    async health() {
      const response = await fetch(new URL('/healthz', server.url));
      const body = (await response.json()) as { queue: number; actors: { users: number; rooms: number } };
      return { queue: body.queue, rooms: body.actors.rooms, users: body.actors.users };
    },
    async reports() {
      const text = await (await fetch(new URL('/metrics', server.url))).text();
      return Number(/^mcp_chat_reports_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
    },
    async shutdown() {
      // The clients stay open: what the server said last may still be on its way to them.
      await stop();
    },
    eventually,
    async close() {
      await Promise.all(people.map((person) => person.release()));
      await stop();
    },
  };
}
