import { z } from 'zod';
import * as g from './grammar.js';

/*
 * The single source of sluice's configuration: types, defaults and descriptions. TOML keys are
 * snake_case; `load.ts` hands the code a camelCase copy. `sluice schema` prints the JSON Schema
 * editors use, generated from this file.
 */

const secretFields = {
  password: z.string().optional().describe('Password inline. Prefer password_env or password_file: a TOML file is easily shared.'),
  password_env: z.string().optional().describe('Name of an environment variable holding the password.'),
  password_file: g.filePath().optional().describe('Path of a file holding the password (trailing newline removed).'),
};

const tlsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Use TLS. Default false.'),
    ca_file: g.pemFile('CA certificates').optional().describe('PEM file of CA certificates to trust instead of the system CAs. Absent: the system bundle ($SSL_CERT_FILE, default /etc/ssl/certs/ca-certificates.crt) plus Node\'s bundled CAs.'),
    cert_file: g.pemFile('a certificate').optional().describe('PEM client certificate, for mutual TLS.'),
    key_file: g.pemFile('an unencrypted private key matching cert_file').optional().describe('PEM private key of the client certificate, for mutual TLS.'),
    reject_unauthorized: z.boolean().default(true).describe('Verify the server certificate and name. Default true; turn off only for testing.'),
  })
  .describe('TLS settings.');

const overflowSchema = z.enum(['backpressure', 'drop_oldest']);

const subscriptionSchema = z.strictObject({
  topic: g.mqttTopicFilter().describe('MQTT topic filter, e.g. "sensors/#": levels split by "/", "+" alone in a level, "#" alone in the last; at most 65535 bytes.'),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe('Subscription QoS. Default 1. QoS 0 messages cannot be acknowledged after the journal commit, so use 1 or 2.'),
});

export const mqttSchema = z.strictObject({
  name: g.componentName().default('mqtt').describe('Name of this source; records carry "mqtt:<name>" as their source. Default "mqtt".'),
  url: g.mqttUrl().default('mqtt://127.0.0.1:1883').describe('Broker URL. Default "mqtt://127.0.0.1:1883".'),
  client_id: g.mqttClientId().optional().describe('MQTT client id, 1-65535 bytes; unique per broker. Default "sluice-<gateway.id>-<name>". Must be stable across restarts for the persistent session to survive.'),
  username: g.mqttString('a username').optional().describe('Username, if the broker needs one.'),
  ...secretFields,
  protocol_version: z.union([z.literal(4), z.literal(5)]).default(5).describe('4 = MQTT 3.1.1, 5 = MQTT 5. Default 5.'),
  session_expiry_s: g.durationS(0, g.MQTT_MAX_SESSION_EXPIRY_S).default(604800).describe('MQTT 5 session expiry interval, in seconds: how long the broker keeps the session (and queues messages) while sluice is away. Default 604800 (7 days).'),
  receive_maximum: z.number().int().min(1).max(65535).default(1000).describe('MQTT 5 receive maximum: QoS 1/2 messages the broker may have in flight to sluice. Larger lets more messages share one journal commit. Default 1000. (MQTT 3.1.1 brokers use their own limit; Mosquitto: max_inflight_messages.)'),
  keepalive_s: g.durationS(0, g.MQTT_MAX_KEEPALIVE_S).default(30).describe('Keepalive interval, in seconds. Default 30.'),
  connect_timeout_ms: g.durationMs(100).default(10000).describe('Connect timeout, in milliseconds. Default 10000.'),
  reconnect_min_ms: g.durationMs(10).default(500).describe('First reconnect delay, in milliseconds; it doubles (with jitter) up to reconnect_max_ms. Default 500.'),
  reconnect_max_ms: g.durationMs(10).default(30000).describe('Largest reconnect delay, in milliseconds. Default 30000.'),
  overflow: overflowSchema.default('backpressure').describe('When the journal reaches a bound: "backpressure" stops taking messages (sluice disconnects and the broker keeps them in the persistent session until there is room; nothing is lost), "drop_oldest" lets this source\'s oldest journaled records be evicted to make room, each eviction reported by a gap record. Default "backpressure".'),
  max_payload_bytes: z.number().int().min(1).max(g.MQTT_MAX_PACKET_BYTES).default(262144).describe('Payloads larger than this are acknowledged, not journaled, counted, logged once per topic and named in a payload_too_large gap record. Default 262144 (256 KiB).'),
  tls: tlsSchema.prefault({}),
  subscribe: z.array(subscriptionSchema).min(1, 'at least one subscription is needed').describe('Topic filters to subscribe to.'),
});

