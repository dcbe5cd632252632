import { readFileSync } from 'node:fs';
import type { LevelWithSilent, Logger } from 'pino';
import { configErrorLines, loadConfigFile, type Config } from '../config/load.js';
import { readRegularFile } from '../config/tls-files.js';
import { errorMessage, SluiceError } from '../errors.js';
import { Gateway, logReload } from '../gateway.js';
import { forwardingStatus, SdNotifier } from '../ops/sd-notify.js';
import { fileDrivenTime, TEST_CLOCK_ENV } from '../time/test-clock.js';
import { createLogSetup } from '../util/logger.js';
import { ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';
import { lastResortHandler } from './last-resort.js';
import { loadOrReport } from './load-or-report.js';

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** `sluice run`: the foreground daemon. Resolves when it has stopped (or never, until a signal). */
export async function runDaemon(configPath: string, opts: { logLevel?: string }, io: CliIo): Promise<void> {
  const config = loadOrReport(configPath, io);
  if (!config) return io.exit(ExitCode.config);
  const level = (opts.logLevel ?? config.log.level) as LevelWithSilent;
  const logs = createLogSetup({ level, gatewayId: config.gateway.id, destination: io.stdout, format: config.log.format });
  const logger = logs.logger;
  const testClock = io.env[TEST_CLOCK_ENV] ? fileDrivenTime(io.env[TEST_CLOCK_ENV]) : null;
  if (testClock) logger.warn({ file: io.env[TEST_CLOCK_ENV] }, `${TEST_CLOCK_ENV} is set: the wall clock and its sync state come from a test file`);
  const time = testClock ? { clock: testClock.sources.wall, timeSources: testClock.sources, syncReader: testClock.syncReader } : {};
  const gateway = new Gateway(config, { logger, setLogLevel: logs.setLevel, logLevelOverride: opts.logLevel, tap: logs.tap, configPath, version: packageVersion(), ...time });
  const notifier = new SdNotifier({
    socket: io.env.NOTIFY_SOCKET,
    watchdogUsec: io.env.WATCHDOG_USEC,
    watchdogPid: io.env.WATCHDOG_PID,
    logger: logger.child({ component: 'systemd' }),
    alive: () => gateway.journalOpen,
  });

  let signals = 0;
  let removeHandlers = (): void => undefined;
  let removeHup = (): void => undefined;
  let removeLastResort = (): void => undefined;
  /** An uncaught exception asked for the stop: exit with ExitCode.internal however clean it was. */
  let failed = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      void notifier.stopping();
      void gateway.stop().then((clean) => {
        logger.info('stopped');
        logger.flush();
        removeHandlers();
        removeHup();
        removeLastResort();
        io.exit(failed ? ExitCode.internal : clean ? ExitCode.ok : ExitCode.failure);
        resolve();
      });
    };
    removeHandlers = io.onSignal(['SIGINT', 'SIGTERM'], (signal) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting now (the journal stays consistent)');
        logger.flush();
        io.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
        return;
      }
      logger.info({ signal }, 'stopping');
      stop();
    });
    removeLastResort =
      io.onUncaught?.(
        lastResortHandler({
          logger,
          metrics: gateway.metrics,
          fail: () => {
            failed = true;
            if (signals++ > 0) return; // already stopping: the stop under way exits
            stop();
          },
        }),
      ) ?? removeLastResort;
  });
  // Registered before start, so an early SIGHUP is not fatal (Node's default action for it).
  let started = false;
  let reloadWanted = false;
  removeHup = io.onSignal(['SIGHUP'], () => {
    if (signals > 0) return;
    if (!started) {
      reloadWanted = true;
      return;
    }
    void reloadFromFile(configPath, io, gateway, notifier, logger);
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
    removeHup();
    removeLastResort();
    return io.exit(code === 'SLUICE_JOURNAL_NOT_OURS' ? ExitCode.journalNotOurs : ExitCode.failure);
  }
  started = true;
  if (signals === 0) {
    await notifier.ready(statusText(gateway));
    if (reloadWanted) void reloadFromFile(configPath, io, gateway, notifier, logger);
  }
  await stopped;
}

/**
 * SIGHUP: re-reads the config file. An invalid file is refused with every problem logged, and the
 * running config stays; a valid one is applied by `Gateway.reload`.
 */
async function reloadFromFile(path: string, io: CliIo, gateway: Gateway, notifier: SdNotifier, logger: Logger): Promise<void> {
  logger.info({ path }, 'SIGHUP: reloading the config');
  await notifier.reloading();
  let next: Config;
  try {
    next = loadConfigFile(path, { env: io.env, readFile: readRegularFile });
  } catch (err) {
    const errors = err instanceof SluiceError ? configErrorLines(err) : [errorMessage(err)];
    logger.error({ path, errors }, 'config reload refused: the new file is invalid; the running config stays in effect');
    gateway.noteReload(false, errors, []);
    await notifier.ready(`${statusText(gateway)}; last reload refused: invalid config`);
    return;
  }
  try {
    const outcome = await gateway.reload(next);
    logReload(logger, outcome);
    gateway.noteReload(true, [], outcome.changed);
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'config reload failed part-way; restart sluice to apply the file');
    gateway.noteReload(false, [errorMessage(err)], []);
  }
  // Sources and sinks may have been added or removed.
  await notifier.ready(statusText(gateway));
}

function statusText(gateway: Gateway): string {
  return forwardingStatus({ mqtt: gateway.sources.length, serial: gateway.serialSources.length + gateway.modbusSources.length, sinks: gateway.sinks.length });
}
