import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { SluiceError } from '../errors.js';
import { compileFilter } from '../sinks/topic-filter.js';
import { camelize, type Camelize } from './camel.js';
import { MQTT_MAX_STRING_BYTES } from './grammar.js';
import { checkModbus } from './modbus-check.js';
import { checkDownlinks } from '../downlink/config-check.js';
import { configSchema, downlinkSchema, modbusSchema, mqttSchema, serialSchema, sinkSchema, type RawConfig } from './schema.js';
import { Secret } from './secret.js';
import { checkTlsFiles, readRegularFile, realConfigFiles, type ConfigFiles } from './tls-files.js';

type WithSecret<T> = Omit<T, 'password' | 'password_env' | 'password_file'> & { password?: Secret };
type RawMqtt = RawConfig['mqtt'][number];
type RawSink = RawConfig['sink'][number];
type RawSasl = NonNullable<RawSink['sasl']>;
type RawSerial = RawConfig['serial'][number];
type RawModbus = RawConfig['modbus'][number];
type RawDownlink = RawConfig['downlink'][number];

/** The list sections that passed the schema, each item with its index in the file. */
interface ParsedParts {
  mqtt: [number, RawMqtt][];
  serial: [number, RawSerial][];
  modbus: [number, RawModbus][];
  sink: [number, RawSink][];
  downlink: [number, RawDownlink][];
  /** Per item path ("serial[3]"), the keys left out (to their defaults) because the schema refused them. */
  dropped: Map<string, string[]>;
}

type ResolvedConfig = Omit<RawConfig, 'gateway' | 'mqtt' | 'sink'> & {
  gateway: RawConfig['gateway'] & { id: string };
  mqtt: WithSecret<RawMqtt>[];
  sink: (Omit<RawSink, 'sasl'> & { sasl?: WithSecret<RawSasl> })[];
};

/** The validated configuration, camelCase, defaults applied, secrets resolved. */
export type Config = Camelize<ResolvedConfig>;
export type MqttConfig = Config['mqtt'][number];
export type SinkConfig = Config['sink'][number];
export type RouteConfig = SinkConfig['route'][number];
export type TlsConfig = MqttConfig['tls'];
export type SerialConfig = Config['serial'][number];
export type ModbusConfig = Config['modbus'][number];
export type ModbusDeviceConfig = ModbusConfig['device'][number];
export type ModbusRegisterConfig = ModbusDeviceConfig['register'][number];

/** Where secrets come from; injectable so tests need not touch the real environment. */
export interface SecretSources {
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
}

const defaultSecretSources: SecretSources = {
  env: process.env,
  readFile: readRegularFile,
};

/** Renders a zod path as the dotted path of the TOML key: `sink[0].route[2].topic`. */
export function dottedPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += (out ? '.' : '') + String(part);
  }
  return out || '(root)';
}

/** Reads, parses and validates a config file; throws SluiceError listing every problem. */
export function loadConfigFile(path: string, secrets: SecretSources = defaultSecretSources, files: ConfigFiles = realConfigFiles): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_UNREADABLE', `${path}: cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return parseConfig(text, { baseDir: dirname(resolve(path)), secrets, files });
}

export function parseConfig(text: string, opts: { baseDir?: string; secrets?: SecretSources; hostname?: string; files?: ConfigFiles } = {}): Config {
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0] ?? err.message;
      throw configError([`(toml) line ${err.line}, column ${err.column}: ${first}`]);
    }
    throw configError([`(toml): ${String(err)}`]);
  }
  const secrets = opts.secrets ?? defaultSecretSources;
  const files = opts.files ?? realConfigFiles;
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    // Every problem at once: the cross-field checks still run on the sections that did parse.
    const errors = parsed.error.issues.map((i) => `${dottedPath(i.path)}: ${issueMessage(i)}`);
    const parts = parsePartly(data);
    const gateway = configSchema.shape.gateway.safeParse(isTable(data) ? data.gateway : undefined);
    const gatewayId = (gateway.success ? gateway.data.id : undefined) ?? sanitizeHostname(opts.hostname ?? hostname());
    const more: string[] = [];
    checkCrossField(parts, gatewayId, files, more);
    parts.mqtt.forEach(([i, m]) => resolveSecret(m, `mqtt[${i}]`, secrets, more));
    parts.sink.forEach(([i, s]) => s.sasl && resolveSecret(s.sasl, `sink[${i}].sasl`, secrets, more));
    throw configError([...errors, ...more.filter((line) => !aboutDroppedKey(line, parts.dropped))]);
  }
  const raw = parsed.data;
  const errors: string[] = [];
  const gatewayId = raw.gateway.id ?? sanitizeHostname(opts.hostname ?? hostname());
  const indexed = <T>(items: T[]): [number, T][] => items.map((item, i) => [i, item]);
  checkCrossField({ mqtt: indexed(raw.mqtt), serial: indexed(raw.serial), modbus: indexed(raw.modbus), sink: indexed(raw.sink), downlink: indexed(raw.downlink), dropped: new Map() }, gatewayId, files, errors);
  const resolved: ResolvedConfig = {
    ...raw,
    gateway: { ...raw.gateway, id: gatewayId },
    journal: { ...raw.journal, path: resolve(opts.baseDir ?? process.cwd(), raw.journal.path) },
    mqtt: raw.mqtt.map((m, i) => withMqttPassword(resolveSecret(m, `mqtt[${i}]`, secrets, errors), `mqtt[${i}]`, errors)),
    sink: raw.sink.map((s, i) => ({ ...s, sasl: s.sasl ? resolveSecret(s.sasl, `sink[${i}].sasl`, secrets, errors) : undefined })),
  };
  if (errors.length) throw configError(errors);
  return camelize(resolved);
}

