/**
 * A focused through-the-bridge A/B: the bench's bridge scenario (a backlog held by Mosquitto for
 * sluice's persistent session, then pushed through sluice into Kafka, compression none) for one
 * or more builds of sluice, alternating, with the unit's NODE_OPTIONS and environment. Reports
 * records/s, CPU µs per record (process user+sys over its whole life, start-up included, as the
 * bench does) and peak RSS; `--idle` instead journals the backlog with Kafka away and reports RSS
 * and anonymous RSS (smaps_rollup) of a fresh start on that journal, 4 s after it is ready;
 * `--latency RATE` instead runs the bench's live latency scenario (sluice subscribed and shipping,
 * the load generator publishing N at RATE msg/s, Kafka stamping LogAppendTime) and reports p50,
 * p99 and max, with the 100 ms windows of publish time whose worst latency passed 100 ms, so a
 * tail can be placed (start-up, a commit, a GC) instead of guessed.
 *
 *   node dist/scripts/bench/bridge-ab.js [--n 20000] [--runs 3] [--idle | --latency RATE] [--prof DIR] LABEL=path/to/dist/src/main.js[@ENV=VALUE,...] ...
 *
 * `--prof DIR`: each sluice run writes a V8 CPU profile there (node --cpu-prof).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kafka, logLevel } from 'kafkajs';
import mqtt from 'mqtt';
import { repoRoot, writeConfig } from '../../test/helpers/daemon.js';
import { KafkaBroker } from '../../test/helpers/kafka.js';
import { MosquittoBroker } from '../../test/helpers/mosquitto.js';
import { freePort } from '../../test/helpers/net.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { unitEnvironment } from '../../test/helpers/unit-env.js';
import { delay, waitFor } from '../../test/helpers/wait-for.js';
import { latencies } from './latency.js';
import { sample } from './proc.js';
import { percentile } from './stats.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv.splice(i, 2)[1]! : dflt;
};
const flag = (name: string): boolean => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv.splice(i, 1), true) : false;
};
const n = Number(opt('n', '20000'));
const runs = Number(opt('runs', '3'));
const prof = opt('prof', '');
const idle = flag('idle');
const latencyRate = Number(opt('latency', '0'));
const builds = argv.map((a) => {
  const [label, rest] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
  const [bin, extra] = rest.split('@');
  const env = Object.fromEntries((extra ? extra.split(',') : []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { label, bin: bin!, env };
});
if (builds.length === 0) builds.push({ label: 'this', bin: join(repoRoot, 'dist/src/main.js'), env: {} });
const log = (m: string): void => void process.stderr.write(`bridge-ab: ${m}\n`);

const tmp = tempDir('sluice-bridge-ab-');
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'), { persistence: false });
const kafka = new KafkaBroker(join(tmp.path, 'kafka'), { heapMb: 1024 });
let admin: ReturnType<Kafka['admin']>;
let runId = 0;
const exited = (p: ChildProcess): Promise<void> => (p.exitCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r())));

function committedSeq(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT coalesce(max(last_seq), 0) FROM batches').pluck().get() as number;
  } finally {
    db.close();
  }
}

function anonRss(pid: number): number {
  const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/Anonymous:\s+(\d+) kB/.exec(s)?.[1] ?? 0) * 1024;
}

function start(b: (typeof builds)[number], config: string, profile: boolean): { proc: ChildProcess; out: () => string } {
  const args = [...(profile && prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), b.bin, 'run', '-c', config];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...unitEnvironment(), ...b.env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  return { proc, out: () => out };
}

async function stop(p: ChildProcess): Promise<void> {
  p.kill('SIGTERM');
  await exited(p);
}

async function loadgen(count: number, rate = 0): Promise<void> {
  const gen = spawn(process.execPath, [join(repoRoot, 'dist/scripts/bench/loadgen.js'), mosquitto.url, String(count), String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  gen.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  await waitFor(() => /done/.test(out) || null, { timeoutMs: 600000, intervalMs: 10, what: 'loadgen done' });
  await exited(gen);
}

/** Waits until `count` records are in the topic (every partition's high-water mark summed). */
async function waitInKafka(topic: string, count: number): Promise<void> {
  await waitFor(async () => (await admin.fetchTopicOffsets(topic)).reduce((a, o) => a + Number(o.high), 0) >= count || null, { timeoutMs: 600000, intervalMs: 20, what: `${count} in Kafka` });
}

/** Ends the persistent session a run left at Mosquitto, so the next run starts from nothing. */
async function dropSession(clientId: string): Promise<void> {
  const c = await mqtt.connectAsync(mosquitto.url, { clientId, clean: true, protocolVersion: 4 });
  await c.endAsync();
}

