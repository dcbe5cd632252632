import type { RouteConfig } from '../config/load.js';
import { compileFilter, type RouteTarget, type TopicMatcher } from './topic-filter.js';

/** Where a record goes, and in what form its value is written. */
export interface RoutedTarget extends RouteTarget {
  valueFormat: RouteConfig['valueFormat'];
}

/** Topics whose targets are remembered; past this the memory starts again. */
const CACHE_LIMIT = 10000;

/** A sink's routes in order, plus its default topic: the first match wins. */
export class Router {
  private readonly matchers: { match: TopicMatcher; valueFormat: RouteConfig['valueFormat'] }[];

  constructor(routes: readonly (Pick<RouteConfig, 'match' | 'topic' | 'key'> & { valueFormat?: RouteConfig['valueFormat'] })[], private readonly defaultTopic?: string) {
    this.matchers = routes.map((r) => ({ match: compileFilter(r.match, { topic: r.topic, key: r.key }), valueFormat: r.valueFormat ?? 'raw' }));
  }

  /** Where each source topic went: a target depends on the topic alone, and a drain asks per record. */
  private readonly cache = new Map<string, RoutedTarget | null>();

  /** The target for `topic`; callers must not change it (it is shared by every record of the topic). */
  route(topic: string): RoutedTarget | null {
    let t = this.cache.get(topic);
    if (t === undefined) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(topic, (t = this.match(topic)));
    }
    return t;
  }

  private match(topic: string): RoutedTarget | null {
    for (const m of this.matchers) {
      const t = m.match(topic);
      if (t) return { ...t, valueFormat: m.valueFormat };
    }
    return this.defaultTopic ? { topic: this.defaultTopic, key: null, valueFormat: 'raw' } : null;
  }
}
