import { statfsSync } from 'node:fs';

/** Bytes available to an unprivileged writer on the filesystem holding `dir`; null if unknown. */
export function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}
