import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

/**
 * One structured event a line on stdout (pino); `destination` lets tests keep logs quiet or
 * capture them. `pretty` renders the same events as coloured text for a person at a
 * terminal (the CLI sets it when stdout is a TTY); pipes and files keep JSON lines.
 */
export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream, options: { pretty?: boolean } = {}): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (destination) return pino(opts, destination);
  if (options.pretty) return pino(opts, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  return pino(opts);
}

export type { Logger };
