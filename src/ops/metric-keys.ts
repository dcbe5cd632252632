/** One counter or gauge of a `Metrics` snapshot, its key split into name and labels. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const KEY = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Splits `Metrics.snapshot()` keys (`name{a="b"}`) back into name and labels. */
export function samples(snapshot: Record<string, number>): Sample[] {
  const out: Sample[] = [];
  for (const [key, value] of Object.entries(snapshot)) {
    const m = KEY.exec(key);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of a metric over every sample whose labels include `where`. */
export function sum(all: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const s of all) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Sums of a metric grouped by one label's value. */
export function sumBy(all: readonly Sample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of all) {
    if (s.name !== name) continue;
    const k = s.labels[label] ?? '';
    out[k] = (out[k] ?? 0) + s.value;
  }
  return out;
}
