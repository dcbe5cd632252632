import { Secret } from './secret.js';

type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;

/** The camelCase mirror of a snake_case config type. */
export type Camelize<T> = T extends Secret
  ? T
  : T extends readonly (infer U)[]
    ? Camelize<U>[]
    : T extends object
      ? { [K in keyof T as K extends string ? CamelCase<K> : K]: Camelize<T[K]> }
      : T;

export function camelize<T>(value: T): Camelize<T> {
  if (Array.isArray(value)) return value.map((v) => camelize(v)) as Camelize<T>;
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = camelize(v);
    }
    return out as Camelize<T>;
  }
  return value as Camelize<T>;
}
