export { createChatServer, type ChatServer, type ChatServerOptions } from './app.js';
export { listen, type RunningChatServer } from './listen.js';
export { memoryBroker } from './broker/memoryBroker.js';
export type { ChatBroker, Delivery, BrokerStats } from './broker/port.js';
export { loadConfig, defaultConfig, type ChatConfig } from './config.js';
export { CHAT_NOTIFICATION_METHODS, type ChatNotification } from './notifications.js';
