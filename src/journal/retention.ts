import type { Config } from '../config/load.js';
import { compileFilter, type TopicMatcher } from '../sinks/topic-filter.js';
import { GAP_SOURCE } from './gaps.js';

/** How a record may be treated when the journal reaches a bound. */
export interface RecordClass {
  /** Lowest priority is evicted first. */
  priority: number;
  /** Whether the record may be evicted to make room (policy `drop_oldest`). */
  evictable: boolean;
}

export type Classify = (source: string, topic: string) => RecordClass;

/** Gap and alarm records: never evicted, not even by max_age. */
export const INTERNAL_PRIORITY = 1_000_000;
const INTERNAL: RecordClass = { priority: INTERNAL_PRIORITY, evictable: false };
const DEFAULT: RecordClass = { priority: 0, evictable: false };
const CACHE_LIMIT = 10_000;

export type Overflow = 'backpressure' | 'drop_oldest';

/**
 * Builds the classifier from the config: a source's overflow policy, overridden by the `overflow`
 * of a matching route, and the highest `priority` among the routes (one per sink, first match)
 * that will ship the record. Cached per (source, topic): topics repeat.
 */
export function buildClassifier(config: Pick<Config, 'sink'>, sourcePolicies: ReadonlyMap<string, Overflow>): Classify {
  const sinks = config.sink.map((s) =>
    s.route.map((r) => ({ match: compileFilter(r.match, { topic: r.topic, key: r.key }) as TopicMatcher, priority: r.priority, overflow: r.overflow as Overflow | undefined })),
  );
  // Per source, then per topic: a joined "source\0topic" key cost a string concatenation (and its
  // hashing) per record on the ingest path; a gateway has a handful of sources.
  const cache = new Map<string, Map<string, RecordClass>>();
  let cached = 0;
  return (source, topic) => {
    if (source === GAP_SOURCE || source.startsWith('sluice:')) return INTERNAL;
    let bySource = cache.get(source);
    const hit = bySource?.get(topic);
    if (hit) return hit;
    let priority: number | null = null;
    const routeOverflows: Overflow[] = [];
    for (const routes of sinks) {
      const r = routes.find((x) => x.match(topic) !== null);
      if (!r) continue;
      priority = Math.max(priority ?? -Infinity, r.priority);
      if (r.overflow) routeOverflows.push(r.overflow);
    }
    const policy = routeOverflows.length ? (routeOverflows.every((o) => o === 'drop_oldest') ? 'drop_oldest' : 'backpressure') : (sourcePolicies.get(source) ?? 'backpressure');
    const cls = priority === null && policy === 'backpressure' ? DEFAULT : { priority: priority ?? 0, evictable: policy === 'drop_oldest' };
    if (cached >= CACHE_LIMIT) {
      cache.clear();
      cached = 0;
      bySource = undefined;
    }
    if (!bySource) cache.set(source, (bySource = new Map()));
    bySource.set(topic, cls);
    cached++;
    return cls;
  };
}

/** The journal's classifier for a whole config: each source's `overflow`, then the routes' `priority` and `overflow`. */
export function classifierForConfig(config: Pick<Config, 'sink' | 'mqtt' | 'serial'> & Partial<Pick<Config, 'modbus'>>): Classify {
  const policies = new Map<string, Overflow>([
    ...config.mqtt.map((m) => [`mqtt:${m.name}`, m.overflow] as const),
    ...config.serial.map((p) => [`serial:${p.name}`, p.overflow] as const),
    ...(config.modbus ?? []).map((b) => [`modbus:${b.name}`, b.overflow] as const),
  ]);
  return buildClassifier(config, policies);
}

/** Everything kept, nothing evictable: the journal's behaviour without a config (tests, tools). */
export const keepEverything: Classify = (source) => (source.startsWith('sluice:') ? INTERNAL : DEFAULT);
