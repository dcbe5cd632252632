import { readFileSync } from 'node:fs';
import type { SyncReader } from './sync-reader.js';
import { systemTimeSources, type TimeSources } from './time-sources.js';

/** Environment variable naming a test clock file; for tests only (a daemon run by a person never sets it). */
export const TEST_CLOCK_ENV = 'SLUICE_TEST_CLOCK_FILE';

/**
 * A wall clock and sync state driven by a file, so an end-to-end test can run the daemon on a
 * wrong clock and then "sync" it: `{"wall_offset_ms": -7200000, "synced": false}`. The file is
 * re-read every 20 ms (not per record); the monotonic and boot clocks stay the system's.
 */
export function fileDrivenTime(path: string): { sources: TimeSources; syncReader: SyncReader } {
  let offset = 0;
  let synced = false;
  const load = (): void => {
    try {
      const c = JSON.parse(readFileSync(path, 'utf8')) as { wall_offset_ms?: number; synced?: boolean };
      offset = Number(c.wall_offset_ms ?? 0);
      synced = c.synced === true;
    } catch {
      // a test writing the file: keep the last state
    }
  };
  load();
  setInterval(load, 20).unref();
  return {
    sources: { ...systemTimeSources, wall: { now: () => Date.now() + offset } },
    syncReader: { read: async () => (synced ? { state: 'synced', via: `test clock ${path}` } : { state: 'unsynced', via: `test clock ${path}` }) },
  };
}
