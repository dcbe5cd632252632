import { execFileSync } from 'node:child_process';
import { mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Real small filesystems (tmpfs, mounted as root) for journals that must run out of disk: a full
 * disk is only real when the kernel says ENOSPC. Every mount is lazily unmounted after the file's
 * tests, or earlier by `unmountAll`.
 */
export class SmallDisks {
  private readonly mounts: string[] = [];

  constructor(private readonly base: string) {
    after(() => this.unmountAll());
  }

  /** A fresh tmpfs of `sizeMb` MiB at `<base>/<name>`. */
  mount(name: string, sizeMb: number): string {
    const dir = join(this.base, name);
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`this test needs a real small filesystem and could not mount a ${sizeMb} MiB tmpfs at ${dir} (run as root): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
    }
    this.mounts.push(dir);
    return dir;
  }

  unmountAll(): void {
    for (const m of this.mounts.splice(0)) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  }
}

/** Writes a file of zeros taking all but `leaveBytes` of the free space on `dir`'s filesystem; returns its path. */
export function fillDisk(dir: string, leaveBytes: number, name = 'filler'): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(Math.max(0, freeBytes(dir) - leaveBytes)));
  return path;
}
