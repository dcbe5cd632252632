/*
 * Holds MQTT.js's "next packet" callback while a full group commit is due. MQTT.js parses
 * whatever the socket has, and libuv reads up to 32 × 64 KiB per wake-up, so behind a broker that
 * pushes a session's backlog regardless of receive_maximum (Mosquitto with max_inflight_messages 0)
 * group commits carried ~9,250 records instead of commit_max_records' 2,000 (60,000-message
 * backlog, instrumented bench run). While the callback is held, MQTT.js parses nothing more, its stream
 * stops reading and TCP holds the rest at the broker; the commit, already scheduled, runs next.
 */

/** How long a packet is held at most, should the commit that was due not come (a failing disk). */
const MAX_HOLD_MS = 200;

export class IntakeHold {
  private held: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;

  /** `mustWait` says whether a commit is due (the journal's `commitDue`). */
  constructor(private readonly mustWait: () => boolean) {}

  /** Calls `next` now, or once the due commit happened (at most MAX_HOLD_MS later). */
  pass(next: () => void): void {
    if (this.held.length === 0 && !this.mustWait()) return next();
    this.held.push(next);
    this.timer ??= setTimeout(() => this.open(), MAX_HOLD_MS);
  }

  /**
   * A commit happened: lets what is held go on, from a fresh turn of the event loop, not from
   * inside the journal's commit listener (the next packet appends to the journal again).
   */
  committed(): void {
    if (this.held.length > 0) this.soon ??= setImmediate(() => this.open());
  }

  /** Lets everything held go on now (the connection closed, the source stops). */
  open(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = null;
    this.soon = null;
    const held = this.held;
    this.held = [];
    for (const next of held) next();
  }

  get holding(): number {
    return this.held.length;
  }
}
