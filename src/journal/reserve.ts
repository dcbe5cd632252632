import { closeSync, existsSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';

/**
 * A file of zeros next to the journal, held while there is room and given back the moment the
 * disk fills, so that moving a cursor and deleting confirmed rows (which write the WAL too) still
 * work on a full filesystem. Written, not sparse: the blocks are really taken.
 */
export class SpaceReserve {
  constructor(
    private readonly path: string,
    private readonly bytes: number,
  ) {}

  get size(): number {
    return this.bytes;
  }

  /** Whether the reserve is held now (the file exists at full size). */
  get held(): boolean {
    if (this.bytes === 0) return true;
    try {
      return statSync(this.path).size >= this.bytes;
    } catch {
      return false;
    }
  }

  /** Takes the reserve; false when the filesystem has no room for it (nothing is left behind then). */
  hold(): boolean {
    if (this.bytes === 0 || this.held) return true;
    const chunk = Buffer.alloc(Math.min(this.bytes, 64 * 1024));
    let fd: number | null = null;
    try {
      fd = openSync(this.path, 'w');
      for (let at = 0; at < this.bytes; at += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, this.bytes - at), at);
      closeSync(fd);
      return true;
    } catch {
      if (fd !== null) closeSync(fd);
      this.release();
      return false;
    }
  }

  /** Gives the reserve back to the filesystem. Returns whether there was one to give. */
  release(): boolean {
    if (this.bytes === 0 || !existsSync(this.path)) return false;
    try {
      unlinkSync(this.path);
      return true;
    } catch {
      return false;
    }
  }
}
