// Public API of the package: the server, its configuration and the SIP message layer.
export { SimplePresenceServer, type ServerOptions } from './server.js';
export { loadConfig, validateConfig, ConfigError, type Config } from './config/config.js';
export * from './sip/index.js';
