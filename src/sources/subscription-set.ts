import type { CommitSidecar } from '../journal/journal.js';

/*
 * The subscriptions a broker holds for sluice's persistent session. MQTT has no way to ask a
 * broker which subscriptions a session has, so sluice remembers what it was granted, durably (a
 * journal sidecar written right after each change), and on every connect compares that with the
 * config: filters the config dropped are unsubscribed, new ones and ones whose QoS changed are
 * subscribed. The set kept on disk is never smaller than what the broker may hold: a filter
 * about to be subscribed is recorded first with an unknown QoS (so a kill -9 before the SUBACK
 * leaves it to be subscribed again), and removed only after the UNSUBACK. Unsubscribing a filter
 * the broker does not have is harmless; forgetting one it has would keep its messages coming.
 */

/** QoS recorded for a filter whose SUBSCRIBE went out without a SUBACK yet. */
const PENDING = -1;

export interface SubscriptionPlan {
  /** Filters to unsubscribe (held, no longer in the config). */
  unsubscribe: string[];
  /** Filters to subscribe, with their QoS (new, QoS changed, or not known to be held). */
  subscribe: { topic: string; qos: 0 | 1 | 2 }[];
  /** Config filters sluice cannot send (too long, invalid): each with the reason. */
  invalid: { topic: string; reason: string }[];
  /** The broker kept a session whose subscriptions were not recorded (first run with a new journal). */
  unknownHeld: boolean;
}

/** Why MQTT (or MQTT.js) cannot carry this filter, or null when it can. */
export function filterProblem(topic: string): string | null {
  if (topic.length === 0) return 'empty topic filter';
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > 65535) return `topic filter is ${bytes} bytes; MQTT allows at most 65535`;
  if (topic.includes('\u0000')) return 'topic filter contains a NUL character';
  const levels = topic.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l === '+') continue;
    if (l === '#') {
      if (i !== levels.length - 1) return '"#" must be the last level of a topic filter';
      continue;
    }
    if (l.includes('+') || l.includes('#')) return 'a wildcard ("+" or "#") must be a whole level';
  }
  return null;
}

interface Stored {
  url: string;
  clientId: string;
  subs: Record<string, number>;
}

export class SubscriptionSet {
  /** Filter → QoS granted (PENDING while unconfirmed); null when sluice does not know what the broker holds. */
  private held: Map<string, number> | null = null;
  private changes = 0;

  constructor(
    /** The broker and client id the session belongs to: a record for another session is not used. */
    private readonly url: string,
    private readonly clientId: string,
  ) {}

  /** Restores what the last run recorded (null: nothing recorded). */
  load(data: Buffer | null): void {
    this.held = null;
    if (!data) return;
    try {
      const s = JSON.parse(data.toString('utf8')) as Stored;
      if (s.url !== this.url || s.clientId !== this.clientId || typeof s.subs !== 'object' || s.subs === null) return;
      this.held = new Map(Object.entries(s.subs).filter(([, q]) => typeof q === 'number'));
    } catch {
      this.held = null; // unreadable: treated as unknown, which only means nothing is unsubscribed
    }
  }

  /**
   * What to send on a connect: with no session the broker holds nothing; with one, what the last
   * run recorded (if anything).
   */
  plan(wanted: readonly { topic: string; qos: 0 | 1 | 2 }[], sessionPresent: boolean): SubscriptionPlan {
    if (!sessionPresent) this.replace(new Map());
    const held = this.held;
    const invalid: SubscriptionPlan['invalid'] = [];
    const want = new Map<string, 0 | 1 | 2>();
    for (const w of wanted) {
      const reason = filterProblem(w.topic);
      if (reason) invalid.push({ topic: w.topic, reason });
      else want.set(w.topic, w.qos);
    }
    const unsubscribe = held ? [...held.keys()].filter((t) => !want.has(t)) : [];
    const subscribe = [...want].filter(([t, q]) => !held || held.get(t) !== q).map(([topic, qos]) => ({ topic, qos }));
    return { unsubscribe, subscribe, invalid, unknownHeld: held === null };
  }

  /** Before a SUBSCRIBE goes out: its filters may be held from now on, at a QoS not yet known. */
  subscribing(topics: readonly string[]): void {
    const held = new Map(this.held ?? []);
    for (const t of topics) held.set(t, PENDING);
    this.replace(held);
  }

  /** After the SUBACK: granted filters are held at the QoS asked for; refused ones are not held. */
  subscribed(results: readonly { topic: string; qos: number; granted: boolean }[]): void {
    const held = new Map(this.held ?? []);
    for (const r of results) {
      if (r.granted) held.set(r.topic, r.qos);
      else held.delete(r.topic);
    }
    this.replace(held);
  }

  /** After the UNSUBACK. */
  unsubscribed(topics: readonly string[]): void {
    const held = new Map(this.held ?? []);
    for (const t of topics) held.delete(t);
    this.replace(held);
  }

  /** Filters recorded as held, for logs. */
  get topics(): string[] | null {
    return this.held ? [...this.held.keys()] : null;
  }

  /** Filter → QoS recorded as held (-1: SUBACK pending), or null when unknown. */
  get entries(): Record<string, number> | null {
    return this.held ? Object.fromEntries(this.held) : null;
  }

  private replace(held: Map<string, number>): void {
    this.held = held;
    this.changes++;
  }

  readonly sidecar: CommitSidecar = {
    version: () => this.changes,
    encode: () => Buffer.from(JSON.stringify({ url: this.url, clientId: this.clientId, subs: Object.fromEntries(this.held ?? []) } satisfies Stored)),
  };
}
