import { z } from 'zod';

/*
 * The single source of sluice's configuration: types, defaults and descriptions. TOML keys are
 * snake_case; `load.ts` hands the code a camelCase copy. `sluice schema` prints the JSON Schema
 * editors use, generated from this file.
 */

const secretFields = {
  password: z.string().optional().describe('Password inline. Prefer password_env or password_file: a TOML file is easily shared.'),
  password_env: z.string().optional().describe('Name of an environment variable holding the password.'),
  password_file: z.string().optional().describe('Path of a file holding the password (trailing newline removed).'),
};

const tlsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Use TLS. Default false.'),
    ca_file: z.string().optional().describe('PEM file of CA certificates to trust instead of the system CAs.'),
    cert_file: z.string().optional().describe('PEM client certificate, for mutual TLS.'),
    key_file: z.string().optional().describe('PEM private key of the client certificate, for mutual TLS.'),
    reject_unauthorized: z.boolean().default(true).describe('Verify the server certificate and name. Default true; turn off only for testing.'),
  })
  .describe('TLS settings.');

const subscriptionSchema = z.strictObject({
  topic: z.string().min(1).describe('MQTT topic filter, e.g. "sensors/#".'),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe('Subscription QoS. Default 1. QoS 0 messages cannot be acknowledged after the journal commit, so use 1 or 2.'),
});

const mqttSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').default('mqtt').describe('Name of this source; records carry "mqtt:<name>" as their source. Default "mqtt".'),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must start with mqtt://, mqtts://, ws:// or wss://').default('mqtt://127.0.0.1:1883').describe('Broker URL. Default "mqtt://127.0.0.1:1883".'),
  client_id: z.string().optional().describe('MQTT client id. Default "sluice-<gateway.id>-<name>". Must be stable across restarts for the persistent session to survive.'),
  username: z.string().optional().describe('Username, if the broker needs one.'),
  ...secretFields,
  protocol_version: z.union([z.literal(4), z.literal(5)]).default(5).describe('4 = MQTT 3.1.1, 5 = MQTT 5. Default 5.'),
  session_expiry_s: z.number().int().min(0).default(604800).describe('MQTT 5 session expiry interval, in seconds: how long the broker keeps the session (and queues messages) while sluice is away. Default 604800 (7 days).'),
  receive_maximum: z.number().int().min(1).max(65535).default(1000).describe('MQTT 5 receive maximum: QoS 1/2 messages the broker may have in flight to sluice. Larger lets more messages share one journal commit. Default 1000. (MQTT 3.1.1 brokers use their own limit; Mosquitto: max_inflight_messages.)'),
  keepalive_s: z.number().int().min(0).default(30).describe('Keepalive interval, in seconds. Default 30.'),
  connect_timeout_ms: z.number().int().min(100).default(10000).describe('Connect timeout, in milliseconds. Default 10000.'),
  reconnect_min_ms: z.number().int().min(10).default(500).describe('First reconnect delay, in milliseconds; it doubles (with jitter) up to reconnect_max_ms. Default 500.'),
  reconnect_max_ms: z.number().int().min(10).default(30000).describe('Largest reconnect delay, in milliseconds. Default 30000.'),
  max_payload_bytes: z.number().int().min(1).default(262144).describe('Payloads larger than this are acknowledged, not journaled, counted and logged. Default 262144 (256 KiB).'),
  tls: tlsSchema.prefault({}),
  subscribe: z.array(subscriptionSchema).min(1, 'at least one subscription is needed').describe('Topic filters to subscribe to.'),
});

const routeSchema = z.strictObject({
  match: z.string().min(1).describe('Topic filter with optional named wildcards: "+name" matches one level, "#name" (last) the rest. E.g. "sensors/+site/+device/#".'),
  topic: z.string().min(1).max(249).describe('Kafka topic; may use {name} placeholders from the match.'),
  key: z.string().optional().describe('Kafka key template, e.g. "{site}.{device}". Default: no key. Records with the same key keep their order.'),
  value_format: z
    .enum(['raw', 'envelope'])
    .default('raw')
    .describe('Kafka record value: "raw" = the payload as received (metadata in sluice.* headers); "envelope" = a JSON object with gateway, seq, source, topic, time and the payload (as JSON when it parses, else UTF-8 text or base64, named in payload_encoding). Default "raw".'),
});

const saslSchema = z.strictObject({
  mechanism: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'])
    .describe('SASL mechanism. plain/scram-* take username and a password; oauthbearer takes token_file or token_command (Amazon MSK IAM: a token_command printing an MSK IAM token, see README).'),
  username: z.string().min(1).optional().describe('SASL username (plain, scram-sha-256, scram-sha-512).'),
  ...secretFields,
  token_file: z.string().optional().describe('oauthbearer: file holding the current token (e.g. written by a sidecar); read again when the token nears expiry or token_refresh_s passed.'),
  token_command: z.string().optional().describe('oauthbearer: shell command printing a token on stdout; run again when the token nears expiry or token_refresh_s passed. Its stderr is not logged.'),
  token_refresh_s: z.number().int().min(1).default(300).describe('oauthbearer: longest a token is reused, in seconds; a JWT is refreshed earlier, 60 s before its "exp". Default 300.'),
});

const sinkSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').default('kafka').describe('Name of this sink; it names its cursor in the journal. Renaming it makes it a new sink. Default "kafka".'),
  brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).min(1, 'at least one broker is needed').describe('Bootstrap brokers, "host:port".'),
  client_id: z.string().optional().describe('Kafka client id. Default "sluice-<gateway.id>".'),
  acks: z.literal('all').default('all').describe('Producer acks. Only "all" is offered: a record counts as shipped only when every in-sync replica has it.'),
  batch_max_records: z.number().int().min(1).max(100000).default(2000).describe('Most records in one produce request. Default 2000.'),
  batch_max_bytes: z.number().int().min(1024).default(1048576).describe('Most payload bytes in one produce request. Default 1048576 (1 MiB).'),
  linger_ms: z.number().int().min(0).default(20).describe('How long to wait for more records before sending a small batch, in milliseconds. Default 20.'),
  request_timeout_ms: z.number().int().min(100).default(30000).describe('Time to wait for the broker to confirm a batch, in milliseconds; then the batch is retried. Default 30000.'),
  connection_timeout_ms: z.number().int().min(100).default(10000).describe('TCP/TLS connect timeout, in milliseconds. Default 10000.'),
  retry_min_ms: z.number().int().min(10).default(500).describe('First retry delay after a failed batch, in milliseconds; doubles with jitter. Default 500.'),
  retry_max_ms: z.number().int().min(10).default(30000).describe('Largest retry delay, in milliseconds. Retries never stop while records are pending. Default 30000.'),
  default_topic: z.string().optional().describe('Kafka topic for records no route matches (key: none). Default: none; such records are dropped, counted and logged.'),
  tls: tlsSchema.prefault({}),
  sasl: saslSchema.optional(),
  compression: z
    .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
    .default('zstd')
    .describe('Compression of produce requests: "none", "gzip", "snappy", "lz4" or "zstd". "zstd" was measured the best trade of bytes on the wire against CPU on a 2-core machine (BENCHMARKS.md); consumers must support it (Kafka clients >= 2.1, librdkafka). Default "zstd".'),
  delivery: z
    .enum(['at_least_once', 'exactly_once'])
    .default('at_least_once')
    .describe('"at_least_once": a crash between Kafka\'s ack and the cursor update sends a batch again (duplicates possible). "exactly_once": records and the cursor are committed in one Kafka transaction (transactional id "sluice-<gateway.id>-<sink name>"), so read_committed consumers see each record once; needs a broker with transactions. Default "at_least_once".'),
  cursor_topic: z
    .string()
    .min(1)
    .max(249)
    .default('sluice-cursors')
    .describe('exactly_once: compacted topic holding each sink\'s cursor, keyed "<gateway.id>/<sink name>" (created with cleanup.policy=compact if absent). Default "sluice-cursors".'),
  dead_letter_topic: z
    .string()
    .min(1)
    .max(249)
    .optional()
    .describe('Kafka topic for records Kafka will never accept (too large, invalid topic): sent there with sluice.error headers instead of being retried. Default: none; such records are dropped with a gap record (sluice/gaps).'),
  route: z.array(routeSchema).default([]).describe('Routes from source topics to Kafka topics; the first match wins.'),
});

export const configSchema = z.strictObject({
  gateway: z
    .strictObject({
      id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').optional().describe('Name of this gateway, sent with every record. Default: the hostname.'),
      shutdown_timeout_ms: z.number().int().min(100).default(10000).describe('How long a clean stop may take before sluice exits anyway, in milliseconds. Default 10000.'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('Log level. Default "info".'),
    })
    .prefault({}),
  journal: z
    .strictObject({
      path: z.string().min(1).default('/var/lib/sluice/journal.db').describe('SQLite journal file. Default "/var/lib/sluice/journal.db".'),
      durability: z.enum(['power', 'crash']).default('power').describe('"power": every commit is fsynced before anything is acknowledged (survives power loss). "crash": survives a process crash; the last commits may roll back on power loss; faster. Default "power".'),
      commit_delay_ms: z.number().int().min(0).max(1000).default(5).describe('Longest a record waits for its group commit, in milliseconds. Default 5.'),
      commit_max_records: z.number().int().min(1).max(100000).default(2000).describe('A group commit happens at once when this many records wait. Default 2000.'),
    })
    .prefault({}),
  mqtt: z.array(mqttSchema).default([]).describe('MQTT sources.'),
  sink: z.array(sinkSchema).default([]).describe('Kafka sinks.'),
});

export type ConfigInput = z.input<typeof configSchema>;
export type RawConfig = z.output<typeof configSchema>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input' });
}
