import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import type { SinkConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { systemCas } from '../util/tls-trust.js';
import { TokenSource } from './oauth-token.js';

/** What kafkajs needs for TLS and SASL. */
export interface KafkajsSecurity {
  ssl?: ConnectionOptions;
  sasl?: SASLOptions;
}

/**
 * Turns a sink's `tls` and `sasl` sections into kafkajs options. Files are read here, at client
 * creation, so a fixed certificate or token file is picked up on the next reconnect.
 * The server certificate and its name are checked unless `reject_unauthorized = false`.
 */
export function kafkajsSecurity(cfg: SinkConfig, clock: Clock, tokens?: TokenSource): KafkajsSecurity {
  const out: KafkajsSecurity = {};
  const tls = cfg.tls;
  if (tls.enabled) {
    out.ssl = {
      ca: tls.caFile ? [readPem(tls.caFile, 'tls.ca_file')] : systemCas(),
      cert: tls.certFile ? readPem(tls.certFile, 'tls.cert_file') : undefined,
      key: tls.keyFile ? readPem(tls.keyFile, 'tls.key_file') : undefined,
      rejectUnauthorized: tls.rejectUnauthorized,
    };
  }
  const sasl = cfg.sasl;
  if (sasl) {
    if (sasl.mechanism === 'oauthbearer') {
      const source = tokens ?? tokenSourceFor(cfg, clock)!;
      out.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await source.get() }) };
    } else {
      out.sasl = { mechanism: sasl.mechanism, username: sasl.username ?? '', password: sasl.password?.reveal() ?? '' } as SASLOptions;
    }
  }
  return out;
}

/** One token source per sink, kept across producer re-creations so a token is not fetched per reconnect. */
export function tokenSourceFor(cfg: SinkConfig, clock: Clock): TokenSource | undefined {
  const sasl = cfg.sasl;
  if (sasl?.mechanism !== 'oauthbearer') return undefined;
  const origin = sasl.tokenFile !== undefined ? { file: sasl.tokenFile } : { command: sasl.tokenCommand ?? '' };
  return new TokenSource(origin, sasl.tokenRefreshS * 1000, clock);
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    // Retriable: the file may be put in place (or its mount appear) while sluice waits.
    throw new SluiceError('SLUICE_KAFKA_AUTH', `sink ${key} ${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { retriable: true, cause: err });
  }
}

/**
 * A short hint for the one log line an outage gets, when the error says what to fix: a refused
 * login or a certificate problem will not go away by waiting.
 */
export function securityHint(err: unknown): string | undefined {
  const text = `${(err as Error)?.name ?? ''} ${String((err as { type?: unknown })?.type ?? '')} ${(err as Error)?.message ?? String(err)} ${String((err as { cause?: Error })?.cause?.message ?? '')}`;
  if (/SASL|authentication failed|Authentication failed|ILLEGAL_SASL_STATE|UNSUPPORTED_SASL_MECHANISM/i.test(text)) return 'the broker refused the SASL login: check sink.sasl (mechanism, username, password or token)';
  if (/certificate|self[- ]signed|CERT_|unable to verify|altnames|ERR_TLS|SSL routines|alert/i.test(text)) return 'TLS handshake failed: check sink.tls (ca_file, cert_file/key_file) and the broker address';
  if (/AUTHORIZATION_FAILED|Not authorized|authorization failed/i.test(text)) return 'the broker refused access: grant the sink\'s principal WRITE and DESCRIBE on the topic (and on the transactional id for exactly_once)';
  return undefined;
}
