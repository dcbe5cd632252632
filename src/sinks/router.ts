import type { RouteConfig } from '../config/load.js';
import { compileFilter, type RouteTarget, type TopicMatcher } from './topic-filter.js';

/** A sink's routes in order, plus its default topic: the first match wins. */
export class Router {
  private readonly matchers: TopicMatcher[];

  constructor(routes: readonly Pick<RouteConfig, 'match' | 'topic' | 'key'>[], private readonly defaultTopic?: string) {
    this.matchers = routes.map((r) => compileFilter(r.match, { topic: r.topic, key: r.key }));
  }

  route(topic: string): RouteTarget | null {
    for (const m of this.matchers) {
      const t = m(topic);
      if (t) return t;
    }
    return this.defaultTopic ? { topic: this.defaultTopic, key: null } : null;
  }
}