async function runLatency(b: (typeof builds)[number]): Promise<string> {
  const id = ++runId;
  const topic = `latency-ab-${id}`;
  const clientId = `latency-ab-${id}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }] });
  const config = writeConfig({ dir: join(tmp.path, `run-${id}`), mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], subscribe: 'bench/#', clientId, sinkExtra: 'compression = "none"', routes: [{ match: 'bench/+device/#', topic, key: '{device}' }] });
  const s = start(b, config, true);
  await waitFor(() => (/subscribed/.test(s.out()) && /Kafka sink started/.test(s.out())) || null, { timeoutMs: 60000, intervalMs: 5, what: 'subscribed and sink started' });
  await loadgen(n, latencyRate);
  await waitInKafka(topic, n);
  const x = sample(s.proc.pid!);
  await stop(s.proc);
  await dropSession(clientId);
  const { msgs, first } = await latencies(kafka.bootstrap, topic);
  const lat = msgs.map((m) => m.lat);
  // A loop, not Math.max(...xs): a spread of ~100,000 arguments can overflow the stack.
  const max = lat.reduce((a, v) => Math.max(a, v), -Infinity);
  const worst = new Map<number, number>();
  for (const m of msgs) {
    const w = Math.floor((m.sent - first) / 100);
    worst.set(w, Math.max(worst.get(w) ?? 0, m.lat));
  }
  const slow = [...worst].filter(([, v]) => v > 100).sort((a, b) => a[0] - b[0]).map(([w, v]) => `${(w / 10).toFixed(1)}s:${v}`);
  return `p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms, max ${max} ms, ${(x.cpuUs / n).toFixed(1)} µs/record, peak RSS ${(x.peakRssBytes / 1e6).toFixed(1)} MB; windows over 100 ms: ${slow.join(' ') || 'none'}`;
}

async function run(b: (typeof builds)[number]): Promise<string> {
  if (latencyRate > 0) return runLatency(b);
  const id = ++runId;
  const topic = `bridge-ab-${id}`;
  const clientId = `bridge-ab-${id}`;
  const dir = join(tmp.path, `run-${id}`);
  const brokers = idle ? [`127.0.0.1:${await freePort()}`] : [kafka.bootstrap];
  if (!idle) await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers, subscribe: 'bench/#', clientId, sinkExtra: 'compression = "none"', routes: [{ match: 'bench/+device/#', topic, key: '{device}' }] });
  const first = start(b, config, false);
  await waitFor(() => /subscribed/.test(first.out()) || null, { timeoutMs: 60000, intervalMs: 5, what: 'subscribed' });
  await stop(first.proc);
  await loadgen(n);
  const t0 = Date.now();
  const s = start(b, config, true);
  let result: string;
  if (idle) {
    await waitFor(() => { try { return committedSeq(join(dir, 'journal.db')) >= n || null; } catch { return null; } }, { timeoutMs: 600000, intervalMs: 20, what: 'journaled' });
    const after = sample(s.proc.pid!);
    // As the bench's idle row: a fresh start on the journaled backlog, Kafka away, 4 s after ready.
    await stop(s.proc);
    const again = start(b, config, false);
    await waitFor(() => /sluice ready/.test(again.out()) || null, { timeoutMs: 60000, intervalMs: 5, what: 'ready' });
    await delay(4000);
    const x = sample(again.proc.pid!);
    result = `idle RSS ${(x.rssBytes / 1e6).toFixed(1)} MB, anonymous ${(anonRss(again.proc.pid!) / 1e6).toFixed(1)} MB (right after ingesting: ${(after.rssBytes / 1e6).toFixed(1)} MB)`;
    s.proc = again.proc;
  } else {
    await waitInKafka(topic, n);
    const t1 = Date.now();
    const x = sample(s.proc.pid!);
    result = `${Math.round((n * 1000) / (t1 - t0))} records/s, ${(x.cpuUs / n).toFixed(1)} µs/record, peak RSS ${(x.peakRssBytes / 1e6).toFixed(1)} MB`;
  }
  await stop(s.proc);
  await dropSession(clientId);
  return result;
}

await mosquitto.start();
await kafka.start();
admin = new Kafka({ clientId: 'bridge-ab', brokers: [kafka.bootstrap], logLevel: logLevel.NOTHING }).admin();
await admin.connect();
try {
  for (let i = 0; i < runs; i++) {
    for (const b of builds) {
      const r = await run(b);
      log(`${b.label} run ${i + 1}: ${r}`);
      process.stdout.write(`${b.label}\t${r}\n`);
    }
  }
} finally {
  await admin.disconnect();
  await kafka.stop();
  await mosquitto.stop();
  tmp.cleanup();
}