export const serialSchema = z.strictObject({
  name: g.componentName().describe('Name of this port; records carry "serial:<name>" as their source. Required, unique.'),
  path: g.filePath().describe('Device path. Prefer the stable /dev/serial/by-id/... link of a USB adapter over /dev/ttyUSB0, whose number changes with plug order. Required.'),
  baud_rate: z.number().int().min(50).max(4000000).default(9600).describe('Line speed, in bits per second. Default 9600 (NMEA GPS: usually 4800 or 9600).'),
  data_bits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8).describe('Data bits per character: 5, 6, 7 or 8. Default 8.'),
  parity: z.enum(['none', 'even', 'odd']).default('none').describe('Parity: "none", "even" or "odd" (mark and space parity are not supported on Linux). Default "none".'),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1).describe('Stop bits: 1 or 2 (1.5 is not supported on Linux). Default 1.'),
  flow_control: z.enum(['none', 'rtscts', 'xonxoff']).default('none').describe('Flow control: "none", "rtscts" (hardware RTS/CTS) or "xonxoff" (software XON/XOFF). Default "none".'),
  framing: z.enum(['line', 'delimiter', 'fixed', 'interbyte_timeout', 'regex', 'slip']).default('line').describe('How the byte stream is cut into frames: "line" (ends at \\n; a trailing \\r is removed), "delimiter" (ends at `delimiter`), "fixed" (every `frame_length` bytes), "interbyte_timeout" (ends when no byte arrives for `interbyte_timeout_ms`), "regex" (ends at a match of `regex`), "slip" (RFC 1055 SLIP packets). Empty frames are skipped. Default "line".'),
  delimiter: z.string().min(1).optional().describe('framing = "delimiter": the bytes that end a frame, as text (TOML escapes such as "\\r\\n" or "\\u0003" work). Not part of the frame. Give this or delimiter_hex.'),
  delimiter_hex: z.string().regex(/^([0-9A-Fa-f]{2})+$/, 'must be pairs of hex digits, e.g. "0d0a"').optional().describe('framing = "delimiter": the delimiter as hex bytes, e.g. "0d0a". Give this or delimiter.'),
  frame_length: z.number().int().min(1).optional().describe('framing = "fixed": bytes per frame. Required for that mode; at most max_frame_bytes.'),
  interbyte_timeout_ms: g.durationMs(1).default(50).describe('framing = "interbyte_timeout": a frame ends after this many milliseconds without a byte. Default 50.'),
  regex: g.framingRegex().optional().describe('framing = "regex": a JavaScript regular expression matching the delimiter that ends a frame (not part of the frame), applied to the bytes read as Latin-1, e.g. "\\r?\\n|;". Required for that mode.'),
  overflow: overflowSchema.default('backpressure').describe('When the journal is full: a serial port cannot be paused, so with "backpressure" new frames are dropped and counted (a gap record per second says how many); with "drop_oldest" this port\'s oldest journaled records are evicted to make room instead. Default "backpressure".'),
  max_frame_bytes: z.number().int().min(1).max(16777216).default(65536).describe('Largest frame kept, in bytes (without its delimiter). A longer frame is discarded, counted (sluice_source_rejected_total{reason="frame_too_large"}), reported as a gap and logged once; reading resumes after the next delimiter. Bounds the memory a port can use. Default 65536.'),
  decoder: z.enum(['raw', 'text', 'json', 'csv', 'kv', 'nmea']).default('text').describe('How a frame becomes a payload: "raw" (the bytes as they are), "text" (must be valid UTF-8; shipped as the text), "json" (must be a JSON value; shipped as is), "csv" (split into csv_columns; shipped as a JSON object), "kv" (key=value pairs; shipped as a JSON object), "nmea" (NMEA 0183 sentence, checksum verified; shipped as a JSON object). Default "text".'),
  csv_columns: z.array(z.string().min(1)).min(1).optional().describe('decoder = "csv": the column names, in order. A row with a different number of fields fails to decode. Required for that decoder.'),
  csv_separator: z.string().length(1).default(',').describe('decoder = "csv": the field separator, one character. Fields may be double-quoted. Default ",".'),
  kv_separator: z.string().min(1).default('=').describe('decoder = "kv": what separates a key from its value. Default "=".'),
  kv_pair_separator: z.string().min(1).optional().describe('decoder = "kv": what separates one pair from the next. Default: any run of spaces, tabs, "," or ";".'),
  parse_numbers: z.boolean().default(true).describe('decoders "csv" and "kv": values that look like numbers become JSON numbers. Default true.'),
  nmea_require_checksum: z.boolean().default(true).describe('decoder = "nmea": refuse sentences without a "*hh" checksum (a wrong checksum is always refused). Default true.'),
  on_decode_error: z.enum(['error_route', 'drop']).default('error_route').describe('A frame that fails to decode: "error_route" journals it raw to error_topic with header sluice.error giving the reason; "drop" counts it and reports a gap (reason "decode_failed"). Default "error_route".'),
  error_topic: g.mqttTopicName().default('serial/{name}/errors').describe('Source topic of frames that failed to decode; {name} is the port name. Route it like any topic. Default "serial/{name}/errors".'),
  topic: g.mqttTopicName().default('serial/{name}').describe('Source topic of decoded frames, which routes map to Kafka topics. {name} is the port name; {field} is a top-level field of the decoded object (csv, kv, nmea, json objects), e.g. "serial/{name}/{sentence}" for NMEA; a missing field reads "unknown". Default "serial/{name}".'),
  key: z.string().optional().describe('Fixed record key for every frame of this port. Give this or key_field, or neither (no key; a route may still set one).'),
  key_field: z.string().min(1).optional().describe('Take the record key from this top-level field of the decoded object (csv, kv, nmea, json objects). A frame without it gets no key, counted in sluice_serial_key_missing_total.'),
  poll_request: z.string().min(1).optional().describe('Polled sensors: text written to the port every poll_interval_ms (TOML escapes work, e.g. "R\\r\\n"). Give this or poll_request_hex, or neither (the sensor talks by itself).'),
  poll_request_hex: z.string().regex(/^([0-9A-Fa-f]{2})+$/, 'must be pairs of hex digits, e.g. "010300000002c40b"').optional().describe('Polled sensors: the request as hex bytes. Give this or poll_request.'),
  poll_interval_ms: g.durationMs(10).default(1000).describe('Polled sensors: time between requests, in milliseconds. Default 1000.'),
  poll_timeout_ms: g.durationMs(1).default(500).describe('Polled sensors: how long to wait for the first frame of a response, in milliseconds; must be below poll_interval_ms. A miss is counted (sluice_serial_poll_timeouts_total) and logged once per outage. Default 500.'),
  reopen_min_ms: g.durationMs(10).default(1000).describe('A missing or unplugged port is reopened after this delay, in milliseconds; it doubles (with jitter) up to reopen_max_ms, forever. Default 1000.'),
  reopen_max_ms: g.durationMs(10).default(30000).describe('Largest reopen delay, in milliseconds. Default 30000.'),
});

const modbusRegisterSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').describe('Name of the value in the poll record. Required, unique per device.'),
  table: z.enum(['coils', 'discrete_inputs', 'holding_registers', 'input_registers']).default('holding_registers').describe('Which table to read, i.e. the read function: "coils" (01), "discrete_inputs" (02), "holding_registers" (03) or "input_registers" (04). Default "holding_registers".'),
  address: z.number().int().min(0).max(65535).describe('Zero-based protocol address of the first register or bit (a data sheet\'s "40001" is address 0 of holding_registers). Required, 0-65535.'),
  type: z.enum(['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string']).default('uint16').describe('Data type: "bool" (coils and discrete inputs are always bool; a register reads true when non-zero), "int16"/"uint16" (1 register), "int32"/"uint32"/"float32" (2), "int64"/"uint64"/"float64" (4), "string" (count registers, 2 characters each). A 64-bit integer beyond 2^53 is shipped as a decimal string. Default "uint16".'),
  count: z.number().int().min(1).max(125).optional().describe('Registers the value occupies. Required for "string" (at most 125); for other types it follows from the type and, if given, must agree.'),
  order: z.enum(['ABCD', 'CDAB', 'BADC', 'DCBA']).default('ABCD').describe('Byte and word order of multi-byte values, named by where the bytes of the big-endian value land: "ABCD" big-endian (Modbus standard), "CDAB" word-swapped (common in energy meters), "BADC" byte-swapped, "DCBA" little-endian. 16-bit values only see the byte order (BADC/DCBA swap their two bytes). Default "ABCD".'),
  scale: z.number().finite().default(1).describe('The decoded number is multiplied by this, then offset is added. Default 1.'),
  offset: z.number().finite().default(0).describe('Added after scale. Default 0.'),
  unit: z.string().optional().describe('Engineering unit shipped with the value, e.g. "V", "kWh". Default: none.'),
  deadband: z.number().min(0).optional().describe('report = "on_change": a change smaller than this (after scaling) does not count as a change. Default: any change counts.'),
});

const modbusDeviceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').describe('Name of the device; it is {device} in the topic and the record key. Required, unique per bus.'),
  unit_id: z.number().int().min(0).max(255).describe('Modbus unit (slave) id: 1-247 on RTU; 0-255 on TCP (gateways route by it; a plain TCP device often answers to 1 or 255). Required.'),
  poll_interval_ms: z.number().int().min(10).max(86400000).default(1000).describe('Time between polls of this device, in milliseconds. A poll still running when the next is due makes that one skipped and counted (sluice_modbus_overruns_total). Default 1000.'),
  timeout_ms: z.number().int().min(1).max(60000).default(500).describe('How long to wait for each response, in milliseconds. Default 500.'),
  retries: z.number().int().min(0).max(10).default(1).describe('Requests repeated after a timeout, CRC error, garbled answer or "device busy" exception, before the values are reported bad. While the device is already failing it gets no retries, so a dead device holds the bus for at most timeout_ms per poll. Default 1.'),
  report: z.enum(['every_poll', 'on_change']).default('every_poll').describe('"every_poll": each poll is journaled. "on_change": a poll is journaled only when a value changed (beyond its deadband) or a quality changed since the last journaled one; saves bandwidth on metered links. Default "every_poll".'),
  register: z.array(modbusRegisterSchema).min(1, 'at least one register is needed').describe('The register map: the values read at each poll.'),
});

export const modbusSchema = z.strictObject({
  name: g.componentName().describe('Name of this bus; records carry "modbus:<name>" as their source. Required, unique.'),
  transport: z.enum(['rtu', 'tcp']).default('rtu').describe('"rtu": Modbus RTU on a serial port (RS-485), `path` and the line settings. "tcp": Modbus TCP to `address`. Default "rtu".'),
  path: z.string().min(1).optional().describe('rtu: device path of the RS-485 adapter; prefer its /dev/serial/by-id/... link. Required for rtu.'),
  baud_rate: z.number().int().min(300).max(4000000).default(9600).describe('rtu: line speed, in bits per second. Default 9600.'),
  data_bits: z.union([z.literal(7), z.literal(8)]).default(8).describe('rtu: data bits; Modbus RTU uses 8. Default 8.'),
  parity: z.enum(['none', 'even', 'odd']).default('even').describe('rtu: parity. The Modbus standard default is "even" (with 1 stop bit); many devices ship with "none" and 2 stop bits, or "none" and 1. Default "even".'),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1).describe('rtu: stop bits. Default 1.'),
  frame_gap_ms: z.number().min(0).max(1000).optional().describe('rtu: silence kept on the bus between a response and the next request, in milliseconds. Default: 3.5 character times at the baud rate (1.75 ms above 19200 baud, as the standard says), rounded up to whole milliseconds; raise it for slow devices or USB adapters that need it.'),
  address: g.brokerAddress().optional().describe('tcp: the device or gateway, "host:port" (port 502 usually). Required for tcp.'),
  connect_timeout_ms: g.durationMs(100).default(5000).describe('tcp: connect timeout, in milliseconds. Default 5000.'),
  topic: g.mqttTopicName().default('modbus/{name}/{device}').describe('Source topic of the poll records; {name} is the bus name, {device} the device name. Default "modbus/{name}/{device}".'),
  overflow: overflowSchema.default('backpressure').describe('When the journal is full: a poll cannot wait, so with "backpressure" its record is dropped and counted (a gap record per second says how many); with "drop_oldest" this bus\'s oldest journaled records are evicted to make room instead. Default "backpressure".'),
  reopen_min_ms: g.durationMs(10).default(1000).describe('A missing or unplugged port (or refused TCP connection) is retried after this delay, in milliseconds; it doubles (with jitter) up to reopen_max_ms, forever. Default 1000.'),
  reopen_max_ms: g.durationMs(10).default(30000).describe('Largest reopen delay, in milliseconds. Default 30000.'),
  device: z.array(modbusDeviceSchema).min(1, 'at least one device is needed').describe('The devices on this bus, polled one request at a time.'),
});

