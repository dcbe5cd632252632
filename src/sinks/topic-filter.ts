/**
 * MQTT-style topic filters with named wildcards: "+name" binds one level, "#name" (last level)
 * binds the rest. `{name}` in a topic or key template is replaced by the bound value.
 */
export interface RouteTarget {
  topic: string;
  key: string | null;
}

export type TopicMatcher = (topic: string) => RouteTarget | null;

type Level = { kind: 'literal'; text: string } | { kind: 'one'; name?: string } | { kind: 'rest'; name?: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const KAFKA_TOPIC_UNSAFE = /[^A-Za-z0-9._-]/g;

export function compileFilter(filter: string, templates: { topic: string; key?: string }): TopicMatcher {
  const levels: Level[] = filter.split('/').map((text, i, all) => {
    if (text.startsWith('+')) {
      const name = text.slice(1);
      if (name && !NAME.test(name)) throw new Error(`"${text}": a wildcard name uses letters, digits and "_"`);
      return { kind: 'one', name: name || undefined };
    }
    if (text.startsWith('#')) {
      if (i !== all.length - 1) throw new Error(`"#" must be the last level of "${filter}"`);
      const name = text.slice(1);
      if (name && !NAME.test(name)) throw new Error(`"${text}": a wildcard name uses letters, digits and "_"`);
      return { kind: 'rest', name: name || undefined };
    }
    if (text.includes('+') || text.includes('#')) throw new Error(`"${text}": wildcards must fill a whole level`);
    return { kind: 'literal', text };
  });
  const names = new Set(levels.flatMap((l) => (l.kind !== 'literal' && l.name ? [l.name] : [])));
  for (const [what, template] of [['topic', templates.topic], ['key', templates.key]] as const) {
    if (template === undefined) continue;
    for (const m of template.matchAll(PLACEHOLDER)) {
      if (!names.has(m[1] ?? '')) throw new Error(`${what} template uses {${m[1]}}, which "${filter}" does not name`);
    }
  }
  const topicHasPlaceholders = /\{[^{}]*\}/.test(templates.topic);

  return (topic: string): RouteTarget | null => {
    const parts = topic.split('/');
    let bound: Record<string, string> | undefined;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      if (level.kind === 'rest') {
        // MQTT: "a/#" also matches "a" itself.
        if (level.name) (bound ??= {})[level.name] = parts.slice(i).join('/');
        return target(bound);
      }
      const part = parts[i];
      if (part === undefined) return null;
      if (level.kind === 'literal') {
        if (part !== level.text) return null;
      } else if (level.name) {
        (bound ??= {})[level.name] = part;
      }
    }
    return parts.length === levels.length ? target(bound) : null;
  };

  function target(bound: Record<string, string> | undefined): RouteTarget {
    const fill = (t: string): string => t.replace(PLACEHOLDER, (_, n: string) => bound?.[n] ?? '');
    return {
      topic: topicHasPlaceholders ? fill(templates.topic).replace(KAFKA_TOPIC_UNSAFE, '_') : templates.topic,
      key: templates.key === undefined ? null : fill(templates.key),
    };
  }
}
