import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { UncaughtKind } from './io.js';

/*
 * The last line of defence: an error that no code caught. Node would print a raw stack trace on
 * stderr and exit 1. Instead it is logged once (per kind and message) as one structured line with
 * its reason and where it came from, and counted (`sluice_uncaught_errors_total{kind}`). A
 * rejected promise nobody awaited leaves no half-done work behind it, so sluice carries on; an
 * exception that unwound through code may have left state half-changed, so sluice stops cleanly
 * (the journal commits and acknowledges what it took) and exits with ExitCode.internal, and systemd
 * starts it again from what is on disk — the path every kill -9 test already proves.
 */

export interface LastResortDeps {
  logger: Logger;
  metrics: Metrics;
  /** Clean stop and exit, for an uncaught exception. */
  fail: (reason: string) => void;
}

/** Where an error was raised: the first frame of its stack, one line (never the whole trace). */
function origin(err: unknown): string | undefined {
  const stack = err instanceof Error ? err.stack : undefined;
  const frame = stack?.split('\n').find((l) => /^\s+at /.test(l));
  return frame?.trim().slice(0, 300);
}

function reasonOf(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > 500 ? `${text.slice(0, 500)}… (${text.length} characters)` : text;
}

export function lastResortHandler(deps: LastResortDeps): (err: unknown, kind: UncaughtKind) => void {
  const logged = new Set<string>();
  return (err, kind) => {
    const reason = reasonOf(err);
    deps.metrics.inc('sluice_uncaught_errors_total', { kind });
    const key = `${kind}\u0000${reason}`;
    if (!logged.has(key) && logged.size < 100) {
      logged.add(key);
      const code = (err as { code?: unknown } | null)?.code;
      if (kind === 'unhandledRejection') deps.logger.error({ kind, reason, code, where: origin(err) }, 'internal error: a promise was rejected and nothing handled it; carrying on (logged once, counted in sluice_uncaught_errors_total)');
      else deps.logger.fatal({ kind, reason, code, where: origin(err) }, 'internal error nothing caught; stopping cleanly so systemd restarts sluice from the journal');
    }
    if (kind === 'uncaughtException') deps.fail(reason);
  };
}
