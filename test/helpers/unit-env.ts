import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './daemon.js';

/**
 * The NODE_OPTIONS the shipped systemd unit gives sluice, read from systemd/sluice.service so a
 * test or the bench that runs "as deployed" cannot drift from the unit.
 */
export function unitNodeOptions(): string {
  const unit = readFileSync(join(repoRoot, 'systemd/sluice.service'), 'utf8');
  const m = /^Environment="NODE_OPTIONS=([^"]*)"/m.exec(unit);
  if (!m) throw new Error('systemd/sluice.service sets no NODE_OPTIONS');
  return m[1]!;
}

/**
 * Every variable the shipped unit sets with Environment= (NODE_OPTIONS, MALLOC_ARENA_MAX, ...),
 * so a process run "as deployed" gets the unit's allocator and thread-pool settings too.
 * NODE_ENV is left out: tests and the bench choose their own.
 */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(join(repoRoot, 'systemd/sluice.service'), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment="?([A-Z_][A-Z0-9_]*)=([^"\n]*)"?$/gm)) if (m[1] !== 'NODE_ENV') env[m[1]!] = m[2]!;
  if (env.NODE_OPTIONS === undefined) throw new Error('systemd/sluice.service sets no NODE_OPTIONS');
  return env;
}

/** The unit's MemoryMax in bytes (K/M/G suffixes as systemd reads them). */
export function unitMemoryMaxBytes(): number {
  const unit = readFileSync(join(repoRoot, 'systemd/sluice.service'), 'utf8');
  const m = /^MemoryMax=(\d+)([KMG]?)$/m.exec(unit);
  if (!m) throw new Error('systemd/sluice.service sets no MemoryMax');
  return Number(m[1]) * 1024 ** ' KMG'.indexOf(m[2] || ' ');
}

/** Peak resident memory (VmHWM) of a live process, bytes. */
export function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}
