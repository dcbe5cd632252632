import type { Logger } from 'pino';
import type { CommitHook } from '../journal/commit-hook.js';
import type { Journal } from '../journal/journal.js';
import type { Clock } from '../util/clock.js';
import type { CommandStore, FinishedCommand } from './command-store.js';

/** The JSON payload of a result record (see README, "Downlink"). */
export interface ResultPayload {
  id: string;
  status: FinishedCommand['outcome'];
  target: string | null;
  reason: string | null;
  /** When it was delivered (the PUBACK/PUBCOMP, or the serial write drained), expired, rejected or failed; ms since the epoch. */
  time: number;
  received: number;
  attempts: number;
  gateway: string;
  downlink: string;
  /** Where the command was read: "<topic>/<partition>/<offset>". */
  kafka: string | null;
}

/**
 * Journals one result record per finished command, exactly once: the row says "result pending"
 * (result = 1) from the moment the outcome is decided; the record is appended, and the row is set
 * to "journaled" (result = 2) by this commit hook, in the very transaction that writes the record.
 * A kill -9 before that commit leaves both undone, and the next start appends the record again;
 * after it, both are done. Never none, never two.
 */
export class ResultEmitter implements CommitHook {
  /** Rows whose record was appended and awaits its commit. */
  private readonly appended = new Set<number>();
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: CommandStore,
    private readonly journal: Journal,
    private readonly opts: { source: string; topic: string; gatewayId: string; downlink: string },
    private readonly deps: { logger: Logger; clock: Clock },
  ) {}

  inCommit(): (() => void) | null {
    if (this.appended.size === 0) return null;
    const ns = [...this.appended];
    this.store.markResults(ns);
    return () => {
      for (const n of ns) this.appended.delete(n);
    };
  }

  /** Appends the records of every finished command not yet journaled (also those of the last run). */
  emitPending(): void {
    for (const f of this.store.pendingResults()) {
      if (this.appended.has(f.n)) continue;
      const payload: ResultPayload = { id: f.id, status: f.outcome, target: f.target, reason: f.reason, time: f.doneAt, received: f.received, attempts: f.attempts, gateway: this.opts.gatewayId, downlink: this.opts.downlink, kafka: f.origin };
      try {
        this.journal.append({ time: this.deps.clock.now(), source: this.opts.source, topic: this.opts.topic, key: f.id, payload: Buffer.from(JSON.stringify(payload)), headers: null });
      } catch (err) {
        // Journal full (or closed): the row stays pending and is tried again.
        this.deps.logger.warn({ err: (err as Error).message, id: f.id }, 'downlink: result record not journaled yet; trying again in 1 s');
        this.retry ??= setTimeout(() => {
          this.retry = null;
          this.emitPending();
        }, 1000);
        return;
      }
      this.appended.add(f.n);
    }
  }

  get pending(): number {
    return this.appended.size;
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }
}
