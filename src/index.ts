// Public API of the package: the server, its configuration and the SIP message layer.
export { SimplePresenceServer, type ServerOptions } from './server.js';
export { loadConfig, validateConfig, ConfigError, type Config } from './config/config.js';
export * from './sip/index.js';
// Client roles (PUA, WUA, pager, registration) on the same stack, and the presence types they report.
export * from './ua/index.js';
export { summarizePresence, parsePidf, type PresenceDocument, type PresenceSummary } from './presence/pidf/index.js';
export type { WatcherInfoDocument, Watcher, WatcherList } from './presence/winfo/watcherinfo-document.js';
