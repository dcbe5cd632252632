import { readFileSync } from 'node:fs';

/**
 * Bytes this process caused to be written to storage, from /proc/self/io (`write_bytes`). Null
 * where /proc has no io file (not Linux, or a kernel without task I/O accounting). The kernel adds
 * the writes of reaped children to it, and it survives exec: started by a shell that ran `npm ci`
 * and `tsc` first, it begins at hundreds of MB. `WriteCounter` subtracts a baseline for that.
 */
export function processWriteBytes(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | null {
  try {
    const m = /^write_bytes:\s*(\d+)/m.exec(read('/proc/self/io'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * What sluice itself wrote to storage (the flash-wear figure): `write_bytes` now minus its value
 * when the counter was made, at daemon start. The journal is sluice's only writer (its children,
 * systemd-notify, write nothing), so this is what it costs the SD card.
 */
export class WriteCounter {
  private readonly baseline: number | null;

  constructor(private readonly read: () => number | null = () => processWriteBytes()) {
    this.baseline = read();
  }

  /** Bytes written since the baseline, or null where the platform does not say. */
  written(): number | null {
    const now = this.read();
    if (now === null || this.baseline === null) return null;
    return Math.max(0, now - this.baseline);
  }
}
