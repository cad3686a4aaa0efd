export * from './content-types.js';
export * from './fork.js';
export * from './memory-offline-store.js';
export * from './messaging-service.js';
export * from './offline-delivery.js';
export * from './offline-message-store.js';
export * from './response-choice.js';
export * from './repository-offline-store.js';
