/**
 * A downlink route's `target` pattern: levels split by "/", "+name" binds one level, "#name" (last)
 * binds the rest. Filled into an MQTT topic template as `{name}`; `{target}` is the whole target.
 * Unlike the sinks' Kafka topic filter, values are not rewritten: an MQTT topic may hold any
 * character but the wildcards and NUL, and a value with those makes the command `rejected`.
 */
export type TargetMatch = Record<string, string>;

type Level = { kind: 'literal'; text: string } | { kind: 'one'; name?: string } | { kind: 'rest'; name?: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;

export class TargetPattern {
  private readonly levels: Level[];
  readonly names: Set<string>;

  /** Throws an Error naming the problem for a pattern that cannot be used. */
  constructor(readonly pattern: string) {
    this.levels = pattern.split('/').map((text, i, all): Level => {
      if (text.startsWith('+') || text.startsWith('#')) {
        const name = text.slice(1);
        if (name && !NAME.test(name)) throw new Error(`"${text}": a wildcard name uses letters, digits and "_"`);
        if (text.startsWith('#') && i !== all.length - 1) throw new Error(`"#" must be the last level of "${pattern}"`);
        return { kind: text.startsWith('+') ? 'one' : 'rest', name: name || undefined };
      }
      if (text.includes('+') || text.includes('#')) throw new Error(`"${text}": wildcards must fill a whole level`);
      return { kind: 'literal', text };
    });
    this.names = new Set(this.levels.flatMap((l) => (l.kind !== 'literal' && l.name ? [l.name] : [])));
  }

  /** The placeholders of `template` this pattern does not bind (`target` is always bound). */
  unknownPlaceholders(template: string): string[] {
    return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '').filter((n) => n !== 'target' && !this.names.has(n));
  }

  match(target: string): TargetMatch | null {
    const parts = target.split('/');
    const out: TargetMatch = { target };
    for (let i = 0; i < this.levels.length; i++) {
      const l = this.levels[i]!;
      if (l.kind === 'rest') {
        if (i > parts.length) return null;
        if (l.name) out[l.name] = parts.slice(i).join('/');
        return out;
      }
      const p = parts[i];
      if (p === undefined) return null;
      if (l.kind === 'literal' && l.text !== p) return null;
      if (l.kind === 'one' && l.name) out[l.name] = p;
    }
    return parts.length === this.levels.length ? out : null;
  }
}

/** Fills `{name}` placeholders; null when a value would make an invalid MQTT topic name. */
export function fillTopic(template: string, values: TargetMatch): string | null {
  let bad = false;
  const topic = template.replace(PLACEHOLDER, (_, name: string) => {
    const v = values[name] ?? '';
    if (/[+#\u0000]/.test(v)) bad = true;
    return v;
  });
  if (bad || topic.length === 0 || Buffer.byteLength(topic) > 65535) return null;
  return topic;
}