function issueMessage(issue: { code: string; message: string; keys?: string[] }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys) return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}

function configError(lines: string[]): SluiceError {
  const err = new SluiceError('SLUICE_CONFIG_INVALID', lines.join('\n'));
  (err as SluiceError & { lines: string[] }).lines = lines;
  return err;
}

/** The problems in an invalid config, one `dotted.path: message` each. */
export function configErrorLines(err: SluiceError): string[] {
  return (err as SluiceError & { lines?: string[] }).lines ?? [err.message];
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type ItemSchema<T> = { safeParse: (v: unknown) => { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[] }[] } } };

/**
 * The items of the list sections, for the cross-field checks of an invalid file: each as the
 * schema takes it, or else without the keys it refused (those keys then take their defaults, and
 * `aboutDroppedKey` drops what the checks say about them).
 */
function parsePartly(data: unknown): ParsedParts {
  const dropped = new Map<string, string[]>();
  const items = <T>(key: string, schema: ItemSchema<T>): [number, T][] => {
    const list = isTable(data) ? data[key] : undefined;
    if (!Array.isArray(list)) return [];
    return list.flatMap((item, i): [number, T][] => {
      const whole = schema.safeParse(item);
      if (whole.success) return [[i, whole.data]];
      if (!isTable(item)) return [];
      const bad = [...new Set(whole.error.issues.map((issue) => String(issue.path[0] ?? '')))];
      if (bad.includes('')) return [];
      const rest = schema.safeParse(Object.fromEntries(Object.entries(item).filter(([k]) => !bad.includes(k))));
      if (!rest.success) return [];
      dropped.set(`${key}[${i}]`, bad);
      return [[i, rest.data]];
    });
  };
  return { mqtt: items('mqtt', mqttSchema), serial: items('serial', serialSchema), modbus: items('modbus', modbusSchema), sink: items('sink', sinkSchema), downlink: items('downlink', downlinkSchema), dropped };
}

/** Whether a cross-field line is about an item's key the schema already refused (its default stood in). */
function aboutDroppedKey(line: string, dropped: Map<string, string[]>): boolean {
  const item = /^([a-z]+\[\d+\])/.exec(line)?.[1];
  const keys = item === undefined ? undefined : dropped.get(item);
  return keys !== undefined && keys.some((k) => new RegExp(`\\b${k}\\b`).test(line));
}

const DEFAULT_MQTT_PORTS: Record<string, string> = { 'mqtt:': '1883', 'tcp:': '1883', 'mqtts:': '8883', 'ssl:': '8883', 'ws:': '80', 'wss:': '443' };

