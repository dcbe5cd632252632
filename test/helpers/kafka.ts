import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import kafkajs, { Kafka, logLevel, type Admin } from 'kafkajs';
import { closeSync, mkdirSync, openSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './net.js';
import type { TestPki } from './pki.js';
import { waitFor } from './wait-for.js';

const root = resolve(import.meta.dirname, '../../..');

/** The directory of Apache Kafka's jars, fetched and cached by scripts/fetch-kafka.sh. */
export function kafkaLibs(): string {
  return execFileSync('bash', [join(root, 'scripts/fetch-kafka.sh')], { encoding: 'utf8' }).trim();
}

/** Secured listeners a test broker can open besides its PLAINTEXT one (which the helpers keep using). */
export interface KafkaSecurityOptions {
  /** Server key/certificate and the CA it trusts for client certificates. */
  pki: TestPki;
  /** SCRAM-SHA-512 and SCRAM-SHA-256 users, created at format time (`kafka-storage format --add-scram`). */
  scramUsers?: { name: string; password: string }[];
  /** SASL/PLAIN users (held in the broker's JAAS config). */
  plainUsers?: { name: string; password: string }[];
}

export interface KafkaBrokerOptions {
  partitions?: number;
  heapMb?: number;
  /** Opens a SASL_SSL listener (SCRAM, PLAIN, unsecured-JWT OAUTHBEARER) and an SSL listener that requires a client certificate. */
  security?: KafkaSecurityOptions;
  /** Extra server.properties lines, e.g. "message.max.bytes=20000". */
  extraProps?: string[];
  /** Port clients are told to use (a proxy in front of the broker). */
  advertisedPort?: number;
  /** false: producing to a missing topic fails until it is created (default true). */
  autoCreateTopics?: boolean;
}

/**
 * A real Apache Kafka broker (combined broker + controller, KRaft) on free loopback ports,
 * with its data in `dir`, so it can be stopped and started again with its log intact.
 */
export class KafkaBroker {
  port = 0;
  /** SASL_SSL listener port (0 without `security`). */
  saslSslPort = 0;
  /** SSL listener with required client certificates (0 without `security`). */
  sslPort = 0;
  private controllerPort = 0;
  private proc: ChildProcess | null = null;
  private readonly libs = kafkaLibs();

  constructor(
    private readonly dir: string,
    private readonly opts: KafkaBrokerOptions = {},
  ) {}

  /** The broker's process id while it runs (the bench pins it to a core). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  get saslSslBootstrap(): string {
    return `127.0.0.1:${this.saslSslPort}`;
  }

  get sslBootstrap(): string {
    return `127.0.0.1:${this.sslPort}`;
  }

  private securityProps(): { listeners: string[]; map: string[]; props: string[] } {
    const sec = this.opts.security;
    if (!sec) return { listeners: [], map: [], props: [] };
    const jaas = (module: string, opts = ''): string => `org.apache.kafka.common.security.${module} required${opts ? ` ${opts}` : ''};`;
    const plain = (sec.plainUsers ?? []).map((u) => `user_${u.name}="${u.password}"`).join(' ');
    return {
      listeners: [`SASL_SSL://127.0.0.1:${this.saslSslPort}`, `SSL://127.0.0.1:${this.sslPort}`],
      map: ['SASL_SSL:SASL_SSL', 'SSL:SSL'],
      props: [
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${sec.pki.serverKeystore}`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${sec.pki.caCert}`,
        'listener.name.ssl.ssl.client.auth=required',
        'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER',
        `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas('scram.ScramLoginModule')}`,
        `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${jaas('scram.ScramLoginModule')}`,
        `listener.name.sasl_ssl.plain.sasl.jaas.config=${jaas('plain.PlainLoginModule', plain)}`,
        // Kafka's unsecured-JWT validator: accepts alg "none" tokens, checks exp and sub. Enough to test token handling.
        `listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=${jaas('oauthbearer.OAuthBearerLoginModule', 'unsecuredLoginStringClaim_sub="broker"')}`,
      ],
    };
  }

  async start(): Promise<void> {
    const props = join(this.dir, 'server.properties');
    if (!this.port) {
      this.port = await freePort();
      this.controllerPort = await freePort();
      if (this.opts.security) {
        this.saslSslPort = await freePort();
        this.sslPort = await freePort();
      }
      const sec = this.securityProps();
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(
        props,
        [
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
          `listeners=${[`PLAINTEXT://127.0.0.1:${this.port}`, `CONTROLLER://127.0.0.1:${this.controllerPort}`, ...sec.listeners].join(',')}`,
          `advertised.listeners=${[`PLAINTEXT://127.0.0.1:${this.opts.advertisedPort ?? this.port}`, ...sec.listeners].join(',')}`,
          'controller.listener.names=CONTROLLER',
          `listener.security.protocol.map=${['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT', ...sec.map].join(',')}`,
          'inter.broker.listener.name=PLAINTEXT',
          `log.dirs=${join(this.dir, 'data')}`,
          `num.partitions=${this.opts.partitions ?? 3}`,
          'offsets.topic.replication.factor=1',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'group.initial.rebalance.delay.ms=0',
          `auto.create.topics.enable=${this.opts.autoCreateTopics ?? true}`,
          ...sec.props,
          ...(this.opts.extraProps ?? []),
          '',
        ].join('\n'),
      );
    }
    if (!existsSync(join(this.dir, 'data', 'meta.properties'))) {
      const scram = (this.opts.security?.scramUsers ?? []).flatMap((u) => ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((m) => ['--add-scram', `${m}=[name=${u.name},password=${u.password}]`]));
      formatKafkaStorage(this.libs, props, clusterId(), scram);
    }
    this.proc = spawnKafka(this.libs, props, join(this.dir, 'kafka.log'), this.opts.heapMb ?? 512);
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

/** Formats a KRaft node's log dirs (`kafka-storage format`); every node of a cluster gets the same id. */
export function formatKafkaStorage(libs: string, props: string, id: string, extraArgs: string[] = []): void {
  execFileSync('java', ['-cp', `${libs}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${id}`, '-c', props, ...extraArgs], { stdio: 'ignore' });
}

/** Starts one Kafka JVM on `props`, its output appended to `logFile`. */
export function spawnKafka(libs: string, props: string, logFile: string, heapMb: number, jvmArgs: string[] = []): ChildProcess {
  const log = openSync(logFile, 'a');
  try {
    return spawn('java', [`-Xmx${heapMb}m`, '-XX:+UseSerialGC', ...jvmArgs, `-Dlog4j.configuration=file:${join(root, 'scripts/kafka/log4j.properties')}`, '-cp', `${libs}/*`, 'kafka.Kafka', props], {
      stdio: ['ignore', log, log],
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(log);
  }
}

/** A fresh KRaft cluster id. */
export function clusterId(): string {
  // Kafka cluster ids are 16 bytes, base64url without padding.
  // …and one starting with "-" would read as an option.
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Runs `fn` with a connected kafkajs admin client on `bootstrap`, then disconnects it. */
export async function withAdmin<T>(bootstrap: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Kafka({ clientId: 'sluice-test-admin', brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Creates a topic with the Kafka admin API (the cached jars carry no topic tool). */
export async function createTopic(bootstrap: string, topic: string, partitions = 3): Promise<void> {
  await withAdmin(bootstrap, (admin) => admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true }));
}

/** A topic's current value of one config (e.g. "cleanup.policy"), read with the admin API's describeConfigs. */
export async function topicConfig(bootstrap: string, topic: string, name: string): Promise<string | undefined> {
  return withAdmin(bootstrap, async (admin) => {
    const r = await admin.describeConfigs({ resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }], includeSynonyms: false });
    return r.resources[0]?.configEntries.find((e) => e.configName === name)?.configValue;
  });
}
