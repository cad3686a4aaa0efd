export * from './errors.js';
export * from './header-names.js';
export * from './header-values.js';
export * from './lws.js';
export * from './message.js';
export * from './parser.js';
export * from './response.js';
export * from './uri.js';
