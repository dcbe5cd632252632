import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';

const MAGIC = 'sluice-hwm 1 ';
const WIDTH = 20;

/**
 * The highest seq ever committed, kept in a small file beside the journal and outside its WAL:
 * if the WAL is lost while sluice is down (deleted, or not restored with the database), the
 * journal opens without its last commits and says nothing; this mark says which seqs went.
 * It is overwritten in place after every commit without fsync: the bytes reach the page cache at
 * once (enough for a kill -9) and the flash only at the kernel's writeback, one block per few
 * seconds however many commits there were. Its presence also marks the journal file as ours.
 */
export class HighWaterMark {
  private fd: number | null = null;
  private last = -1;

  constructor(readonly path: string) {}

  /** The mark left by the last run, or null when there is none (or it is not ours). */
  read(): number | null {
    return readMark(this.path);
  }

  /** Records that every seq up to `seq` was committed. */
  write(seq: number): void {
    if (seq <= this.last) return;
    this.fd ??= openSync(this.path, existsSync(this.path) ? 'r+' : 'w');
    const text = `${MAGIC}${String(seq).padStart(WIDTH, '0')}\n`;
    writeSync(this.fd, text, 0, 'latin1');
    this.last = seq;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads a mark file; null when absent or not a mark sluice wrote. */
export function readMark(path: string): number | null {
  try {
    const text = readFileSync(path, 'latin1');
    if (!text.startsWith(MAGIC)) return null;
    const n = Number(text.slice(MAGIC.length, MAGIC.length + WIDTH));
    return Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}
