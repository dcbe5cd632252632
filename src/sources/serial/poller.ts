import type { Logger } from 'pino';

export interface PollerOptions {
  request: Buffer;
  intervalMs: number;
  /** Below intervalMs (the config checks it), so one request is outstanding at a time. */
  timeoutMs: number;
  logger: Logger;
  /** Counts a request that got no response in time. */
  onTimeout: () => void;
}

/** Writes one request to the port; errors are reported by the port itself. */
export type PollWrite = (request: Buffer) => void;

/**
 * Polls a sensor that only talks when asked: writes the request every interval while the port is
 * open and waits up to the timeout for the first frame of the answer. All timers, no waiting in
 * line: a silent sensor never holds up another port. A silence is logged once per outage.
 */
export class Poller {
  private write: PollWrite | null = null;
  private interval: NodeJS.Timeout | null = null;
  private timeout: NodeJS.Timeout | null = null;
  private silent = false;
  private misses = 0;

  constructor(private readonly opts: PollerOptions) {}

  /** The port opened: poll now and every interval. */
  attach(write: PollWrite): void {
    this.detach();
    this.write = write;
    this.interval = setInterval(() => this.poll(), this.opts.intervalMs);
    this.poll();
  }

  /** The port closed (or sluice stops): no more requests until it opens again. */
  detach(): void {
    if (this.interval) clearInterval(this.interval);
    if (this.timeout) clearTimeout(this.timeout);
    this.interval = null;
    this.timeout = null;
    this.write = null;
  }

  /** A frame arrived: it answers the outstanding request, if any. */
  frameArrived(): void {
    if (!this.timeout) return;
    clearTimeout(this.timeout);
    this.timeout = null;
    if (this.silent) {
      this.opts.logger.info({ missedPolls: this.misses }, 'polled sensor responding again');
      this.silent = false;
      this.misses = 0;
    }
  }

  private poll(): void {
    if (!this.write) return;
    if (this.timeout) clearTimeout(this.timeout);
    this.timeout = setTimeout(() => this.missed(), this.opts.timeoutMs);
    this.write(this.opts.request);
  }

  private missed(): void {
    this.timeout = null;
    this.misses++;
    this.opts.onTimeout();
    if (!this.silent) {
      this.silent = true;
      this.opts.logger.warn({ timeoutMs: this.opts.timeoutMs, intervalMs: this.opts.intervalMs }, 'polled sensor did not respond in time; polling on (logged once per outage, every miss counted in sluice_serial_poll_timeouts_total)');
    }
  }
}
