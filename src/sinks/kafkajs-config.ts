import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';
import { systemClock, type Clock } from '../util/clock.js';
import { kafkajsBrokers } from './bootstrap-brokers.js';
import { kafkajsSecurity, tokenSourceFor } from './kafka-security.js';
import { logLevel, type KafkaConfig } from './kafkajs.js';
import type { TokenSource } from './oauth-token.js';
import { ProduceRetryNotice } from './retry-notice.js';

/** One retry notice per sink (its config), not per producer: an incident spans the clients made during it. */
const retryNotices = new WeakMap<SinkConfig, ProduceRetryNotice>();

/** The sink's notice of kafkajs's internal send retries. */
export function retryNoticeFor(cfg: SinkConfig, logger: Logger, clock: Clock = systemClock): ProduceRetryNotice {
  let n = retryNotices.get(cfg);
  if (!n) retryNotices.set(cfg, (n = new ProduceRetryNotice(logger, clock)));
  return n;
}

/** Token sources live as long as their sink's config, not one producer: a reconnect reuses a valid token. */
const tokenSources = new WeakMap<SinkConfig, TokenSource | undefined>();

/** The kafkajs client options shared by the plain and the transactional producer. */
export function kafkajsConfig(cfg: SinkConfig, clientId: string, logger: Logger, clock: Clock = systemClock, notice?: ProduceRetryNotice): KafkaConfig {
  if (!tokenSources.has(cfg)) tokenSources.set(cfg, tokenSourceFor(cfg, clock));
  return {
    clientId,
    ...kafkajsBrokers(cfg.brokers),
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    enforceRequestTimeout: true,
    // A few quick retries inside kafkajs ride out leader changes; the sink's own loop retries forever.
    retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 3000 },
    ...kafkajsSecurity(cfg, clock, tokenSources.get(cfg)),
    // kafkajs logs every retry at error level; the sink logs state changes itself.
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      logger.debug({ kafkajs: entry.namespace, ...rest }, message);
      if (entry.level === logLevel.ERROR) notice?.kafkajsError(entry.namespace, message);
    },
  };
}
