import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { clusterId, formatKafkaStorage, kafkaLibs, spawnKafka } from './kafka.js';
import { freePort } from './net.js';
import { waitFor } from './wait-for.js';

export interface KafkaClusterOptions {
  /** Nodes in all (default 2): node 1 is broker + the only controller, the others are brokers only. */
  nodes?: number;
  /** Heap of each JVM (default 384 MB: several of them share a small machine). */
  heapMb?: number;
  /** Partitions of auto-created topics (default 3). */
  partitions?: number;
  /**
   * How often the controller moves leadership back to preferred replicas (default 5 s; Kafka's is
   * 300 s). A broker that comes back thus leads its partitions again soon: a second leader change.
   */
  leaderRebalanceIntervalS?: number;
  /** Extra server.properties lines for every node. */
  extraProps?: string[];
}

/** Partition → leader id (-1: none) and in-sync replica ids. */
export interface PartitionState {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/**
 * A small real Apache Kafka cluster (KRaft) on free loopback ports: node 1 runs broker and
 * controller (the one voter), nodes 2..n are brokers only, so any of those can be stopped or
 * killed while the cluster keeps electing leaders. Each node keeps its data in `dir/node-<id>`
 * and can be stopped and started again with its log intact.
 */
export class KafkaCluster {
  readonly nodes: KafkaNode[];
  private readonly libs = kafkaLibs();
  private readonly id = clusterId();
  private controllerPort = 0;

  constructor(
    private readonly dir: string,
    private readonly opts: KafkaClusterOptions = {},
  ) {
    const n = opts.nodes ?? 2;
    if (n < 2) throw new Error('a KafkaCluster has at least 2 nodes; use KafkaBroker for one');
    this.nodes = Array.from({ length: n }, (_, i) => new KafkaNode(i + 1, join(dir, `node-${i + 1}`), this));
  }

  /** Every node's address (clients bootstrap from any that is up). */
  get brokers(): string[] {
    return this.nodes.map((n) => n.bootstrap);
  }

  /** Comma-separated bootstrap list (kcat, kafkajs). */
  get bootstrap(): string {
    return this.brokers.join(',');
  }

