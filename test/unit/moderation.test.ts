import { describe, expect, it } from 'vitest';
import { ADDRESS_KEPT_MS, memoryModeration } from '../../src/chat/moderation.js';
import { describeModerationContract } from './moderationContract.js';

describeModerationContract('memoryModeration', async (now) => memoryModeration({ now }));

describe('memoryModeration: addresses', () => {
  it('forgets the address a user was made from a day later', async () => {
    let clock = 0;
    const moderation = memoryModeration({ now: () => clock });
    moderation.noteAddress('p.user-1', '198.51.100.1');
    clock += ADDRESS_KEPT_MS - 1;
    expect(await moderation.addressOf('p.user-1')).toBe('198.51.100.1');
    clock += 1;
    expect(await moderation.addressOf('p.user-1')).toBeUndefined();
  });
});
