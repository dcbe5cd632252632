import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { mkdirSync, openSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './net.js';
import { waitFor } from './wait-for.js';

const root = resolve(import.meta.dirname, '../../..');

/** The directory of Apache Kafka's jars, fetched and cached by scripts/fetch-kafka.sh. */
export function kafkaLibs(): string {
  return execFileSync('bash', [join(root, 'scripts/fetch-kafka.sh')], { encoding: 'utf8' }).trim();
}

/**
 * A real Apache Kafka broker (combined broker + controller, KRaft) on free loopback ports,
 * with its data in `dir`, so it can be stopped and started again with its log intact.
 */
export class KafkaBroker {
  port = 0;
  private controllerPort = 0;
  private proc: ChildProcess | null = null;
  private readonly libs = kafkaLibs();

  constructor(
    private readonly dir: string,
    private readonly opts: { partitions?: number; heapMb?: number; /** Port clients are told to use (a proxy in front of the broker). */ advertisedPort?: number; /** false: producing to a missing topic fails until it is created (default true). */ autoCreateTopics?: boolean } = {},
  ) {}

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const props = join(this.dir, 'server.properties');
    if (!this.port) {
      this.port = await freePort();
      this.controllerPort = await freePort();
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(
        props,
        [
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
          `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${this.opts.advertisedPort ?? this.port}`,
          'controller.listener.names=CONTROLLER',
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
          'inter.broker.listener.name=PLAINTEXT',
          `log.dirs=${join(this.dir, 'data')}`,
          `num.partitions=${this.opts.partitions ?? 3}`,
          'offsets.topic.replication.factor=1',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'group.initial.rebalance.delay.ms=0',
          `auto.create.topics.enable=${this.opts.autoCreateTopics ?? true}`,
          '',
        ].join('\n'),
      );
    }
    if (!existsSync(join(this.dir, 'data', 'meta.properties'))) {
      execFileSync('java', ['-cp', `${this.libs}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId()}`, '-c', props], { stdio: 'ignore' });
    }
    const log = openSync(join(this.dir, 'kafka.log'), 'a');
    this.proc = spawn(
      'java',
      [`-Xmx${this.opts.heapMb ?? 512}m`, '-XX:+UseSerialGC', `-Dlog4j.configuration=file:${join(root, 'scripts/kafka/log4j.properties')}`, '-cp', `${this.libs}/*`, 'kafka.Kafka', props],
      { stdio: ['ignore', log, log] },
    );
    const proc = this.proc;
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`kafka exited with ${proc.exitCode}; see ${join(this.dir, 'kafka.log')}`);
        try {
          const out = execFileSync('kcat', ['-b', this.bootstrap, '-L', '-m', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
          return out.includes('1 brokers');
        } catch {
          return false;
        }
      },
      { timeoutMs: 60000, intervalMs: 250, what: 'kafka to answer metadata' },
    );
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => p.kill('SIGKILL'), 15000);
      p.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      p.kill('SIGTERM');
    });
  }
}

function clusterId(): string {
  // Kafka cluster ids are 16 bytes, base64url without padding.
  // …and one starting with "-" would read as an option.
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Creates a topic with the Kafka admin API (the cached jars carry no topic tool). */
export async function createTopic(bootstrap: string, topic: string, partitions = 3): Promise<void> {
  const admin = new Kafka({ clientId: 'sluice-test-admin', brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}
