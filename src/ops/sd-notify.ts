import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

/** Sends one sd_notify message (`READY=1`, `WATCHDOG=1`…); resolves when it was handed over. */
export type NotifySender = (fields: string[]) => Promise<void>;

/**
 * Speaks systemd's notify protocol through `systemd-notify`, which ships with systemd itself.
 * Node has no Unix datagram sockets, and the npm packages that add them are native addons to
 * build on every Pi. Since systemd 246, `systemd-notify` waits until the service manager has
 * processed the message (sd_notify_barrier), so the old race — systemd could not attribute a
 * message whose sender had already exited, even with NotifyAccess=all — is gone.
 */
export function systemdNotifySender(socket: string, bin = 'systemd-notify'): NotifySender {
  return (fields) =>
    new Promise((resolve, reject) => {
      execFile(bin, fields, { env: { ...process.env, NOTIFY_SOCKET: socket }, timeout: 10000 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`${bin} ${fields.join(' ')} failed: ${stderr.trim() || err.message}`));
        else resolve();
      });
    });
}

/** The unit's status line (`systemctl status`: "Status:"): every kind of source counts. */
export function forwardingStatus(counts: { mqtt: number; serial: number; sinks: number }): string {
  return `forwarding: ${counts.mqtt + counts.serial} source(s), ${counts.sinks} sink(s)`;
}

export interface NotifierOptions {
  /** $NOTIFY_SOCKET; without it the notifier does nothing (not run by systemd). */
  socket?: string;
  /** $WATCHDOG_USEC: the unit's WatchdogSec in microseconds. */
  watchdogUsec?: string;
  /** $WATCHDOG_PID: the watchdog is for this process only. */
  watchdogPid?: string;
  logger: Logger;
  /** Default: `systemd-notify`. */
  send?: NotifySender;
  /** Checked before each watchdog ping; a false answer skips the ping, and systemd restarts sluice. */
  alive?: () => boolean;
}

/**
 * READY=1 after start, WATCHDOG=1 at half the watchdog interval, STOPPING=1 on shutdown. The
 * watchdog ping is sent from a timer on the event loop: if the loop is wedged, no ping leaves, and
 * systemd restarts the service.
 */
export class SdNotifier {
  private timer: NodeJS.Timeout | null = null;
  private failedOnce = false;
  private readonly send: NotifySender | null;

  constructor(private readonly opts: NotifierOptions) {
    this.send = opts.socket ? (opts.send ?? systemdNotifySender(opts.socket)) : null;
  }

  get enabled(): boolean {
    return this.send !== null;
  }

  /** Milliseconds between watchdog pings, or null when systemd asked for none. */
  get watchdogIntervalMs(): number | null {
    const usec = Number(this.opts.watchdogUsec);
    if (!this.send || !Number.isFinite(usec) || usec <= 0) return null;
    if (this.opts.watchdogPid && Number(this.opts.watchdogPid) !== process.pid) return null;
    return Math.max(1, Math.floor(usec / 2000));
  }

  async ready(status?: string): Promise<void> {
    await this.notify(['READY=1', ...(status ? [`STATUS=${status}`] : [])]);
    const every = this.watchdogIntervalMs;
    if (every !== null && !this.timer) {
      this.timer = setInterval(() => {
        if (this.opts.alive && !this.opts.alive()) {
          this.opts.logger.error('watchdog: the gateway is not healthy; withholding WATCHDOG=1 so systemd restarts it');
          return;
        }
        void this.notify(['WATCHDOG=1']);
      }, every);
      this.opts.logger.info({ everyMs: every }, 'systemd watchdog pings started');
    }
  }

  async status(text: string): Promise<void> {
    await this.notify([`STATUS=${text}`]);
  }

  /** Until the next `ready()`, systemd shows the unit as reloading. */
  async reloading(): Promise<void> {
    // process.hrtime is CLOCK_MONOTONIC on Linux, which is what systemd compares against.
    await this.notify(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`]);
  }

  async stopping(): Promise<void> {
    this.stopWatchdog();
    await this.notify(['STOPPING=1']);
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async notify(fields: string[]): Promise<void> {
    if (!this.send) return;
    try {
      await this.send(fields);
      if (this.failedOnce) this.opts.logger.info('sd_notify works again');
      this.failedOnce = false;
    } catch (err) {
      if (!this.failedOnce) this.opts.logger.warn({ err: (err as Error).message }, 'sd_notify failed (logged once until it works again)');
      this.failedOnce = true;
    }
  }
}
