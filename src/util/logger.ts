import { pino, type Logger, type LevelWithSilent } from 'pino';

/** One structured event a line on stdout (pino); `destination` lets tests keep logs quiet or capture them. */
export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}

export type { Logger };
