import type { Logger } from 'pino';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import type { CommandStore, Outcome, StoredCommand } from './command-store.js';
import type { PublishOutcome } from './mqtt-publisher.js';
import type { CommandRouter } from './router.js';

/** Ends a waiting command with its outcome (store, metrics, result record). */
export type Finish = (n: number, outcome: Outcome, reason: string | null, at?: number) => void;

/** How soon a pump looks again at a deadline that was already due and is still there. */
const PAST_WAKE_MS = 1000;

export interface DispatcherOptions {
  /** Attempts after the first when the broker refuses or a write fails. */
  retries: number;
  retryMinMs: number;
  retryMaxMs: number;
  /**
   * How long a serial write may take before its command ends `failed` (a port held by flow
   * control, a stuck driver), ms; default 10 s plus 2 ms per byte (4,800 baud and up).
   */
  serialWriteTimeoutMs?: (bytes: number) => number;
}

const serialWriteTimeout = (bytes: number): number => 10_000 + 2 * bytes;

/**
 * Delivers waiting commands: per target, the oldest first and one at a time (order per target),
 * never past its deadline (checked right before the PUBLISH or the write, and on a timer while it
 * waits). A destination that is away (broker disconnected, port closed) is not an attempt: its
 * commands wait until they expire. Commands in flight when the last run stopped are in the store's
 * outgoing table; MQTT.js sends them again on connect and their acknowledgement ends them here.
 */
export class Dispatcher {
  /** Commands in flight, by row, with their target. */
  private readonly inFlight = new Map<number, string>();
  /** Timeouts of the serial writes under way (cleared at stop: the store closes after). */
  private readonly writeTimers = new Set<NodeJS.Timeout>();
  private readonly busyTargets = new Set<string>();
  /** Per target, no new attempt before this time (a retry's backoff). */
  private readonly notBefore = new Map<string, { at: number; backoff: Backoff }>();
  private timer: NodeJS.Timeout | null = null;
  private scheduled: NodeJS.Immediate | null = null;
  private stopped = true;

  constructor(
    private readonly store: CommandStore,
    private readonly router: CommandRouter,
    private readonly finish: Finish,
    private readonly opts: DispatcherOptions,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {}

  start(): void {
    this.stopped = false;
    for (const n of this.store.inFlight()) {
      const c = this.store.get(n);
      if (c) this.take(n, c.target);
    }
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.writeTimers) clearTimeout(t);
    this.writeTimers.clear();
    if (this.timer) clearTimeout(this.timer);
    if (this.scheduled) clearImmediate(this.scheduled);
    this.timer = null;
    this.scheduled = null;
  }

  /** The commands in flight now (by row), also those only this dispatcher knows of (a serial write). */
  get inFlightRows(): ReadonlyMap<number, string> {
    return this.inFlight;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Something changed (a command arrived, a destination came back, an outcome): look again soon. */
  kick(): void {
    if (this.stopped || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.pump();
    });
  }

  /** Whether a stored PUBLISH of command `n` may go out again (on a reconnect or after a restart). */
  mayResend(n: number): boolean {
    const c = this.store.get(n);
    return c !== null && c.deadline > this.deps.clock.now();
  }

  /** An MQTT publisher's report on command `n`. */
  onPublish(n: number, o: PublishOutcome): void {
    const target = this.inFlight.get(n) ?? this.store.get(n)?.target ?? null;
    if (o.kind === 'acked') {
      this.release(n, target);
      this.finish(n, 'delivered', null, o.at);
    } else if (o.kind === 'stale') {
      // Its PUBLISH was stored but not acknowledged, and the deadline passed: it is not sent again.
      this.release(n, target);
      this.finish(n, 'expired', 'deadline passed before the broker acknowledged the PUBLISH (QoS 1: it may have reached the broker before a crash)');
    } else if (o.kind === 'unsent') {
      this.release(n, target);
    } else this.failedAttempt(n, target, `broker refused the PUBLISH (reason code 0x${o.reasonCode.toString(16)})`);
    this.kick();
  }

  private take(n: number, target: string): void {
    this.inFlight.set(n, target);
    this.busyTargets.add(target);
  }

  private release(n: number, target: string | null): void {
    this.inFlight.delete(n);
    if (target !== null) this.busyTargets.delete(target);
  }

