import { pino, type Logger, type LevelWithSilent } from 'pino';
import { LogTap } from './log-tap.js';
import { prettyLine } from './pretty-log.js';

export type LogFormat = 'auto' | 'json' | 'pretty';

/** The root logger plus what the daemon needs to steer it at run time. */
export interface LogSetup {
  logger: Logger;
  /** Sets the level of the root logger and of every child made from it (pino children keep their own level). */
  setLevel(level: LevelWithSilent): void;
  /** Remembers the last warning or error of each component, for `sluice status`. */
  tap: LogTap;
}

/**
 * JSON lines on stdout (for journald), or one readable line per entry when asked or when stdout
 * is a terminal. One root logger per gateway, children per component.
 */
export function createLogger(level: LevelWithSilent, gatewayId: string, destination: NodeJS.WritableStream = process.stdout, format: LogFormat = 'json'): Logger {
  return createLogSetup({ level, gatewayId, destination, format }).logger;
}

export function createLogSetup(opts: { level: LevelWithSilent; gatewayId: string; destination?: NodeJS.WritableStream; format?: LogFormat }): LogSetup {
  const out = opts.destination ?? process.stdout;
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && (out as NodeJS.WriteStream).isTTY === true);
  const tap = new LogTap();
  const stream = {
    write(line: string): void {
      tap.observe(line);
      out.write(pretty ? prettyLine(line) : line);
    },
  };
  const children = new Set<WeakRef<Logger>>();
  const logger = pino(
    {
      level: opts.level,
      base: { gateway: opts.gatewayId },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: secrets are Secret objects that print as [redacted], but never let a
      // password-like field through even if someone logs a raw options object.
      redact: { paths: ['password', '*.password', '*.*.password', 'sasl.password', 'key', '*.key'], censor: '[redacted]' },
      onChild: (child) => {
        if (children.size > 1000) for (const ref of children) if (!ref.deref()) children.delete(ref);
        children.add(new WeakRef(child));
      },
    },
    stream as pino.DestinationStream,
  );
  return {
    logger,
    tap,
    setLevel(level) {
      logger.level = level;
      for (const ref of children) {
        const child = ref.deref();
        if (child) child.level = level;
        else children.delete(ref);
      }
    },
  };
}
