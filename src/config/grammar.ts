import { isIP } from 'node:net';
import { parse as legacyUrlParse } from 'node:url';
import { z } from 'zod';

/*
 * The bounds and grammars of config values, as small zod validators `schema.ts` builds on. Each
 * bound is the real limit of the thing the value feeds (a Node timer, an MQTT packet field, a
 * Kafka topic name), so that what `check-config` accepts, `run` can start. Where JSON Schema can
 * say it (minimum/maximum, maxLength, pattern), the validator says it that way, so editors using
 * `sluice schema` show the same errors; the rest are refinements.
 */

/** Node's timers hold a signed 32-bit millisecond count; a larger delay silently becomes 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Seconds that still fit a Node timer once multiplied by 1000. */
export const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000);
/** Seconds that stay an exact integer once multiplied by 1000 (compared with the clock, not timed). */
export const MAX_SAFE_S = Math.floor(Number.MAX_SAFE_INTEGER / 1000);
/** An MQTT UTF-8 string or binary field has a two-byte length (MQTT 3.1.1 §1.5.3, 5.0 §1.5.4). */
export const MQTT_MAX_STRING_BYTES = 65535;
/** MQTT keepalive is a two-byte number of seconds. */
export const MQTT_MAX_KEEPALIVE_S = 65535;
/** MQTT 5 session expiry interval is a four-byte number of seconds. */
export const MQTT_MAX_SESSION_EXPIRY_S = 2 ** 32 - 1;
/** The largest MQTT packet (remaining length, four-byte variable integer). */
export const MQTT_MAX_PACKET_BYTES = 268435455;
/** Kafka's request header carries the client id as a string with a signed two-byte length. */
export const KAFKA_MAX_CLIENT_ID_BYTES = 32767;
/** Kafka refuses longer topic names (Topic.MAX_NAME_LENGTH). */
export const KAFKA_MAX_TOPIC_LENGTH = 249;

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A duration in milliseconds that a Node timer can hold. */
export function durationMs(min: number, max = MAX_TIMER_MS) {
  return z.number().int().min(min).max(max);
}

/** A duration in seconds that a Node timer can hold after ×1000, or a smaller protocol bound. */
export function durationS(min: number, max = MAX_TIMER_S) {
  return z.number().int().min(min).max(max);
}

/** A TCP port. */
export const port = () => z.number().int().min(1).max(65535);

/** Names of sources and sinks: they end up in client ids, transactional ids and metric labels. */
export const componentName = () => z.string().min(1).max(100).regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"');

/** Control characters MQTT says a UTF-8 string should not hold; Mosquitto refuses them (and U+0000 is forbidden). */
// eslint-disable-next-line no-control-regex
const MQTT_FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Rules JSON Schema cannot say, as text: kept in the JSON Schema under this key, and listed in the README. */
export const RULE_KEY = 'x-rule';
const rule = (text: string) => ({ [RULE_KEY]: text });

const MQTT_STRING_RULE = 'no control characters; at most 65535 bytes of UTF-8';

/** An MQTT UTF-8 string field (client id, username): no control characters, at most 65535 bytes. */
export function mqttString(what: string) {
  return mqttStringBase(what).meta(rule(MQTT_STRING_RULE));
}

function mqttStringBase(what: string) {
  return z
    .string()
    .max(MQTT_MAX_STRING_BYTES)
    .refine((s) => !MQTT_FORBIDDEN_CHARS.test(s), `${what} must not contain control characters (U+0000-U+001F, U+007F-U+009F)`)
    .refine((s) => utf8Bytes(s) <= MQTT_MAX_STRING_BYTES, `${what} must be at most ${MQTT_MAX_STRING_BYTES} bytes of UTF-8 (an MQTT string)`);
}

/** The MQTT client id: non-empty (a persistent session needs one), an MQTT string. */
export const mqttClientId = () =>
  mqttStringBase('a client id')
    .min(1, 'must not be empty: the persistent session needs a client id')
    .meta(rule(`${MQTT_STRING_RULE}; unique among the sources on one broker`));

/**
 * An MQTT topic filter (subscriptions): levels split by "/", "+" alone in its level, "#" alone in
 * the last level (MQTT 3.1.1 §4.7.1).
 */