const routeSchema = z.strictObject({
  match: z.string().min(1).describe('Topic filter with optional named wildcards: "+name" matches one level, "#name" (last) the rest. E.g. "sensors/+site/+device/#".'),
  topic: g.kafkaTopicTemplate().describe('Kafka topic; may use {name} placeholders from the match (filled-in values have characters Kafka refuses replaced by "_").'),
  key: z.string().optional().describe('Kafka key template, e.g. "{site}.{device}". Default: no key. Records with the same key keep their order.'),
  priority: z.number().int().min(-1000).max(1000).default(0).describe('Eviction priority of the records this route matches: when the journal must evict, the lowest priority goes first (then the oldest). Default 0.'),
  overflow: overflowSchema.optional().describe('Overrides the source\'s overflow policy for the records this route matches ("backpressure" or "drop_oldest"). Default: the source\'s.'),
  value_format: z
    .enum(['raw', 'envelope'])
    .default('raw')
    .describe('Kafka record value: "raw" = the payload as received (metadata in the "sluice" header, see metadata_headers); "envelope" = a JSON object with gateway, seq, source, topic, time and the payload (as JSON when it parses, else UTF-8 text or base64, named in payload_encoding). Default "raw".'),
});

const saslSchema = z.strictObject({
  mechanism: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'])
    .describe('SASL mechanism. plain/scram-* take username and a password; oauthbearer takes token_file or token_command (Amazon MSK IAM: a token_command printing an MSK IAM token, see README).'),
  username: z.string().min(1).optional().describe('SASL username (plain, scram-sha-256, scram-sha-512).'),
  ...secretFields,
  token_file: g.filePath().optional().describe('oauthbearer: file holding the current token (e.g. written by a sidecar); read again when the token nears expiry or token_refresh_s passed.'),
  token_command: z.string().optional().describe('oauthbearer: shell command printing a token on stdout; run again when the token nears expiry or token_refresh_s passed. Its stderr is not logged.'),
  token_refresh_s: g.durationS(1).default(300).describe('oauthbearer: longest a token is reused, in seconds; a JWT is refreshed earlier, 60 s before its "exp". Default 300.'),
});

export const sinkSchema = z.strictObject({
  name: g.componentName().default('kafka').describe('Name of this sink; it names its cursor in the journal. Renaming it makes it a new sink. Default "kafka".'),
  brokers: z.array(g.brokerAddress()).min(1, 'at least one broker is needed').describe('Bootstrap brokers, "host:port" (IPv6: "[::1]:9092"), port 1-65535.'),
  client_id: g.kafkaClientId().optional().describe('Kafka client id. Default "sluice-<gateway.id>".'),
  acks: z.literal('all').default('all').describe('Producer acks. Only "all" is offered: a record counts as shipped only when every in-sync replica has it.'),
  batch_max_records: z.number().int().min(1).max(100000).default(2000).describe('Most records in one produce request. Default 2000.'),
  batch_max_bytes: z.number().int().min(1024).max(g.MAX_TIMER_MS).default(1048576).describe('Most payload bytes in one produce request. Default 1048576 (1 MiB).'),
  linger_ms: g.durationMs(0).default(20).describe('How long to wait for more records before sending a small batch, in milliseconds. Default 20.'),
  request_timeout_ms: g.durationMs(100).default(30000).describe('Time to wait for the broker to confirm a batch, in milliseconds; then the batch is retried. Default 30000.'),
  connection_timeout_ms: g.durationMs(100).default(10000).describe('TCP/TLS connect timeout, in milliseconds. Default 10000.'),
  retry_min_ms: g.durationMs(10).default(500).describe('First retry delay after a failed batch, in milliseconds; doubles with jitter. Default 500.'),
  retry_max_ms: g.durationMs(10).default(30000).describe('Largest retry delay, in milliseconds. Retries never stop while records are pending. Default 30000.'),
  drain_order: z.enum(['fifo', 'newest_first']).default('fifo').describe('"fifo": oldest first, order per key holds. "newest_first": records arriving now are sent before the backlog, which follows; breaks order per key during a drain (every record still carries its seq and capture time). Default "fifo".'),
  max_bytes_per_second: z.number().int().min(1024).optional().describe('Upload cap for metered links, in payload bytes per second (averaged over the drain). Default: no cap.'),
  progress_interval_s: g.durationS(1).default(30).describe('While a backlog drains, a log line every this many seconds gives records and bytes left, rate and ETA. Default 30.'),
  gap_topic: g.kafkaTopic().default('sluice-gaps').describe('Kafka topic for gap and alarm records (source topic "sluice/gaps") when no route matches them. Default "sluice-gaps".'),
  default_topic: g.kafkaTopic().optional().describe('Kafka topic for records no route matches (key: none). Default: none; such records are dropped, counted and logged.'),
  tls: tlsSchema.prefault({}),
  sasl: saslSchema.optional(),
  compression: z
    .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
    .default('zstd')
    .describe('Compression of produce requests: "none", "gzip", "snappy", "lz4" or "zstd". "zstd" was measured the best trade of bytes on the wire against CPU on a 2-core machine (BENCHMARKS.md); consumers must support it (Kafka clients >= 2.1, librdkafka). Default "zstd".'),
  metadata_headers: z
    .enum(['compact', 'legacy'])
    .default('compact')
    .describe('How each Kafka record says where it came from. "compact": one header "sluice" = "1|<gateway>|<source>|<seq>|<time ms>|<time_quality>|<clock_time>|<topic>" (README, "Wire format"); about 0.6 × the drain CPU per record of "legacy" (measured). "legacy": the separate string headers sluice.gateway, sluice.seq, sluice.source, sluice.topic, sluice.time (and sluice.time_quality, sluice.clock_time) of earlier versions, for consumers that read those. Default "compact".'),
  delivery: z
    .enum(['at_least_once', 'exactly_once'])
    .default('at_least_once')
    .describe('"at_least_once": a crash between Kafka\'s ack and the cursor update sends a batch again (duplicates possible). "exactly_once": records and the cursor are committed in one Kafka transaction (transactional id "sluice-<gateway.id>-<sink name>"), so read_committed consumers see each record once; needs a broker with transactions. Default "at_least_once".'),
  cursor_topic: g
    .kafkaTopic()
    .default('sluice-cursors')
    .describe('exactly_once: compacted topic holding each sink\'s cursor, keyed "<gateway.id>/<sink name>" (created with cleanup.policy=compact if absent). Default "sluice-cursors".'),
  dead_letter_topic: g
    .kafkaTopic()
    .optional()
    .describe('Kafka topic for records Kafka will never accept (too large, invalid topic): sent there with sluice.error headers instead of being retried. Default: none; such records are dropped with a gap record (sluice/gaps).'),
  route: z.array(routeSchema).default([]).describe('Routes from source topics to Kafka topics; the first match wins.'),
});

