import { Secret } from './secret.js';

/**
 * Whether two config sections are the same, secrets included (a Secret prints as "[redacted]",
 * so a changed password would otherwise look unchanged). The comparison string never leaves here.
 */
export function sameConfig(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, function (this: Record<string, unknown>, key, value: unknown) {
    const raw = key === '' ? v : this[key];
    if (raw instanceof Secret) return { secret: raw.reveal() };
    return value;
  });
}