export function mqttTopicFilter() {
  return mqttStringBase('a topic filter')
    .min(1)
    .regex(/^(?:(?:[^+#/]*|\+)\/)*(?:[^+#/]*|\+|#)$/, '"+" must fill a whole level and "#" must fill the last level alone (e.g. "a/+/c", "a/#")')
    .meta(rule(`MQTT topic filter: "+" alone in a level, "#" alone in the last level; ${MQTT_STRING_RULE}`));
}

/** An MQTT topic name (topics sluice files records under): no wildcards. `{placeholder}`s are plain characters here. */
export function mqttTopicName() {
  return mqttStringBase('a topic')
    .min(1)
    .regex(/^[^+#]*$/, 'a topic name must not contain the wildcards "+" or "#"')
    .meta(rule(`MQTT topic name: no "+" or "#"; ${MQTT_STRING_RULE}`));
}

const KAFKA_TOPIC = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;

/** A Kafka topic name: 1-249 of [A-Za-z0-9._-], not "." or "..". */
export function kafkaTopic() {
  return z
    .string()
    .regex(KAFKA_TOPIC, `a Kafka topic name is 1-${KAFKA_MAX_TOPIC_LENGTH} of the characters A-Z a-z 0-9 . _ -, and not "." or ".."`)
    .meta(rule('Kafka topic name: 1-249 of A-Z a-z 0-9 . _ -, not "." or ".."'));
}

/**
 * A route's Kafka topic template: Kafka topic characters and `{name}` placeholders (a filled-in
 * value has its other characters replaced by "_" when shipping). The literal text is bounded like
 * a topic; whether each placeholder is named by the match is checked with the route.
 */
export function kafkaTopicTemplate() {
  return z
    .string()
    .min(1)
    .max(KAFKA_MAX_TOPIC_LENGTH)
    .regex(/^(?!\.{1,2}$)(?:[A-Za-z0-9._-]|\{[A-Za-z_][A-Za-z0-9_]*\})+$/, 'a Kafka topic template is the characters A-Z a-z 0-9 . _ - and {name} placeholders, and not "." or ".."')
    .meta(rule('Kafka topic name with {name} placeholders the match names'));
}

/** A Kafka client id. */
export const kafkaClientId = () =>
  z
    .string()
    .min(1)
    .max(KAFKA_MAX_CLIENT_ID_BYTES)
    .refine((s) => utf8Bytes(s) <= KAFKA_MAX_CLIENT_ID_BYTES, `must be at most ${KAFKA_MAX_CLIENT_ID_BYTES} bytes of UTF-8`)
    .meta(rule(`at most ${KAFKA_MAX_CLIENT_ID_BYTES} bytes of UTF-8`));

/** A file path: the OS cannot open a name with a NUL in it. */
export const filePath = () =>
  z
    .string()
    .min(1)
    .refine((s) => !s.includes('\0'), 'a path must not contain NUL')
    .meta(rule('a path, no NUL'));

/** A TLS file: its contents are checked when the config is loaded (`tls-files.ts`). */
export const pemFile = (what: string) => filePath().meta(rule(`a regular, readable PEM file: ${what}; checked at load`));

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** A DNS host name (RFC 1123 labels; "_" tolerated, as resolvers do) or an IPv4/IPv6 address without brackets. */
export function isHostOrAddress(host: string): boolean {
  if (isIP(host)) return true;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return false;
  // "1.2.3.999" is a mistyped address, not a name.
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/** A host to listen on: an IP address or a host name. */
export const listenHost = () =>
  z
    .string()
    .min(1)
    .refine(isHostOrAddress, 'must be an IP address (e.g. "127.0.0.1", "::1", "0.0.0.0") or a host name')
    .meta(rule('an IP address or a host name'));

/** Splits "host:port" or "[v6]:port"; null if it is neither. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(s);
  if (!m) return null;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** A Kafka bootstrap broker: "host:port" or "[IPv6]:port", port 1-65535. */
export function brokerAddress() {
  return z
    .string()
    .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):[0-9]{1,5}$/, 'must be host:port (an IPv6 address in brackets: "[::1]:9092")')
    .superRefine((s, ctx) => {
      const hp = splitHostPort(s);
      if (!hp) return; // the pattern already said so
      const bracketed = s.startsWith('[');
      if (bracketed ? isIP(hp.host) !== 6 : !isHostOrAddress(hp.host) || isIP(hp.host) === 6) ctx.addIssue({ code: 'custom', message: `"${hp.host}" is not a host name or IP address` });
      if (hp.port < 1 || hp.port > 65535) ctx.addIssue({ code: 'custom', message: `port ${hp.port} is outside 1-65535` });
    })
    .meta(rule('"host:port" or "[IPv6]:port"; a host name or IP address; port 1-65535'));
}

const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'];

/**
 * The legacy url.parse(), the parser MQTT.js connects with. Node 24 warns once per process
 * (DEP0169, on stderr) when it is called from outside node_modules; here it is called on purpose,
 * so the warning would only break `check-config`'s promise that stderr holds the report alone.
 * The warning is a one-shot: once consumed here, no later url.parse() would warn either (sluice
 * calls it nowhere else; MQTT.js's calls, inside node_modules, never warn).
 */
function mqttJsUrlParse(url: string): ReturnType<typeof legacyUrlParse> {
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    return legacyUrlParse(url);
  } finally {
    process.noDeprecation = quiet;
  }
}

/** Why an MQTT broker URL cannot be used, or null. Checked as both URL parsers read it: MQTT.js uses the legacy one. */
export function mqttUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (!MQTT_PROTOCOLS.includes(parsed.protocol)) return 'must start with mqtt://, mqtts://, ws:// or wss://';
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  if (!isHostOrAddress(host)) return `"${parsed.hostname}" is not a host name or IP address`;
  if (parsed.port !== '' && (Number(parsed.port) < 1 || Number(parsed.port) > 65535)) return `port ${parsed.port} is outside 1-65535`;
  // MQTT.js would take these over the config's keys, and the URL is logged.
  if (parsed.username || parsed.password) return 'must not hold credentials: give username and password (or password_env, password_file) instead; the URL is logged';
  if (parsed.searchParams.has('clientId')) return 'must not hold a clientId: give client_id instead';
  const legacy = mqttJsUrlParse(url);
  if ((legacy.hostname ?? '') !== host.toLowerCase() || (legacy.port ?? '') !== parsed.port) return 'is ambiguous (URL parsers disagree on its host or port)';
  return null;
}

/** An MQTT broker URL: mqtt://, mqtts://, ws:// or wss:// (tcp://, ssl:// as aliases), a valid host, port 1-65535. */
export function mqttUrl() {
  return z
    .string()
    .regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must start with mqtt://, mqtts://, ws:// or wss://')
    .superRefine((s, ctx) => {
      if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(s)) return;
      const problem = mqttUrlProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta(rule('a URL: mqtt://, mqtts://, ws://, wss:// (tcp://, ssl://); a host name or IP address; port 1-65535'));
}

/** Inputs a framing regex is tried on: a zero-length match on any of them would cut empty frames forever. */
const REGEX_SAMPLES = ['', 'a', '\n', '\r\n', 'ab\r\ncd\n', 'x;y,z |w\t', '$GPGGA,1*4F\r\n', '{"a":1}\n', 'END\x03\x02', Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')];

/** Why a framing regex cannot be used, or null: it must compile and never match an empty string. */
export function framingRegexProblem(source: string): string | null {
  let re: RegExp;
  try {
    re = new RegExp(source, 'g');
  } catch (err) {
    return (err as Error).message;
  }
  for (const sample of REGEX_SAMPLES) {
    re.lastIndex = 0;
    for (let m = re.exec(sample); m; m = re.exec(sample)) {
      if (m[0].length === 0) {
        const where = sample === '' ? '' : ` (it matches zero characters within ${JSON.stringify(sample.length > 20 ? `${sample.slice(0, 20)}…` : sample)}; a delimiter is at least one byte)`;
        return `must not match the empty string${where}`;
      }
    }
  }
  return null;
}

/** A serial framing regex. */
export function framingRegex() {
  return z
    .string()
    .min(1)
    .superRefine((s, ctx) => {
      const problem = framingRegexProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta(rule('a JavaScript regular expression that never matches an empty string'));
}
