#!/usr/bin/env node
// The server as `simple-presence serve` starts it, but with the store off (all soft state in
// memory only): the "store off" figures the issue compares the store-on ones with.
// Usage (from bench/run-bench.py --store off): node bench/serve-memory.mjs [--config FILE]
import { parseArgs } from 'node:util';
import { loadConfig } from '../dist/src/config/config.js';
import { SimplePresenceServer } from '../dist/src/server.js';
import { createLogger } from '../dist/src/util/logger.js';

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
const config = loadConfig({ file: values.config });
const log = createLogger(config.log.level);
const server = new SimplePresenceServer(config, { logger: log, store: false, controlSocket: false });
const stop = () => server.stop().then(() => process.exit(0), () => process.exit(1));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await server.start();