const downlinkRouteSchema = z.strictObject({
  target: z.string().min(1).max(1024).describe('Which commands this route takes, by their "target": levels split by "/", "+name" matches one level, "#name" (last) the rest, e.g. "valve/+id". Required.'),
  mqtt: g.componentName().optional().describe('Name of the [[mqtt]] source whose broker and connection settings (url, username, password, tls, protocol_version, session_expiry_s) the command is published with (its own client, id "<client_id>-downlink"). Give this or serial / serial_path.'),
  topic: z.string().min(1).max(65535).optional().describe('mqtt: MQTT topic template, e.g. "devices/{id}/set"; {name} is a wildcard value of `target`, {target} the whole target. Required with mqtt.'),
  qos: z.union([z.literal(1), z.literal(2)]).default(2).describe('mqtt: QoS of the PUBLISH. 2 = exactly once to the broker (the packet id is journaled before the PUBLISH, so a resend after a crash is dropped by the broker); 1 = at least once (a crash between PUBLISH and PUBACK sends it again). Default 2.'),
  retain: z.boolean().default(false).describe('mqtt: publish with the retain flag, so a device that connects later still gets the last command. Default false.'),
  serial: g.componentName().optional().describe('Name of a [[serial]] source: the command\'s bytes are written to that source\'s open port (the port is not opened twice). Give this, serial_path or mqtt.'),
  serial_path: g.filePath().optional().describe('A serial port no [[serial]] source reads: opened by the downlink on first use (8N1 at baud_rate) and reopened after errors.'),
  baud_rate: z.number().int().min(50).max(4000000).default(9600).describe('serial_path: line speed, in bits per second. Default 9600.'),
  line_ending: z.enum(['none', 'lf', 'crlf']).default('none').describe('serial: what is written after the payload: "none" (the bytes as given), "lf" ("\\n") or "crlf" ("\\r\\n"): a line. Default "none".'),
});

