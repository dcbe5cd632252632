import { readFileSync } from 'node:fs';

/**
 * Bytes this process caused to be written to storage, from /proc/self/io (`write_bytes`). The
 * journal is sluice's only writer, so this is what it costs the SD card. Null where /proc has
 * no io file (not Linux, or a kernel without task I/O accounting).
 */
export function processWriteBytes(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | null {
  try {
    const m = /^write_bytes:\s*(\d+)/m.exec(read('/proc/self/io'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
