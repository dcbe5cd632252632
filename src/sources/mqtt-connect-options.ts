import { readFileSync } from 'node:fs';
import type { MqttConfig } from '../config/load.js';
import { systemCas } from '../util/tls-trust.js';
import type { IClientOptions } from './mqtt.js';

/**
 * The connect options every MQTT.js client sluice opens to an [[mqtt]] block's broker shares (the
 * source's and the downlink's publisher): credentials, protocol, a persistent session, keepalive,
 * connect timeout, TLS. Each adds its own client id, stores, reconnect policy and properties.
 */
export function brokerConnectOptions(cfg: MqttConfig): IClientOptions {
  return {
    username: cfg.username,
    password: cfg.password?.reveal(),
    protocolVersion: cfg.protocolVersion,
    // Persistent sessions: the broker keeps what is not acknowledged across reconnects.
    clean: false,
    keepalive: cfg.keepaliveS,
    connectTimeout: cfg.connectTimeoutMs,
    // Subscriptions (if any) are the caller's to reconcile.
    resubscribe: false,
    // MQTT.js otherwise calls the `debug` package several times per packet: ~3% of CPU, measured.
    log: () => undefined,
    // mqtt-packet otherwise pre-builds a 2-byte Buffer for every packet id, 65,536 of them: ~6 MB
    // of heap (a third of sluice's idle heap, measured) to save one tiny allocation per ack.
    writeCache: false,
    ...tlsOptions(cfg),
  };
}

/** TLS material for an mqtts:// or wss:// URL, or with [mqtt.tls] enabled; nothing otherwise. */
function tlsOptions(cfg: MqttConfig): Partial<IClientOptions> {
  if (!(cfg.tls.enabled || cfg.url.startsWith('mqtts') || cfg.url.startsWith('wss'))) return {};
  return {
    ca: cfg.tls.caFile ? readFileSync(cfg.tls.caFile) : systemCas(),
    cert: cfg.tls.certFile ? readFileSync(cfg.tls.certFile) : undefined,
    key: cfg.tls.keyFile ? readFileSync(cfg.tls.keyFile) : undefined,
    rejectUnauthorized: cfg.tls.rejectUnauthorized,
  };
}
