import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { parseConfig, type Config } from '../../src/config/load.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { createKafkajsClient, type KafkaClientFactory } from '../../src/sinks/kafka-client.js';
import { KafkaSink } from '../../src/sinks/kafka-sink.js';
import { systemClock } from '../../src/util/clock.js';

/** What a sink-level test needs besides the broker: one [[sink]] and its route. */
export interface SinkTomlOptions {
  gatewayId: string;
  journalPath: string;
  bootstrap: string;
  sinkName: string;
  topic: string;
  cursorTopic: string;
  batchMaxRecords?: number;
}

/** A config with a journal and one exactly_once sink routing "dev/<device>/…" to `topic`. */
export function exactlyOnceToml(o: SinkTomlOptions): string {
  return `
[gateway]
id = "${o.gatewayId}"
[journal]
path = "${o.journalPath}"
durability = "crash"
[[sink]]
name = "${o.sinkName}"
brokers = ["${o.bootstrap}"]
delivery = "exactly_once"
cursor_topic = "${o.cursorTopic}"
batch_max_records = ${o.batchMaxRecords ?? 100}
linger_ms = 0
retry_min_ms = 50
retry_max_ms = 500
[[sink.route]]
match = "dev/+device/#"
topic = "${o.topic}"
key = "{device}"
`;
}

/**
 * The production KafkaSink over a real SqliteJournal, in this process, without the gateway
 * around it: a test can reach into the journal between runs. Log lines (pino JSON) are kept in
 * `lines` (and echoed to stdout with `echo`). The client factory is the sink's injected one.
 */
export class SinkRun {
  readonly lines: string[] = [];
  readonly metrics = new Metrics();
  readonly journal: SqliteJournal;
  readonly sink: KafkaSink;
  readonly config: Config;
  /** Clients the sink made (a fenced sink must not make another). */
  clients = 0;

  constructor(toml: string, opts: { createClient?: KafkaClientFactory; echo?: boolean } = {}) {
    this.config = parseConfig(toml);
    const logger = pino(
      { level: 'info' },
      {
        write: (line: string) => {
          this.lines.push(line.trimEnd());
          if (opts.echo) process.stdout.write(line);
        },
      },
    );
    mkdirSync(dirname(this.config.journal.path), { recursive: true });
    this.journal = new SqliteJournal({ ...this.config.journal, logger, clock: systemClock });
    const factory = opts.createClient ?? createKafkajsClient;
    this.sink = new KafkaSink(this.sinkConfig, {
      journal: this.journal,
      logger,
      metrics: this.metrics,
      clock: systemClock,
      gatewayId: this.config.gateway.id,
      createClient: (...args) => {
        this.clients++;
        return factory(...args);
      },
    });
  }

  get sinkConfig(): Config['sink'][number] {
    return this.config.sink[0]!;
  }

  get cursor(): number {
    return this.journal.cursor(this.sinkConfig.name);
  }

  /** Opens the journal (the sink not yet started). */
  async open(): Promise<this> {
    await this.journal.start();
    this.journal.registerSinks([this.sinkConfig.name]);
    return this;
  }

  /** Journals readings "dev/d<i % 3>/r" with payloads `${prefix}<i>`; returns the last seq. */
  append(prefix: string, count: number, t0 = Date.now()): number {
    let seq = 0;
    for (let i = 0; i < count; i++) {
      seq = this.journal.append({ time: t0 + i, source: 'test', topic: `dev/d${i % 3}/r`, key: null, payload: Buffer.from(`${prefix}${i}`), headers: null });
    }
    this.journal.flush();
    return seq;
  }

  /** Log lines (parsed) whose message matches. */
  logs(pattern: RegExp): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => pattern.test(String(l.msg)));
  }

  async stop(): Promise<void> {
    await this.sink.stop();
    await this.journal.stop();
  }
}
