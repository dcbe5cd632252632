import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Whether the system clock is known to be set from a time source (NTP, GPS, an RTC). */
export type SyncState = 'synced' | 'unsynced' | 'unknown';

export interface SyncReading {
  state: SyncState;
  /** What said so: "systemd-timesyncd", "timedatectl", "assumed", or why nothing could. */
  via: string;
}

/** Reads the clock's sync state; called on sluice's clock tick, never per record. */
export interface SyncReader {
  read(): Promise<SyncReading>;
}

export type SyncSource = 'auto' | 'timesyncd' | 'timedatectl' | 'assume_synced';

/** systemd-timesyncd creates this file (on tmpfs, so gone at every boot) once it has set the clock. */
export const TIMESYNCD_FILE = '/run/systemd/timesync/synchronized';

export interface SyncReaderDeps {
  exists?: (path: string) => boolean;
  /** Runs `timedatectl show -p NTPSynchronized --value`; resolves its stdout. */
  timedatectl?: () => Promise<string>;
  /** Monotonic ms, for pacing timedatectl. */
  mono: () => number;
}

function runTimedatectl(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 3000 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout))));
  });
}

/**
 * The sync state, read the cheapest way that works:
 * - "timesyncd": the file systemd-timesyncd writes at its first sync (a stat per tick);
 * - "timedatectl": the kernel's own verdict (adjtimex: STA_UNSYNC clear and the error bound small),
 *   which chrony and ntpd set too; it spawns a process, so at most once per `pollMs`;
 * - "auto": the file when it is there, else timedatectl; neither readable → "unknown";
 * - "assume_synced": for a board with a battery clock or a source sluice cannot read.
 */
export function createSyncReader(source: SyncSource, pollMs: number, deps: SyncReaderDeps): SyncReader {
  const exists = deps.exists ?? existsSync;
  const timedatectl = deps.timedatectl ?? runTimedatectl;
  let last: SyncReading | null = null;
  let lastAt = -Infinity;
  const viaTimedatectl = async (): Promise<SyncReading> => {
    const now = deps.mono();
    if (last && now - lastAt < pollMs) return last;
    lastAt = now;
    try {
      const out = (await timedatectl()).trim();
      last = out === 'yes' ? { state: 'synced', via: 'timedatectl' } : out === 'no' ? { state: 'unsynced', via: 'timedatectl' } : { state: 'unknown', via: `timedatectl said "${out.slice(0, 40)}"` };
    } catch (err) {
      last = { state: 'unknown', via: `timedatectl failed: ${(err as Error).message.split('\n')[0]!.slice(0, 120)}` };
    }
    return last;
  };
  return {
    async read(): Promise<SyncReading> {
      if (source === 'assume_synced') return { state: 'synced', via: 'assumed (time.sync_source = "assume_synced")' };
      if (source === 'timedatectl') return viaTimedatectl();
      const file = exists(TIMESYNCD_FILE);
      if (file) return { state: 'synced', via: 'systemd-timesyncd' };
      if (source === 'timesyncd') return { state: 'unsynced', via: `systemd-timesyncd (${TIMESYNCD_FILE} absent)` };
      return viaTimedatectl();
    },
  };
}
