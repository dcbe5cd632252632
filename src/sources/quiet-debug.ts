import { createRequire } from 'node:module';

/**
 * MQTT.js's packet parser and writer (mqtt-packet) call the `debug` package ~15 times per packet,
 * e.g. `debug('_parseLength %d', n)`. With debugging off each call still allocates its rest
 * arguments before it finds out it is disabled: a bridge profile (30,000 messages, the unit's
 * heap flags) put ~3 KB of garbage per message there, about a fifth of all allocation. This
 * module makes the `debug` factory hand out a function that takes no arguments and does nothing
 * for a namespace that is not enabled when it is created (DEBUG as usual: `DEBUG=mqtt-packet:*`
 * still prints everything, because enabled namespaces get the real `debug`).
 *
 * How: like kafkajs-linear-grouping.ts, through Node's CommonJS module cache, before MQTT.js is
 * loaded (import MQTT.js through ./mqtt.ts). Process-wide by Node's design; idempotent.
 * `quietDebugInstalled()` says whether it took effect.
 */

const require = createRequire(import.meta.url);

interface DebugFactory {
  (namespace: string): DebugFn;
  enabled(namespace: string): boolean;
  [k: string]: unknown;
}
interface DebugFn {
  (...args: unknown[]): void;
  enabled: boolean;
  namespace: string;
  extend(sub: string, delimiter?: string): DebugFn;
  [k: string]: unknown;
}

const MARK = Symbol.for('sluice.quiet-debug');

function quiet(original: DebugFactory): DebugFactory {
  const silent = (namespace: string): DebugFn => {
    const fn = function noDebug(): void {} as unknown as DebugFn;
    fn.enabled = false;
    fn.namespace = namespace;
    fn.extend = (sub: string, delimiter = ':') => factory(`${namespace}${delimiter}${sub}`);
    fn.log = () => undefined;
    fn.destroy = () => true;
    return fn;
  };
  const factory = ((namespace: string) => (original.enabled(namespace) ? original(namespace) : silent(namespace))) as DebugFactory;
  for (const k of Object.keys(original)) factory[k] = original[k];
  factory.default = factory;
  (factory as unknown as Record<symbol, unknown>)[MARK] = true;
  return factory;
}

function install(): boolean {
  // mqtt-packet and its `debug` as MQTT.js resolves them (they are its dependencies, not ours).
  const fromMqtt = createRequire(require.resolve('mqtt'));
  const parserPath = fromMqtt.resolve('mqtt-packet/parser.js');
  const debugPath = createRequire(parserPath).resolve('debug');
  const cache = require.cache;
  if ((cache[debugPath]?.exports as Record<symbol, unknown> | undefined)?.[MARK]) return true;
  if (cache[parserPath]) return false; // mqtt-packet already took the real one
  const original = fromMqtt(debugPath) as DebugFactory;
  const entry = cache[debugPath];
  if (!entry || typeof original.enabled !== 'function') return false;
  entry.exports = quiet(original);
  return true;
}

const installed = install();

/** Whether mqtt-packet's disabled debug calls are free (false if MQTT.js loaded first). */
export function quietDebugInstalled(): boolean {
  return installed;
}
