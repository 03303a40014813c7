import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { listen } from '../../src/http/listen.js';
import { createChatServer } from '../../src/server.js';
import { ChatClient } from '../support/chatClient.js';
import { health } from '../support/server.js';

describe('a broker that fails', () => {
  it('is reported by /healthz (503, "failed") and new sessions are refused, instead of waiting forever behind "ok"', async () => {
    // Every room gets the same id, so the second room cannot be registered: the queue actor fails.
    const broker = memoryBroker({ newId: () => 'always-the-same' });
    const server = await listen(await createChatServer({ config: { host: '127.0.0.1', port: 0 }, broker, log: pino({ level: 'silent' }) }));
    try {
      const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => ChatClient.connect(server.url)));
      await a!.call('enter_queue');
      expect(await b!.call('enter_queue')).toMatchObject({ status: 'matched' });
      expect((await health(server)).status).toBe('ok');
      await c!.call('enter_queue');
      await d!.call('enter_queue').catch(() => {});

      const response = await fetch(new URL('/healthz', server.url));
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: 'failed' });
      await expect(ChatClient.connect(server.url)).rejects.toThrow(/cannot pair anyone/);
      await Promise.all([a, b, c, d].map((client) => client!.client.close()));
    } finally {
      await server.close();
    }
  });
});
