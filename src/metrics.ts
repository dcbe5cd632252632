/** Counters and gauges, keyed by name and labels; read by tests, status and (later) /metrics. */
export class Metrics {
  private readonly values = new Map<string, number>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const k = key(name, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  set(name: string, labels: Record<string, string>, value: number): void {
    this.values.set(key(name, labels), value);
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.values.get(key(name, labels)) ?? 0;
  }

  /** A counter bound to its labels once, for the per-message path (no key building per call). */
  counter(name: string, labels: Record<string, string> = {}): { inc: (by?: number) => void } {
    const k = key(name, labels);
    if (!this.values.has(k)) this.values.set(k, 0);
    return { inc: (by = 1) => void this.values.set(k, this.values.get(k)! + by) };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

function key(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}