export const downlinkSchema = z.strictObject({
  name: g.componentName().default('downlink').describe('Name of this downlink; result records carry "downlink:<name>" as their source. Default "downlink".'),
  sink: g.componentName().optional().describe('Name of the [[sink]] whose Kafka connection settings (brokers, tls, sasl, timeouts) the command consumer reuses. Default: the only [[sink]] (required when there are several).'),
  topic: g.kafkaTopicTemplate().default('sluice-commands').describe('Kafka topic commands are read from; "{gateway}" is replaced by gateway.id (a topic per gateway). Default "sluice-commands".'),
  group_id: z.string().min(1).max(255).optional().describe('Kafka consumer group. Default "sluice-<gateway.id>-downlink-<name>" (one group per gateway: every gateway reads every command record and keeps its own).'),
  select: z.enum(['key', 'header', 'all']).default('key').describe('Which command records are this gateway\'s: "key" (the record key equals gateway.id), "header" (the header named select_header equals gateway.id), "all" (every record on the topic: a topic per gateway). Others are skipped without a result. Default "key".'),
  select_header: z.string().min(1).max(255).default('gateway').describe('select = "header": the header holding the gateway id. Default "gateway".'),
  result_topic: g.mqttTopicName().default('sluice/downlink/{name}').describe('Source topic of the result records ({name} = this downlink\'s name); route it to a Kafka topic with a [[sink.route]], e.g. match = "sluice/downlink/#". Default "sluice/downlink/{name}".'),
  default_ttl_s: g.durationS(1).default(300).describe('Time to live of a command that gives neither ttl_s nor deadline, in seconds from when sluice received it. Default 300.'),
  max_payload_bytes: z.number().int().min(1).max(16777216).default(65536).describe('Largest command payload (after decoding), in bytes; a larger one is rejected ("payload_too_large"). Default 65536.'),
  max_waiting: z.number().int().min(1).max(10000000).default(10000).describe('Most commands waiting for delivery at once (journaled, not yet finished). Default 10000.'),
  overflow: z.enum(['reject_new', 'drop_oldest']).default('reject_new').describe('With max_waiting commands waiting: "reject_new" rejects the new command ("overflow"); "drop_oldest" rejects the oldest waiting command that is not in flight ("overflow") and takes the new one. Either way the result record says so. Default "reject_new".'),
  session_timeout_ms: g.durationMs(1000, 300000).default(10000).describe('Kafka consumer group session timeout, in milliseconds: after a crash, the restarted gateway waits about this long (at most this plus 5 s, the rebalance timeout sluice sets) for the group to let go of its old member before it reads again. Must lie within the broker\'s group.min/max.session.timeout.ms (default 6000-1800000). Default 10000.'),
  retries: z.number().int().min(0).max(1000).default(3).describe('Attempts after the first when the broker refuses a PUBLISH (reason code >= 0x80) or a serial write fails; then the command is "failed". A broker or port that is away is not an attempt: the command waits until it expires. Default 3.'),
  retry_min_ms: g.durationMs(10).default(1000).describe('First delay before a retry, in milliseconds; doubles with jitter up to retry_max_ms. Also the consumer\'s reconnect delay. Default 1000.'),
  retry_max_ms: g.durationMs(10).default(30000).describe('Largest retry delay, in milliseconds. Default 30000.'),
  keep_done_s: g.durationS(60).default(604800).describe('Finished command ids are kept this long, in seconds, so a command delivered again by Kafka (or produced again with the same id) is recognised and not delivered twice. Default 604800 (7 days).'),
  keep_done_max: z.number().int().min(1000).max(10000000).default(100000).describe('Most finished command ids kept (the oldest go first past it). Default 100000.'),
  route: z.array(downlinkRouteSchema).min(1, 'at least one route is needed').describe('Where commands go, by target; the first match wins. A command no route matches is rejected ("no_route").'),
});

