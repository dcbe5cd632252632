import { Backoff } from '../../util/backoff.js';
import type { Clock } from '../../util/clock.js';

export type LinkState = 'idle' | 'opening' | 'open' | 'lost';

export interface ReopenerOptions {
  initialMs: number;
  maxMs: number;
  clock: Clock;
  /** Opens the port or connection; rejects when it cannot. */
  open: () => Promise<void>;
  /** Called at the first failure of an outage (once per outage). */
  onLost: (err: Error, how: string) => void;
  /** Called when the link is open; `outage` when this ends one. */
  onOpen: (outage: { downMs: number; attempts: number } | null) => void;
}

/**
 * Keeps a serial port or TCP connection open: a failed open or a lost link is retried with
 * backoff forever, reported once when the outage begins and once when it ends. The first attempt
 * is awaited by start(); a missing device is not an error at start.
 */
export class Reopener {
  private current: LinkState = 'idle';
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private lostAt: number | null = null;
  private attempts = 0;
  private opening: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ReopenerOptions) {
    this.backoff = new Backoff({ initialMs: opts.initialMs, maxMs: opts.maxMs });
  }

  get state(): LinkState {
    return this.current;
  }

  start(): Promise<void> {
    if (this.current !== 'idle') return this.opening;
    this.stopping = false;
    return this.attempt();
  }

  private attempt(): Promise<void> {
    this.current = 'opening';
    this.opening = this.opts.open().then(
      () => {
        if (this.stopping) return;
        this.current = 'open';
        this.backoff.reset();
        const outage = this.lostAt === null ? null : { downMs: this.opts.clock.now() - this.lostAt, attempts: this.attempts };
        this.lostAt = null;
        this.attempts = 0;
        this.opts.onOpen(outage);
      },
      (err: unknown) => {
        if (this.stopping) return;
        this.attempts++;
        this.fail(err instanceof Error ? err : new Error(String(err)), 'cannot open');
      },
    );
    return this.opening;
  }

  /** The link went away (closed, unplugged, reset): reopen with backoff. */
  lost(err: Error, how: string): void {
    if (this.stopping || this.current === 'lost' || this.current === 'idle') return;
    this.fail(err, how);
  }

  private fail(err: Error, how: string): void {
    this.current = 'lost';
    if (this.lostAt === null) {
      this.lostAt = this.opts.clock.now();
      this.opts.onLost(err, how);
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopping) void this.attempt();
    }, this.backoff.next());
  }

  /** No more attempts; waits for one in progress. The caller closes the link itself. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.opening;
    this.current = 'idle';
  }
}
