import type { CommitHook } from './commit-hook.js';
import type { CommitSidecar } from './journal.js';
import type { JournalStore } from './store.js';

/** Components' small state, written in the transaction of each group commit when it changed. */
export class Sidecars implements CommitHook {
  /** `written` is the version on disk. */
  private readonly entries = new Map<string, { sidecar: CommitSidecar; written: number | null }>();

  constructor(private readonly store: JournalStore) {}

  /** Keeps (or, with null, forgets) `sidecar` under `name`; returns what the last run committed for it. */
  set(name: string, sidecar: CommitSidecar | null): Buffer | null {
    if (sidecar) this.entries.set(name, { sidecar, written: null });
    else this.entries.delete(name);
    return this.store.readSidecar(name);
  }

  inCommit(): (() => void) | null {
    if (this.entries.size === 0) return null;
    const done: [{ written: number | null }, number][] = [];
    for (const [name, s] of this.entries) {
      const v = s.sidecar.version();
      if (v === s.written) continue;
      this.store.writeSidecar(name, s.sidecar.encode());
      done.push([s, v]);
    }
    return () => {
      for (const [s, v] of done) s.written = v;
    };
  }
}