export const configSchema = z.strictObject({
  gateway: z
    .strictObject({
      id: z.string().min(1).max(253).regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." or "-"').optional().describe('Name of this gateway, sent with every record. Default: the hostname.'),
      shutdown_timeout_ms: g.durationMs(100).default(10000).describe('How long a clean stop may take before sluice exits anyway, in milliseconds. Default 10000.'),
      stall_after_s: g.durationS(1).default(300).describe('A source or sink that has work and makes no progress for longer than this, in seconds, is reported as stalled: a source paused for a full journal or holding acknowledgements no commit releases, a serial port whose bytes become no frames, health records that stopped (at least three intervals), a sink with lag that ships nothing while Kafka answers. /readyz answers 503 "degraded", `sluice status` and sluice_stalled{component} show it, and a "stalled" alarm gap record goes to Kafka. Default 300.'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('Log level. Default "info". `--log-level` overrides it; SIGHUP applies a changed one.'),
      format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('"json": JSON lines (for journald); "pretty": one readable line per entry; "auto": pretty when stdout is a terminal, else JSON. Default "auto".'),
    })
    .prefault({}),
  journal: z
    .strictObject({
      path: g.filePath().default('/var/lib/sluice/journal.db').describe('SQLite journal file. Default "/var/lib/sluice/journal.db".'),
      durability: z.enum(['power', 'crash']).default('power').describe('"power": every commit is fsynced before anything is acknowledged (survives power loss). "crash": survives a process crash; the last commits may roll back on power loss; faster. Default "power".'),
      commit_delay_ms: g.durationMs(0, 1000).default(5).describe('Longest a record waits for its group commit, in milliseconds. Default 5.'),
      commit_max_records: z.number().int().min(1).max(100000).default(2000).describe('A group commit happens at once when this many records wait. Default 2000.'),
      max_bytes: z.number().int().min(65536).optional().describe('Most bytes the journal database may hold (SQLite pages in use), in bytes. At the bound, sources apply their overflow policy. Default: no bound besides min_free_bytes.'),
      max_age_s: g.durationS(1, g.MAX_SAFE_S).optional().describe('Records older than this (capture time), in seconds, are evicted whatever the policy, and a gap record says so. Default: kept until shipped.'),
      min_free_bytes: z.number().int().min(0).default(67108864).describe('Stop taking records before the filesystem holding the journal has less than this free, in bytes (space the journal already owns counts as free). Default 67108864 (64 MiB).'),
      reserve_bytes: z.number().int().min(0).max(1073741824).default(524288).describe('Bytes held in a reserve file beside the journal (<path>-reserve) and given back the moment the disk fills, so moving cursors and deleting shipped records still work on a full disk; taken back when there is room (from free space, or from the journal\'s own free pages). 0 = no reserve. Default 524288 (512 KiB).'),
    })
    .prefault({}),
  http: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Serve /metrics (Prometheus), /healthz, /readyz and /status (read by `sluice status`). Default true.'),
      host: g.listenHost().default('127.0.0.1').describe('Address to listen on. Default "127.0.0.1" (this machine only); the endpoints have no authentication.'),
      port: g.port().default(9793).describe('TCP port. Default 9793.'),
      degraded_after_s: g.durationS(1).default(300).describe('A sink that has been failing for longer than this, in seconds, makes /readyz and `sluice status` report "degraded". Default 300.'),
    })
    .prefault({})
    .describe('The local metrics, health and status endpoints.'),
  health: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Journal a gateway health record (CPU, temperature, memory, disk, network, backlog) every interval_s. Default true.'),
      interval_s: z.number().int().min(1).max(86400).default(60).describe('Seconds between health records. Default 60.'),
      topic: g.mqttTopicName().default('sluice/health').describe('Source topic of health records; route it to a Kafka topic with a [[sink.route]]. Default "sluice/health".'),
    })
    .prefault({})
    .describe('Gateway health as data: records shipped through the journal like any reading (source "sluice:health").'),
  time: z
    .strictObject({
      sync_source: z.enum(['auto', 'timesyncd', 'timedatectl', 'assume_synced']).default('auto').describe('How sluice tells whether the system clock is synchronised: "timesyncd" (the file /run/systemd/timesync/synchronized that systemd-timesyncd writes at its first sync), "timedatectl" (`timedatectl show -p NTPSynchronized`, the kernel\'s verdict, also set by chrony and ntpd; spawned at most every poll_s), "auto" (the file when present, else timedatectl), "assume_synced" (a board with a battery-backed clock or GPS time sluice cannot read). Until synchronised, records are marked "unsynced" and corrected if the clock syncs while they are journaled. Default "auto".'),
      poll_s: z.number().int().min(1).max(86400).default(30).describe('Seconds between runs of timedatectl (the timesyncd file is looked at every second). Default 30.'),
      jump_threshold_ms: z.number().int().min(1).max(60000).default(20).describe('The wall clock moving against the monotonic clock by more than this, in milliseconds, is a jump (a clock step): records after it are dated in a new clock epoch. Also bounds the error of a corrected time. Default 20.'),
      unsynced_alarm_after_s: g.durationS(1).default(3600).describe('A clock not known synchronised for longer than this, in seconds (since sluice started or the clock last was), raises an alarm: an error log line, sluice_clock_alarm = 1, a "clock_unsynced" gap record, /readyz degraded. Default 3600.'),
    })
    .prefault({})
    .describe('Capture times on a gateway without a battery-backed clock: sync state, jumps, correction (see README, "Time").'),
  mqtt: z.array(mqttSchema).default([]).describe('MQTT sources.'),
  serial: z.array(serialSchema).default([]).describe('Serial-port sources (sensors on a UART or USB-serial adapter).'),
  modbus: z.array(modbusSchema).default([]).describe('Modbus sources: one entry per bus (an RS-485 port with Modbus RTU, or a Modbus TCP connection), each with the devices polled on it.'),
  sink: z.array(sinkSchema).default([]).describe('Kafka sinks.'),
  downlink: z.array(downlinkSchema).default([]).describe('Commands from Kafka to devices (see README, "Downlink").'),
});

export type ConfigInput = z.input<typeof configSchema>;
export type RawConfig = z.output<typeof configSchema>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input' });
}
