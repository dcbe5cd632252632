import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { LIVE_TOPIC, READ_COMMITTED } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

/**
 * What kcat prints for each record with `-f '%k\t%T\t%h\t%s\n'`: key, Kafka timestamp, headers
 * ("name=value", comma-separated) and value. Read here with nothing of sluice's own code: this is
 * the consumer side the README documents.
 */
function kcatLines(topic: string, readCommitted: boolean): Promise<string[]> {
  const args = ['-C', '-b', kafka.bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k\t%T\t%h\t%s\n', ...LIVE_TOPIC, ...(readCommitted ? READ_COMMITTED : [])];
  return new Promise((resolve, reject) => {
    execFile('kcat', args, { maxBuffer: 1 << 28, timeout: 60000 }, (err, stdout, stderr) => (err ? reject(new Error(`kcat failed: ${stderr || err.message}`)) : resolve(stdout.split('\n').filter((l) => l !== ''))));
  });
}

interface Decoded {
  key: string;
  kafkaTime: number;
  version: string;
  gateway: string;
  source: string;
  seq: number;
  time: number;
  quality: string;
  clock: string;
  topic: string;
  payload: { topic: string; n: number };
}

/** The README's decoder, in a few lines: one header "sluice", split on the first seven "|". */
function decode(line: string): Decoded {
  const [key, ts, headers, ...value] = line.split('\t');
  assert.ok(headers!.startsWith('sluice='), `one header, "sluice": ${line}`);
  const fields = headers!.slice('sluice='.length).split('|');
  const [version, gateway, source, seq, time, quality, clock] = fields;
  return { key: key!, kafkaTime: Number(ts), version: version!, gateway: gateway!, source: source!, seq: Number(seq), time: Number(time), quality: quality!, clock: clock!, topic: fields.slice(7).join('|'), payload: JSON.parse(value.join('\t')) as Decoded['payload'] };
}

// Topics with the delimiter, commas, "=", spaces and non-ASCII text: the topic is last and raw.
const DEVICES = ['d1', 'ü|x,y=z w', 'd3'];
const PER_DEVICE = 60;

for (const delivery of ['at_least_once', 'exactly_once'] as const) {
  test(`${delivery}: kcat recovers gateway, seq, source, original topic and capture time from every record of two sources`, async () => {
    const dir = join(base, delivery);
    const topic = `wire-${delivery}`;
    const prefix = delivery === 'exactly_once' ? 'eos' : 'alo';
    const sources = [
      { name: 'mqtt:local', tree: `${prefix}/a` },
      { name: 'mqtt:second', tree: `${prefix}/b` },
    ];
    const config = writeConfig({
      dir,
      mqttUrl: mosquitto.url,
      brokers: [kafka.bootstrap],
      clientId: `sluice-wire-${prefix}-a`,
      subscribe: `${sources[0]!.tree}/#`,
      sinkExtra: `delivery = "${delivery}"\nlinger_ms = 200\n`,
      routes: sources.map((s) => ({ match: `${s.tree}/+device/#`, topic, key: '{device}' })),
      extraTables: `[[mqtt]]\nname = "second"\nurl = "${mosquitto.url}"\nclient_id = "sluice-wire-${prefix}-b"\n[[mqtt.subscribe]]\ntopic = "${sources[1]!.tree}/#"\nqos = 1\n`,
    });
    const daemon = Daemon.run(config).start();
    try {
      await waitFor(() => (daemon.lines.filter((l) => /"subscribed"/.test(l)).length >= 2 ? true : null), { what: 'both sources subscribed' });
      await daemon.waitForLog(/Kafka sink started/);
      const pub = new Publisher(mosquitto.url);
      await pub.connect();
      const before = Date.now();
      const published: string[] = [];
      const sends: Promise<void>[] = [];
      for (let n = 0; n < PER_DEVICE; n++) {
        for (const s of sources) {
          for (const d of DEVICES) {
            const t = `${s.tree}/${d}/reading`;
            published.push(t);
            sends.push(pub.publish(t, JSON.stringify({ topic: t, n })));
          }
        }
      }
      await Promise.all(sends);
      await pub.close();
      // Mosquitto acknowledged the publishes; sluice captures them as they reach it, a little later.
      const lines = await waitFor(
        async () => {
          const l = await kcatLines(topic, delivery === 'exactly_once').catch(() => []);
          return new Set(l.map((x) => decode(x).seq)).size >= published.length ? l : null;
        },
        { what: `${published.length} records in Kafka`, timeoutMs: 60000, intervalMs: 500 },
      );
      const after = Date.now();
      await waitFor(() => (journalCounts(join(dir, 'journal.db')).rows === 0 ? true : null), { what: 'journal drained', timeoutMs: 30000 });
      const records = lines.map(decode);
      // at_least_once may resend a batch (the same seq twice, identical); exactly_once must not.
      const bySeq = new Map<number, Decoded>();
      for (const r of records) {
        const seen = bySeq.get(r.seq);
        if (seen) assert.deepEqual(r, seen, `seq ${r.seq} twice with different contents`);
        bySeq.set(r.seq, r);
      }
      if (delivery === 'exactly_once') assert.equal(records.length, bySeq.size, 'read_committed: each record once');
      assert.equal(bySeq.size, published.length, 'every published reading is in Kafka');
      const seqs = [...bySeq.keys()].sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: published.length }, (_, i) => i + 1), 'seqs are contiguous from 1');
      const lastN = new Map<string, number>();
      const checked = new Set<number>();
      for (const r of records) {
        if (checked.has(r.seq)) continue;
        checked.add(r.seq);
        assert.equal(r.version, '1');
        assert.equal(r.gateway, 'test-gw');
        assert.equal(r.topic, r.payload.topic, 'the original MQTT topic, exactly');
        const source = sources.find((s) => r.topic.startsWith(`${s.tree}/`));
        assert.equal(r.source, source?.name, `source of ${r.topic}`);
        assert.equal(r.key, r.topic.split('/')[2], 'key from the route');
        assert.ok(r.time >= before && r.time <= after, `capture time ${r.time} within the publishing window ${before}..${after}`);
        assert.equal(r.kafkaTime, r.time, 'the Kafka timestamp is the capture time');
        assert.ok(['synced', 'unsynced', 'corrected', ''].includes(r.quality), `time quality "${r.quality}"`);
        assert.equal(r.clock === '', r.quality !== 'corrected', 'clock_time only for corrected times');
        // Per topic (= per key here), the readings arrive in the order published.
        assert.ok((lastN.get(r.topic) ?? -1) <= r.payload.n, `order of ${r.topic}`);
        lastN.set(r.topic, r.payload.n);
      }
      assert.deepEqual([...new Set(records.map((r) => r.topic))].sort(), [...new Set(published)].sort(), 'every topic seen');
    } catch (err) {
      process.stderr.write(`daemon log (last lines):\n${daemon.lines.slice(-15).join('\n')}\n`);
      throw err;
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
}
