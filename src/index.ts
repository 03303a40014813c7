export { createChatServer, type ChatServer, type ChatServerOptions } from './server.js';
export { listen, type RunningChatServer } from './http/listen.js';
export { memoryBroker } from './chat/broker/memoryBroker.js';
export type { ChatBroker, Delivery, BrokerStats } from './chat/broker.js';
export { loadConfig, defaultConfig, type ChatConfig } from './config.js';
export { CHAT_NOTIFICATION_METHODS, type ChatNotification } from './mcp/notifications.js';
