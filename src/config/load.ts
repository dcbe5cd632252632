import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { SluiceError } from '../errors.js';
import { compileFilter } from '../sinks/topic-filter.js';
import { camelize, type Camelize } from './camel.js';
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
  raw.sink.forEach((s, i) => {
    const prev = seen.get(`sink:${s.name}`);
    if (prev) errors.push(`sink[${i}].name: "${s.name}" is already used by ${prev}`);
    seen.set(`sink:${s.name}`, `sink[${i}]`);
    if (s.retry_min_ms > s.retry_max_ms) errors.push(`sink[${i}].retry_min_ms: must not exceed retry_max_ms (${s.retry_max_ms})`);
    if ((s.tls.cert_file === undefined) !== (s.tls.key_file === undefined)) errors.push(`sink[${i}].tls: cert_file and key_file go together`);
    if (s.sasl) checkSasl(s.sasl, `sink[${i}].sasl`, errors);
    s.route.forEach((r, j) => {
      try {
        compileFilter(r.match, { topic: r.topic, key: r.key });
      } catch (err) {
        errors.push(`sink[${i}].route[${j}].match: ${(err as Error).message}`);
      }
    });
  });
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
