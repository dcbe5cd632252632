import type { Logger } from 'pino';
import type { Component } from './component.js';
import type { Config } from './config/load.js';
import { GapRecorder } from './journal/gaps.js';
import type { Journal } from './journal/journal.js';
import { SqliteJournal } from './journal/sqlite-journal.js';
import { Metrics } from './metrics.js';
import type { KafkaClientFactory } from './sinks/kafka-client.js';
import { KafkaSink } from './sinks/kafka-sink.js';
import { MqttSource, type MqttClientFactory } from './sources/mqtt-source.js';
import { systemClock, type Clock } from './util/clock.js';
import { sleep } from './util/sleep.js';

export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
  createMqttClient?: MqttClientFactory;
  createKafkaClient?: KafkaClientFactory;
}

/**
 * Builds and wires sluice's components: journal first, then sinks, then sources; stops them in
 * reverse, once, within the configured deadline.
 */
export class Gateway {
  readonly journal: Journal;
  readonly sinks: KafkaSink[];
  readonly sources: MqttSource[];
  readonly metrics: Metrics;
  /** Every loss is reported here and becomes a gap record (`sluice/gaps`). */
  readonly gaps: GapRecorder;
  private started: Component[] = [];
  private stopping: Promise<boolean> | null = null;
  private readonly log: Logger;

  constructor(
    private readonly config: Config,
    deps: GatewayDeps,
  ) {
    const clock = deps.clock ?? systemClock;
    this.metrics = deps.metrics ?? new Metrics();
    this.log = deps.logger;
    const gatewayId = config.gateway.id;
    this.journal = new SqliteJournal({ ...config.journal, logger: deps.logger.child({ component: 'journal' }), clock });
    this.gaps = new GapRecorder({ journal: this.journal, metrics: this.metrics, logger: deps.logger.child({ component: 'gaps' }), clock, gatewayId });
    this.sinks = config.sink.map((s) => new KafkaSink(s, { journal: this.journal, logger: deps.logger, metrics: this.metrics, clock, gatewayId, createClient: deps.createKafkaClient, reportGap: this.gaps.report }));
    this.sources = config.mqtt.map((m) => new MqttSource(m, { journal: this.journal, logger: deps.logger, metrics: this.metrics, clock, gatewayId, createClient: deps.createMqttClient }));
  }

  async start(): Promise<void> {
    await this.journal.start();
    this.started.push(this.journal);
    this.journal.registerSinks(this.config.sink.map((s) => s.name));
    for (const c of [...this.sinks, ...this.sources]) {
      await c.start();
      this.started.push(c);
    }
    if (this.sinks.length === 0) this.log.warn('no [[sink]] configured: records are journaled and kept until one is');
    if (this.sources.length === 0) this.log.warn('no [[mqtt]] source configured: nothing will be ingested');
    this.log.info({ sources: this.sources.map((s) => s.name), sinks: this.sinks.map((s) => s.name) }, 'sluice ready');
  }

  /** Stops everything that started, in reverse order. Resolves true if it finished within the deadline. */
  stop(): Promise<boolean> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<boolean> {
    const deadline = Date.now() + this.config.gateway.shutdownTimeoutMs;
    const work = (async () => {
      for (const c of [...this.started].reverse()) {
        try {
          if (c instanceof KafkaSink) await c.stop(Math.max(100, deadline - Date.now() - 500));
          else await c.stop();
        } catch (err) {
          this.log.error({ err, component: c.name }, 'component failed to stop cleanly');
        }
      }
      this.started = [];
      this.log.info({ counters: this.metrics.snapshot() }, 'final counters');
      return true;
    })();
    const ok = await Promise.race([work, sleep(Math.max(0, deadline - Date.now())).then(() => false)]);
    if (!ok) this.log.error('shutdown deadline passed; exiting anyway (the journal stays consistent)');
    return ok;
  }
}
