import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { describeBrokerContract } from './brokerContract.js';

describeBrokerContract('memoryBroker', () => memoryBroker());
