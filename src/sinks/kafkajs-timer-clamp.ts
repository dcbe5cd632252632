import { createRequire } from 'node:module';

/**
 * kafkajs 2.2.4's request queue schedules its pending-requests check with
 * `setTimeout(fn, throttledUntil - Date.now())` while nothing throttles it (`throttledUntil` is
 * -1), a delay of about minus the epoch in milliseconds. Node treats any delay below 1 as 1, and
 * from Node 24 on also prints a `TimeoutNegativeWarning` to stderr, which an operator reads in the
 * journal of every start as if something were wrong. This puts the same method on the request
 * queue's prototype with the delay clamped at 1 ms, which is what Node did with it anyway.
 *
 * A prototype method, not a module export: it takes effect whenever this runs, even after kafkajs
 * loaded. Only kafkajs 2.2.4 is touched (test/unit/kafkajs-timer-clamp.test.ts fails on another).
 */

const require = createRequire(import.meta.url);

export const TIMER_CLAMP_FOR_KAFKAJS = '2.2.4';
/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL (requestQueue/index.js). */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;
const MARK: unique symbol = Symbol.for('sluice.kafkajs-timer-clamp') as never;

interface RequestQueueLike {
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  pending: unknown[];
  checkPendingRequests(): void;
}
interface RequestQueueClass {
  prototype: RequestQueueLike & { scheduleCheckPendingRequests(this: RequestQueueLike): void; [MARK]?: true };
}

function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  let scheduleAt = this.throttledUntil - Date.now();
  if (!this.throttleCheckTimeoutId) {
    if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      Math.max(1, scheduleAt),
    );
  }
}

/** Installs the clamped method (idempotent); false if kafkajs is not the version it was written for. */
export function installKafkajsTimerClamp(): boolean {
  if ((require('kafkajs/package.json') as { version: string }).version !== TIMER_CLAMP_FOR_KAFKAJS) return false;
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as RequestQueueClass;
  if (RequestQueue.prototype[MARK]) return true;
  RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  RequestQueue.prototype[MARK] = true;
  return true;
}
