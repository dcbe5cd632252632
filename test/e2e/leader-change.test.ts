import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { KafkaCluster, type PartitionState } from '../helpers/kafka-cluster.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { StreamPublisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery, sinkDuplicates } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
// Node 1: broker + controller; node 2: broker only, the one the test stops and kills.
const cluster = new KafkaCluster(join(tmp.path, 'kafka'), { nodes: 2 });

before(async () => {
  await mosquitto.start();
  const t0 = Date.now();
  await cluster.start();
  console.log(`leader-change: 2-node Kafka cluster up in ${Date.now() - t0} ms`);
});
after(async () => {
  await cluster.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

/** A failed send the sink or kafkajs noticed (leader moved, broker gone), and its recovery. */
const FAILED = /Kafka send failed \(a partition leader moved|cannot ship to Kafka/;
const RECOVERED = /Kafka confirmed the send after retrying it|Kafka reachable again/;

const ledBy = (id: number) => (ps: PartitionState[]) => ps.every((p) => p.leader === id);
const preferredLeaders = (ps: PartitionState[]) => ps.every((p) => p.leader === p.replicas[0] && p.isr.length === p.replicas.length);

test('partition leaders move three times under a live stream (controlled shutdown, preferred-leader election, kill -9): every acknowledged reading arrives in order', async () => {
  const topic = 'readings-leader';
  // Replication factor 2, min.insync.replicas 1; node 2 leads partitions 0 and 2, node 1 leads 1 and 3.
  await cluster.createTopic(topic, [[2, 1], [1, 2], [2, 1], [1, 2]], { 'min.insync.replicas': '1' });
  const dir = join(tmp.path, 'gw');
  const journal = join(dir, 'journal.db');
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: cluster.brokers, clientId: 'sluice-leader-change', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }] });
  const daemon = Daemon.run(config).start();
  // The largest backlog seen in each phase: the records that waited in the journal.
  const backlog: Record<string, number> = {};
  /** Where each phase's log lines begin. */
  const phaseStart: [string, number][] = [['steady', 0]];
  let phase = 'steady';
  const enter = (name: string): void => {
    phase = name;
    phaseStart.push([name, daemon.lines.length]);
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        backlog[phase] = Math.max(backlog[phase] ?? 0, journalCounts(journal).records);
      } catch {
        // The journal file may not exist yet.
      }
      await delay(100);
    }
  })();
  const t0 = Date.now();
  try {
    await daemon.waitForLog(/subscribed/);
    const stream = new StreamPublisher(mosquitto.url, 20, 200);
    await stream.start();
    await delay(2000);

    // 1. Controlled shutdown of node 2: the controller moves its leaderships to node 1 first.
    enter('node 2 stopped');
    await cluster.node(2).stop();
    await cluster.waitForPartitions(topic, ledBy(1), 'node 1 to lead every partition');
    await delay(2000);

    // 2. Node 2 back: once in sync, the controller's preferred-leader election hands 0 and 2 back.
    enter('node 2 back');
    await cluster.node(2).start();
    await cluster.waitForPartitions(topic, preferredLeaders, 'node 2 to lead partitions 0 and 2 again');
    await delay(2000);

    // 3. kill -9 of node 2 mid-stream: sends to it fail until the controller fences it (3 s).
    enter('node 2 killed');
    await cluster.node(2).kill9();
    await cluster.waitForPartitions(topic, ledBy(1), 'node 1 to lead every partition after the kill');
    await delay(2000);

    enter('drain');
    const acked = await stream.stop();
    const expectedCount = [...acked.values()].reduce((s, l) => s + l.length, 0);
    assert.ok(expectedCount > 1000, `the stream should have been acknowledged throughout (got ${expectedCount})`);
    const node1 = cluster.node(1).bootstrap;
    // On a timeout, the last read is what the assertions below judge (and list what is missing).
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(node1, topic);
        return checkDelivery(m, acked).missing.length === 0 ? m : null;
      },
      { timeoutMs: 60000, intervalMs: 1000, what: 'every acknowledged reading in Kafka' },
    ).catch(() => consumeOrEmpty(node1, topic));
    const r = checkDelivery(messages, acked);
    const failed = daemon.lines.filter((l) => FAILED.test(l));
    console.log(
      `leader-change: ${expectedCount} acknowledged, ${r.distinct} distinct in Kafka, ${r.duplicates} duplicates (${sinkDuplicates(messages)} resent by the sink); ` +
        `largest journal backlog per phase ${JSON.stringify(backlog)}; ${failed.length} failure lines, ${daemon.countLogs(/Kafka confirmed only part of the batch \(/)} partial confirmations caught; test ${Date.now() - t0} ms`,
    );
    const perPhase = phaseStart.map(([name, from], i) => `${name}: ${daemon.lines.slice(from, phaseStart[i + 1]?.[1]).filter((l) => FAILED.test(l)).length}`);
    console.log(`leader-change: failure lines per phase: ${perPhase.join(', ')}`);
    for (const l of failed) console.log(`  ${l}`);
    assert.deepEqual(r.missing.slice(0, 50), [], `${r.missing.length} acknowledged readings missing`);
    assert.deepEqual(r.outOfOrder, []);

    // The kill cannot go unnoticed: a send to the dead leader fails before the controller fences it.
    const afterKill = daemon.lines.slice(phaseStart.find(([n]) => n === 'node 2 killed')![1]);
    let lastFailure = -1;
    afterKill.forEach((l, i) => FAILED.test(l) && (lastFailure = i));
    assert.ok(lastFailure >= 0, `a clear log line about the failed send after the kill; got:\n${afterKill.slice(-20).join('\n')}`);
    assert.ok(
      afterKill.slice(lastFailure + 1).some((l) => RECOVERED.test(l)),
      `a recovery line after the last failure; got:\n${afterKill.slice(lastFailure).slice(0, 20).join('\n')}`,
    );
    assert.ok(daemon.running, 'the daemon keeps running');
    await waitFor(() => journalCounts(journal).records === 0, { what: 'journal drained' });
  } finally {
    sampling = false;
    await sampler;
    assert.equal(await daemon.stop(), 0);
  }
});