  private failedAttempt(n: number, target: string | null, why: string): void {
    this.release(n, target);
    this.store.countAttempt(n);
    const c = this.store.get(n);
    if (!c) return;
    if (c.attempts > this.opts.retries) {
      this.finish(n, 'failed', `${why}; ${c.attempts} attempts`);
      this.notBefore.delete(c.target);
      return;
    }
    let nb = this.notBefore.get(c.target);
    if (!nb) this.notBefore.set(c.target, (nb = { at: 0, backoff: new Backoff({ initialMs: this.opts.retryMinMs, maxMs: this.opts.retryMaxMs }) }));
    nb.at = this.deps.clock.now() + nb.backoff.next();
    this.deps.logger.warn({ id: c.id, target: c.target, attempts: c.attempts, why }, 'downlink: delivery attempt failed; retrying');
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    for (const c of this.store.expiredBy(now)) if (!this.inFlight.has(c.n)) this.finish(c.n, 'expired', 'deadline passed while waiting', now);
    let wakeAt = this.store.nextDeadline(this.inFlight);
    let blocked = false;
    for (const c of this.store.heads()) {
      if (this.busyTargets.has(c.target)) continue;
      const nb = this.notBefore.get(c.target);
      if (nb && nb.at > now) {
        wakeAt = Math.min(wakeAt ?? nb.at, nb.at);
        continue;
      }
      if (!this.deliver(c, now)) blocked = true;
    }
    // A serial port that opens again says nothing: look again every second while one blocks.
    if (blocked) wakeAt = Math.min(wakeAt ?? now + 1000, now + 1000);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (wakeAt !== null) {
      const ms = wakeAt - this.deps.clock.now() + 1;
      // A wake already due (nothing above could end it) is looked at again in a second, not in a busy loop.
      this.timer = setTimeout(() => this.kick(), ms <= 0 ? PAST_WAKE_MS : Math.min(2 ** 31 - 1, ms));
    }
  }

  /** Tries to deliver (or end) the head of a target; false when its destination is away. */
  private deliver(c: StoredCommand, now: number): boolean {
    // The deadline is checked right before anything goes out.
    if (c.deadline <= now) {
      this.finish(c.n, 'expired', 'deadline passed while waiting', now);
      return true;
    }
    const r = this.router.resolve(c.target);
    if ('reject' in r) {
      this.finish(c.n, 'rejected', `${r.reject}: ${r.detail}`, now);
      return true;
    }
    if (r.kind === 'mqtt') {
      this.take(c.n, c.target);
      if (r.publisher.publish(c.n, r.topic, c.payload, r.qos, r.retain)) return true;
      this.release(c.n, c.target);
      return r.publisher.isReady; // not ready: onReady kicks
    }
    if (!r.port.isOpen) return false; // waits for the port
    this.take(c.n, c.target);
    const bytes = r.suffix.length ? Buffer.concat([c.payload, r.suffix]) : c.payload;
    // A write that never completes (flow control, a stuck port) must not hold its target for good.
    const timeoutMs = (this.opts.serialWriteTimeoutMs ?? serialWriteTimeout)(bytes.length);
    let settled = false;
    const timer = setTimeout(() => {
      this.writeTimers.delete(timer);
      if (settled || this.stopped) return;
      settled = true;
      this.release(c.n, c.target);
      this.finish(c.n, 'failed', `serial write to ${r.name} did not complete in ${timeoutMs} ms (flow control or a stuck port); some of its bytes may have gone out`, this.deps.clock.now());
      this.kick();
    }, timeoutMs);
    this.writeTimers.add(timer);
    r.port.write(bytes).then(
      () => {
        // After stop the store may be closed: the command stays waiting (serial is at least once).
        if (settled || this.stopped) return;
        settled = true;
        clearTimeout(timer);
        this.writeTimers.delete(timer);
        this.release(c.n, c.target);
        this.notBefore.delete(c.target);
        this.finish(c.n, 'delivered', null, this.deps.clock.now());
        this.kick();
      },
      (err: Error) => {
        // After stop the store may be closed: the command stays waiting (serial is at least once).
        if (settled || this.stopped) return;
        settled = true;
        clearTimeout(timer);
        this.writeTimers.delete(timer);
        this.failedAttempt(c.n, c.target, `serial write to ${r.name} failed: ${err.message}`);
        this.kick();
      },
    );
    return true;
  }
}
