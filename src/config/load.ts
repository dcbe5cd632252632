import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { SluiceError } from '../errors.js';
import { compileFilter } from '../sinks/topic-filter.js';
import { camelize, type Camelize } from './camel.js';
import { checkModbus } from './modbus-check.js';
import { configSchema, type RawConfig } from './schema.js';
import { Secret } from './secret.js';

type WithSecret<T> = Omit<T, 'password' | 'password_env' | 'password_file'> & { password?: Secret };
type RawMqtt = RawConfig['mqtt'][number];
type RawSink = RawConfig['sink'][number];
type RawSasl = NonNullable<RawSink['sasl']>;

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
  readFile: (path) => readFileSync(path, 'utf8'),
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
export function loadConfigFile(path: string, secrets: SecretSources = defaultSecretSources): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_UNREADABLE', `${path}: cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return parseConfig(text, { baseDir: dirname(resolve(path)), secrets });
}

export function parseConfig(text: string, opts: { baseDir?: string; secrets?: SecretSources; hostname?: string } = {}): Config {
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
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw configError(parsed.error.issues.map((i) => `${dottedPath(i.path)}: ${issueMessage(i)}`));
  }
  const raw = parsed.data;
  const errors: string[] = [];
  checkCrossField(raw, errors);
  const secrets = opts.secrets ?? defaultSecretSources;
  const resolved: ResolvedConfig = {
    ...raw,
    gateway: { ...raw.gateway, id: raw.gateway.id ?? sanitizeHostname(opts.hostname ?? hostname()) },
    journal: { ...raw.journal, path: resolve(opts.baseDir ?? process.cwd(), raw.journal.path) },
    mqtt: raw.mqtt.map((m, i) => resolveSecret(m, `mqtt[${i}]`, secrets, errors)),
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

function sanitizeHostname(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-') || 'gateway';
}

function checkCrossField(raw: RawConfig, errors: string[]): void {
  const seen = new Map<string, string>();
  raw.mqtt.forEach((m, i) => {
    const prev = seen.get(`mqtt:${m.name}`);
    if (prev) errors.push(`mqtt[${i}].name: "${m.name}" is already used by ${prev}`);
    seen.set(`mqtt:${m.name}`, `mqtt[${i}]`);
    if (m.reconnect_min_ms > m.reconnect_max_ms) errors.push(`mqtt[${i}].reconnect_min_ms: must not exceed reconnect_max_ms (${m.reconnect_max_ms})`);
    if ((m.tls.cert_file === undefined) !== (m.tls.key_file === undefined)) errors.push(`mqtt[${i}].tls: cert_file and key_file go together`);
  });
  raw.serial.forEach((p, i) => checkSerial(p, `serial[${i}]`, seen, errors));
  raw.modbus.forEach((b, i) => checkModbus(b, `modbus[${i}]`, seen, errors));
  raw.sink.forEach((s, i) => {
    const prev = seen.get(`sink:${s.name}`);
    if (prev) errors.push(`sink[${i}].name: "${s.name}" is already used by ${prev}`);
    seen.set(`sink:${s.name}`, `sink[${i}]`);
    if (s.retry_min_ms > s.retry_max_ms) errors.push(`sink[${i}].retry_min_ms: must not exceed retry_max_ms (${s.retry_max_ms})`);
    if ((s.tls.cert_file === undefined) !== (s.tls.key_file === undefined)) errors.push(`sink[${i}].tls: cert_file and key_file go together`);
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
}

const STRUCTURED_DECODERS = ['json', 'csv', 'kv', 'nmea'];

function checkSerial(p: RawConfig['serial'][number], at: string, seen: Map<string, string>, errors: string[]): void {
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
  if (p.framing === 'regex') {
    if (p.regex === undefined) errors.push(`${at}.regex: framing = "regex" needs regex`);
    else {
      try {
        if (new RegExp(p.regex).test('')) errors.push(`${at}.regex: must not match the empty string`);
      } catch (err) {
        errors.push(`${at}.regex: ${(err as Error).message}`);
      }
    }
  }
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
