/**
 * A focused drain A/B: the bench's drain scenario (journaled records → Kafka, compression none)
 * for one or more builds of sluice, alternating with the bare kafkajs five-header producer, on one
 * Mosquitto and one Kafka. Reports records/s and CPU µs per record (process user+sys, /proc) for
 * each run. For measuring a change to the drain path without the whole bench.
 *
 *   node dist/scripts/bench/drain-ab.js [--n 200000] [--runs 3] [--unit] [--prof DIR] LABEL=path/to/dist/src/main.js[@sink TOML line] ...
 *
 * `--unit`: sluice runs with the systemd unit's environment (NODE_OPTIONS heap flags and all), as
 * in the full bench; without it, with Node's defaults.
 * `--prof DIR`: each sluice run writes a V8 CPU profile there (node --cpu-prof).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { repoRoot, writeConfig } from '../../test/helpers/daemon.js';
import { KafkaBroker } from '../../test/helpers/kafka.js';
import { MosquittoBroker } from '../../test/helpers/mosquitto.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { unitEnvironment } from '../../test/helpers/unit-env.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { sample } from './proc.js';
import { benchRecord } from './records.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv.splice(i, 2)[1]! : dflt;
};
const n = Number(opt('n', '200000'));
const runs = Number(opt('runs', '3'));
const prof = opt('prof', '');
// --unit: sluice runs with the systemd unit's environment (its heap flags), as the full bench runs it.
const unitIdx = argv.indexOf('--unit');
const unit = unitIdx >= 0 ? (argv.splice(unitIdx, 1), true) : false;
const builds = argv.map((a) => {
  const [label, rest] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
  const [bin, extra] = rest.split('@');
  return { label, bin: bin!, extra: extra ?? '' };
});
if (builds.length === 0) builds.push({ label: 'this', bin: join(repoRoot, 'dist/src/main.js'), extra: '' });
const log = (m: string): void => void process.stderr.write(`drain-ab: ${m}\n`);

const tmp = tempDir('sluice-drain-ab-');
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'), { persistence: false });
const kafka = new KafkaBroker(join(tmp.path, 'kafka'), { heapMb: 1024 });
let runId = 0;

function journalRows(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM batches').pluck().get() as number;
  } finally {
    db.close();
  }
}

const exited = (p: ChildProcess): Promise<void> => (p.exitCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r())));

async function drainSluice(bin: string, extra: string, template: string, admin: ReturnType<Kafka['admin']>): Promise<{ rate: number; cpuUs: number }> {
  const dir = join(tmp.path, `drain-${++runId}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(template, join(dir, 'journal.db'));
  const topic = `drain-${runId}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], durability: 'crash', subscribe: 'idle/#', clientId: `sluice-ab-${runId}`, sinkExtra: `compression = "none"\n${extra}`, routes: [{ match: 'bench/+device/#', topic, key: '{device}' }] });
  const args = [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), bin, 'run', '-c', config];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: unit ? { ...process.env, ...unitEnvironment() } : process.env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  await waitFor(() => /sluice ready/.test(out) || null, { timeoutMs: 60000, intervalMs: 5, what: 'ready' });
  const t0 = Date.now();
  const s0 = sample(proc.pid!);
  await waitFor(() => journalRows(join(dir, 'journal.db')) === 0 || null, { timeoutMs: 900000, intervalMs: 20, what: 'drained' });
  const t1 = Date.now();
  const s1 = sample(proc.pid!);
  proc.kill('SIGTERM');
  await exited(proc);
  return { rate: (n * 1000) / (t1 - t0), cpuUs: (s1.cpuUs - s0.cpuUs) / n };
}

async function drainBare(admin: ReturnType<Kafka['admin']>): Promise<{ rate: number; cpuUs: number }> {
  const topic = `bare-${++runId}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  const proc = spawn(process.execPath, [join(repoRoot, 'dist/scripts/bench/bare-producer.js'), kafka.bootstrap, topic, String(n), '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  // CPU from start (connect included: a few % of a run) to the "done" line.
  const line = await waitFor(() => /done (\d+)/.exec(out), { timeoutMs: 900000, intervalMs: 5, what: 'bare producer' });
  const s = sample(proc.pid!);
  await exited(proc);
  return { rate: (n * 1000) / Number(line[1]), cpuUs: s.cpuUs / n };
}

async function main(): Promise<void> {
  await mosquitto.start();
  await kafka.start();
  const admin = new Kafka({ clientId: 'ab-admin', brokers: [kafka.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const template = join(tmp.path, 'template.db');
  const j = new SqliteJournal({ path: template, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 2000, logger: pino({ level: 'silent' }), clock: { now: () => Date.now() } });
  await j.start();
  j.registerSinks(['kafka']);
  for (let i = 0; i < n; i++) {
    j.append(benchRecord(i));
    if ((i + 1) % 2000 === 0) j.flush();
  }
  j.flush();
  await j.stop();
  const results = new Map<string, { rate: number; cpuUs: number }[]>();
  const put = (k: string, r: { rate: number; cpuUs: number }): void => {
    if (!results.has(k)) results.set(k, []);
    results.get(k)!.push(r);
    log(`${k}: ${Math.round(r.rate)} records/s, ${r.cpuUs.toFixed(1)} µs CPU/record`);
  };
  for (let i = 0; i < runs; i++) {
    put('bare kafkajs, five headers', await drainBare(admin));
    for (const b of builds) put(b.label, await drainSluice(b.bin, b.extra, template, admin));
  }
  await admin.disconnect();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results.get('bare kafkajs, five headers')!.map((r) => r.rate));
  process.stdout.write(`| run | records/s (median; all) | × bare | CPU µs/record (median; all) |\n| --- | --- | --- | --- |\n`);
  for (const [k, rs] of results) {
    const rate = median(rs.map((r) => r.rate));
    process.stdout.write(`| ${k} | ${Math.round(rate)} (${rs.map((r) => Math.round(r.rate)).join(', ')}) | ${(rate / base).toFixed(2)} | ${median(rs.map((r) => r.cpuUs)).toFixed(1)} (${rs.map((r) => r.cpuUs.toFixed(1)).join(', ')}) |\n`);
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`drain-ab failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await kafka.stop().catch(() => undefined);
    await mosquitto.stop().catch(() => undefined);
    tmp.cleanup();
  });
