import type { LevelWithSilent } from 'pino';
import { errorMessage, SluiceError } from '../errors.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../util/logger.js';
import { ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadOrReport } from './load-or-report.js';

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** `sluice run`: the foreground daemon. Resolves when it has stopped (or never, until a signal). */
export async function runDaemon(configPath: string, opts: { logLevel?: string }, io: CliIo): Promise<void> {
  const config = loadOrReport(configPath, io);
  if (!config) return io.exit(ExitCode.config);
  const level = (opts.logLevel ?? config.log.level) as LevelWithSilent;
  const logger = createLogger(level, config.gateway.id, io.stdout);
  const gateway = new Gateway(config, { logger });

  let signals = 0;
  let removeHandlers = (): void => undefined;
  const stopped = new Promise<void>((resolve) => {
    removeHandlers = io.onSignal(['SIGINT', 'SIGTERM'], (signal) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting now (the journal stays consistent)');
        logger.flush();
        io.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
        return;
      }
      logger.info({ signal }, 'stopping');
      void gateway.stop().then((clean) => {
        logger.info('stopped');
        logger.flush();
        removeHandlers();
        io.exit(clean ? ExitCode.ok : ExitCode.failure);
        resolve();
      });
    });
  });

  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof SluiceError ? err.code : undefined;
    logger.fatal({ code, err: errorMessage(err) }, 'cannot start');
    io.stderr.write(`sluice: cannot start: ${errorMessage(err)}\n`);
    await gateway.stop();
    logger.flush();
    removeHandlers();
    return io.exit(ExitCode.failure);
  }
  await stopped;
}