  node(id: number): KafkaNode {
    const n = this.nodes[id - 1];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Starts every node (formatting their storage the first time); resolves when all are registered. */
  async start(): Promise<void> {
    if (!this.controllerPort) {
      this.controllerPort = await freePort();
      for (const n of this.nodes) n.port = await freePort();
      for (const n of this.nodes) n.writeProps(this.props(n));
    }
    await Promise.all(this.nodes.map((n) => n.launch()));
    await this.waitForBrokers(this.nodes.length);
  }

  async stop(): Promise<void> {
    // Brokers first: a broker stopping without its controller waits out a long controlled-shutdown timeout.
    await Promise.all(this.nodes.slice(1).map((n) => n.stop()));
    await this.nodes[0]!.stop();
  }

  /** Waits until `count` brokers are registered and unfenced (as any running node reports them). */
  async waitForBrokers(count: number, timeoutMs = 90000): Promise<void> {
    await waitFor(
      () => {
        for (const n of this.nodes) n.assertAlive();
        const up = this.nodes.filter((n) => n.running);
        if (!up.length) return false;
        try {
          const out = execFileSync('kcat', ['-b', up.map((n) => n.bootstrap).join(','), '-L', '-m', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
          return out.includes(`${count} brokers`);
        } catch {
          return false;
        }
      },
      { timeoutMs, intervalMs: 250, what: `${count} Kafka brokers to register` },
    );
  }

  /** Leader, replicas and ISR of each partition of `topic`, fresh from a running node. */
  async partitions(topic: string): Promise<PartitionState[]> {
    const admin = this.admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] });
      return md.topics[0]!.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })).sort((a, b) => a.partition - b.partition);
    } finally {
      await admin.disconnect();
    }
  }

  /** Polls until `check` holds for the partitions of `topic`; returns them. */
  async waitForPartitions(topic: string, check: (ps: PartitionState[]) => boolean, what: string, timeoutMs = 60000): Promise<PartitionState[]> {
    return waitFor(
      async () => {
        const ps = await this.partitions(topic);
        return check(ps) ? ps : null;
      },
      { timeoutMs, intervalMs: 250, what },
    );
  }

  /**
   * Creates `topic` with an explicit replica list per partition (the first replica is the
   * preferred leader), e.g. [[2, 1], [2, 1]] for two partitions led by node 2 and followed by node 1.
   */
  async createTopic(topic: string, replicas: number[][], config: Record<string, string> = {}): Promise<void> {
    const admin = this.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, replicaAssignment: replicas.map((r, partition) => ({ partition, replicas: r })), configEntries: Object.entries(config).map(([name, value]) => ({ name, value })) }],
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
  }

  private admin(): ReturnType<Kafka['admin']> {
    const up = this.nodes.filter((n) => n.running).map((n) => n.bootstrap);
    return new Kafka({ clientId: 'sluice-test-cluster-admin', brokers: up.length ? up : this.brokers, logLevel: logLevel.NOTHING, retry: { retries: 3 } }).admin();
  }

  private props(n: KafkaNode): string[] {
    const controller = n.id === 1;
    const rf = Math.min(2, this.nodes.length);
    return [
      `process.roles=${controller ? 'broker,controller' : 'broker'}`,
      `node.id=${n.id}`,
      `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${n.port}${controller ? `,CONTROLLER://127.0.0.1:${this.controllerPort}` : ''}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${n.port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(n.dir, 'data')}`,
      `num.partitions=${this.opts.partitions ?? 3}`,
      `default.replication.factor=${rf}`,
      'min.insync.replicas=1',
      `offsets.topic.replication.factor=${rf}`,
      `transaction.state.log.replication.factor=${rf}`,
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // A killed broker is fenced (its partitions get new leaders) after 3 s, not Kafka's 9 s.
      'broker.heartbeat.interval.ms=500',
      'broker.session.timeout.ms=3000',
      'auto.leader.rebalance.enable=true',
      `leader.imbalance.check.interval.seconds=${this.opts.leaderRebalanceIntervalS ?? 5}`,
      'leader.imbalance.per.broker.percentage=0',
      // A small fast-starting node: fewer threads on a 2-core machine.
      'num.network.threads=2',
      'num.io.threads=2',
      'num.recovery.threads.per.data.dir=1',
      'background.threads=2',
      ...(this.opts.extraProps ?? []),
      '',
    ];
  }

  /** @internal for KafkaNode */
  startNode(n: KafkaNode): ChildProcess {
    const props = join(n.dir, 'server.properties');
    if (!existsSync(join(n.dir, 'data', 'meta.properties'))) formatKafkaStorage(this.libs, props, this.id);
    // C1 only: a JVM that starts (and restarts) quickly on a small, busy machine.
    return spawnKafka(this.libs, props, join(n.dir, 'kafka.log'), this.opts.heapMb ?? 384, ['-XX:TieredStopAtLevel=1']);
  }
}

/** One node of a KafkaCluster. */
export class KafkaNode {
  port = 0;
  private proc: ChildProcess | null = null;

  constructor(
    readonly id: number,
    readonly dir: string,
    private readonly cluster: KafkaCluster,
  ) {}

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== null;
  }

  /** @internal */
  writeProps(lines: string[]): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, 'server.properties'), lines.join('\n'));
  }

  /** @internal starts the JVM without waiting for it. */
  launch(): void {
    if (this.proc) return;
    this.proc = this.cluster.startNode(this);
  }

  /** @internal throws if the JVM died by itself. */
  assertAlive(): void {
    if (this.proc && this.proc.exitCode !== null) throw new Error(`kafka node ${this.id} exited with ${this.proc.exitCode}; see ${join(this.dir, 'kafka.log')}`);
  }

  /** Starts this node again (after stop or kill9); resolves when the whole cluster is registered. */
  async start(): Promise<void> {
    this.launch();
    await this.cluster.waitForBrokers(this.cluster.nodes.length);
  }

  /** SIGTERM: a controlled shutdown (leadership moves away first); SIGKILL after 20 s. */
  async stop(): Promise<void> {
    await this.end('SIGTERM', 20000);
  }

  /** SIGKILL: the broker vanishes mid-request; the controller fences it after the session timeout. */
  async kill9(): Promise<void> {
    await this.end('SIGKILL', 0);
  }

  private async end(sig: NodeJS.Signals, killAfterMs: number): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    if (p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = killAfterMs ? setTimeout(() => p.kill('SIGKILL'), killAfterMs) : undefined;
      p.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      p.kill(sig);
    });
  }
}
