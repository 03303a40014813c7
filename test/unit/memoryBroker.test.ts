import { memoryBroker } from '../../src/broker/memoryBroker.js';
import { describeBrokerContract } from './brokerContract.js';

describeBrokerContract('memoryBroker', () => memoryBroker());
