/** Process exit codes; documented in the README. */
export const ExitCode = {
  ok: 0,
  /** Runtime failure: the journal could not be opened, a component could not start, the shutdown deadline passed. */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** The config file is missing, unreadable or invalid. */
  config: 3,
  /** `sluice status`: no daemon answers (not running, or its status endpoint is off). */
  notRunning: 4,
  /** `sluice status`: the daemon answers but is degraded or not ready. */
  degraded: 5,
  /** `journal.path` is not a sluice journal (a directory, a device, another program's file): refused, untouched. */
  journalNotOurs: 6,
  /** An error nothing caught (a bug): logged with its reason, then a clean stop; systemd restarts sluice. */
  internal: 70,
  /** Second SIGINT/SIGTERM during shutdown: 128 + the signal number (130, 143). */
} as const;