/** Host and port an MQTT URL connects to: two sources with the same client id there kick each other off. */
function brokerOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname.toLowerCase()}:${u.port || DEFAULT_MQTT_PORTS[u.protocol] || ''}`;
  } catch {
    return url;
  }
}

function sanitizeHostname(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-') || 'gateway';
}

function checkCrossField(raw: ParsedParts, gatewayId: string, files: ConfigFiles, errors: string[]): void {
  const seen = new Map<string, string>();
  raw.mqtt.forEach(([i, m]) => {
    const prev = seen.get(`mqtt:${m.name}`);
    if (prev) errors.push(`mqtt[${i}].name: "${m.name}" is already used by ${prev}`);
    seen.set(`mqtt:${m.name}`, `mqtt[${i}]`);
    const clientId = m.client_id ?? `sluice-${gatewayId}-${m.name}`;
    const sameId = seen.get(`mqtt-client:${brokerOf(m.url)}:${clientId}`);
    if (sameId) errors.push(`mqtt[${i}].client_id: "${clientId}" is already used by ${sameId} on the same broker (they would take the session from each other forever)`);
    seen.set(`mqtt-client:${brokerOf(m.url)}:${clientId}`, `mqtt[${i}]`);
    if (m.reconnect_min_ms > m.reconnect_max_ms) errors.push(`mqtt[${i}].reconnect_min_ms: must not exceed reconnect_max_ms (${m.reconnect_max_ms})`);
    // MQTT 3.1.1 forbids a password without a user name, and brokers (Mosquitto among them) refuse it in MQTT 5 too.
    const givenPassword = ['password', 'password_env', 'password_file'].find((k) => (m as Record<string, unknown>)[k] !== undefined);
    if (givenPassword && m.username === undefined) errors.push(`mqtt[${i}].${givenPassword}: needs username (a broker refuses a password without a user name)`);
    if ((m.tls.cert_file === undefined) !== (m.tls.key_file === undefined)) errors.push(`mqtt[${i}].tls: cert_file and key_file go together`);
    checkTlsFiles(m.tls, `mqtt[${i}].tls`, files, errors);
  });
  raw.serial.forEach(([i, p]) => checkSerial(p, `serial[${i}]`, seen, errors));
  raw.modbus.forEach(([i, b]) => checkModbus(b, `modbus[${i}]`, seen, errors));
  raw.sink.forEach(([i, s]) => {
    const prev = seen.get(`sink:${s.name}`);
    if (prev) errors.push(`sink[${i}].name: "${s.name}" is already used by ${prev}`);
    seen.set(`sink:${s.name}`, `sink[${i}]`);
    if (s.retry_min_ms > s.retry_max_ms) errors.push(`sink[${i}].retry_min_ms: must not exceed retry_max_ms (${s.retry_max_ms})`);
    if ((s.tls.cert_file === undefined) !== (s.tls.key_file === undefined)) errors.push(`sink[${i}].tls: cert_file and key_file go together`);
    checkTlsFiles(s.tls, `sink[${i}].tls`, files, errors);
    if (s.sasl) checkSasl(s.sasl, `sink[${i}].sasl`, errors);
    // The exactly-once cursor in Kafka is a high-water mark: it cannot describe "new records sent, backlog not yet".
    if (s.delivery === 'exactly_once' && s.drain_order === 'newest_first') errors.push(`sink[${i}].drain_order: "newest_first" cannot be combined with delivery = "exactly_once"`);
    s.route.forEach((r, j) => {
      try {
        compileFilter(r.match, { topic: r.topic, key: r.key });
      } catch (err) {
        errors.push(`sink[${i}].route[${j}].match: ${(err as Error).message}`);
      }
    });
  });
  checkDownlinks(raw.downlink, { sinks: raw.sink.map(([, s]) => s.name), mqtt: raw.mqtt.map(([, m]) => m.name), serial: raw.serial.map(([, p]) => ({ name: p.name, path: p.path })) }, errors);
}

const STRUCTURED_DECODERS = ['json', 'csv', 'kv', 'nmea'];

function checkSerial(p: RawSerial, at: string, seen: Map<string, string>, errors: string[]): void {
  const prev = seen.get(`serial:${p.name}`);
  if (prev) errors.push(`${at}.name: "${p.name}" is already used by ${prev}`);
  seen.set(`serial:${p.name}`, at);
  const prevPath = seen.get(`serial-path:${p.path}`);
  if (prevPath) errors.push(`${at}.path: "${p.path}" is already read by ${prevPath}`);
  seen.set(`serial-path:${p.path}`, at);
  const onlyFor = (key: string, given: boolean, framing: string): void => {
    if (given && p.framing !== framing) errors.push(`${at}.${key}: only used with framing = "${framing}"`);
  };
  onlyFor('delimiter', p.delimiter !== undefined, 'delimiter');
  onlyFor('delimiter_hex', p.delimiter_hex !== undefined, 'delimiter');
  onlyFor('frame_length', p.frame_length !== undefined, 'fixed');
  onlyFor('regex', p.regex !== undefined, 'regex');
  if (p.framing === 'delimiter') {
    if (p.delimiter === undefined && p.delimiter_hex === undefined) errors.push(`${at}.delimiter: framing = "delimiter" needs delimiter or delimiter_hex`);
    if (p.delimiter !== undefined && p.delimiter_hex !== undefined) errors.push(`${at}: give only one of delimiter, delimiter_hex`);
  }
  if (p.framing === 'fixed') {
    if (p.frame_length === undefined) errors.push(`${at}.frame_length: framing = "fixed" needs frame_length`);
    else if (p.frame_length > p.max_frame_bytes) errors.push(`${at}.frame_length: must not exceed max_frame_bytes (${p.max_frame_bytes})`);
  }
  // The regex itself (compiles, never matches an empty string) is checked by the schema.
  if (p.framing === 'regex' && p.regex === undefined) errors.push(`${at}.regex: framing = "regex" needs regex`);
  if (p.decoder === 'csv' && p.csv_columns === undefined) errors.push(`${at}.csv_columns: decoder = "csv" needs csv_columns`);
  if (p.csv_columns !== undefined && p.decoder !== 'csv') errors.push(`${at}.csv_columns: only used with decoder = "csv"`);
  if (p.csv_columns && new Set(p.csv_columns).size !== p.csv_columns.length) errors.push(`${at}.csv_columns: column names must be unique`);
  if (p.kv_pair_separator !== undefined && p.kv_pair_separator === p.kv_separator) errors.push(`${at}.kv_pair_separator: must differ from kv_separator`);
  if (p.key !== undefined && p.key_field !== undefined) errors.push(`${at}: give only one of key, key_field`);
  if (p.key_field !== undefined && !STRUCTURED_DECODERS.includes(p.decoder)) errors.push(`${at}.key_field: needs a decoder that yields fields (${STRUCTURED_DECODERS.join(', ')})`);
  if (p.poll_request !== undefined && p.poll_request_hex !== undefined) errors.push(`${at}: give only one of poll_request, poll_request_hex`);
  if (p.poll_timeout_ms >= p.poll_interval_ms) errors.push(`${at}.poll_timeout_ms: must be below poll_interval_ms (${p.poll_interval_ms})`);
  if (p.reopen_min_ms > p.reopen_max_ms) errors.push(`${at}.reopen_min_ms: must not exceed reopen_max_ms (${p.reopen_max_ms})`);
}

function checkSasl(sasl: RawSasl, path: string, errors: string[]): void {
  const hasPassword = sasl.password !== undefined || sasl.password_env !== undefined || sasl.password_file !== undefined;
  const tokens = [sasl.token_file, sasl.token_command].filter((t) => t !== undefined).length;
  if (sasl.mechanism === 'oauthbearer') {
    if (tokens !== 1) errors.push(`${path}: oauthbearer needs exactly one of token_file, token_command`);
    if (sasl.username !== undefined || hasPassword) errors.push(`${path}: oauthbearer takes a token, not username/password`);
    return;
  }
  if (sasl.username === undefined) errors.push(`${path}.username: required for ${sasl.mechanism}`);
  if (!hasPassword) errors.push(`${path}: ${sasl.mechanism} needs one of password, password_env, password_file`);
  if (tokens > 0) errors.push(`${path}: token_file/token_command are for oauthbearer only`);
}

/** MQTT carries the password as binary data with a two-byte length: MQTT.js cannot send a longer one. */
function withMqttPassword<T extends { password?: Secret }>(section: T, path: string, errors: string[]): T {
  const bytes = section.password ? Buffer.byteLength(section.password.reveal(), 'utf8') : 0;
  if (bytes > MQTT_MAX_STRING_BYTES) errors.push(`${path}.password: is ${bytes} bytes; MQTT allows at most ${MQTT_MAX_STRING_BYTES}`);
  return section;
}

function resolveSecret<T extends { password?: string; password_env?: string; password_file?: string }>(
  section: T,
  path: string,
  secrets: SecretSources,
  errors: string[],
): WithSecret<T> {
  const { password, password_env: envName, password_file: file, ...rest } = section;
  const given = [password !== undefined, envName !== undefined, file !== undefined].filter(Boolean).length;
  if (given > 1) {
    errors.push(`${path}: give only one of password, password_env, password_file`);
    return rest as WithSecret<T>;
  }
  if (password !== undefined) return { ...rest, password: new Secret(password) } as WithSecret<T>;
  if (envName !== undefined) {
    const value = secrets.env[envName];
    if (value === undefined) {
      errors.push(`${path}.password_env: environment variable ${envName} is not set`);
      return rest as WithSecret<T>;
    }
    return { ...rest, password: new Secret(value) } as WithSecret<T>;
  }
  if (file !== undefined) {
    try {
      return { ...rest, password: new Secret(secrets.readFile(file).replace(/\r?\n$/, '')) } as WithSecret<T>;
    } catch (err) {
      errors.push(`${path}.password_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return rest as WithSecret<T>;
    }
  }
  return rest as WithSecret<T>;
}
