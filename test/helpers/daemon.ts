import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitFor } from './wait-for.js';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const sluiceBin = join(repoRoot, 'dist/src/main.js');

export interface TestConfig {
  dir: string;
  mqttUrl: string;
  brokers: string[];
  durability?: 'power' | 'crash';
  /** Extra TOML lines for [[mqtt]]. */
  mqttExtra?: string;
  /** Extra TOML lines for [gateway]. */
  gatewayExtra?: string;
  /** Extra TOML lines for [journal]. */
  journalExtra?: string;
  /** Extra TOML lines for [[sink]]. */
  sinkExtra?: string;
  routes?: { match: string; topic: string; key?: string; priority?: number; overflow?: 'backpressure' | 'drop_oldest' }[];
  subscribe?: string;
  clientId?: string;
  /** Port of the metrics/status endpoints; default: endpoints off (parallel tests must not collide). */
  httpPort?: number;
  /** Extra TOML lines for [http]. */
  httpExtra?: string;
  /** Health records every this many seconds; default: off (tests count journal records). */
  healthIntervalS?: number;
  /** Log level; default "info". */
  logLevel?: string;
  /** Name of the [[sink]]. Default "kafka". */
  sinkName?: string;
  /** Whole extra TOML tables appended at the end (e.g. a second [[sink]]). */
  extraTables?: string;
}

/** Writes a config for a daemon under test; returns its path. Timeouts are short so tests move. */
export function writeConfig(c: TestConfig): string {
  const routes = c.routes ?? [{ match: 'dev/+device/#', topic: 'readings', key: '{device}' }];
  const toml = `
[gateway]
id = "test-gw"
shutdown_timeout_ms = 8000
${c.gatewayExtra ?? ''}

[log]
level = "${c.logLevel ?? 'info'}"
format = "json"

[http]
enabled = ${c.httpPort !== undefined}
port = ${c.httpPort ?? 9793}
${c.httpExtra ?? ''}

[health]
enabled = ${c.healthIntervalS !== undefined}
interval_s = ${c.healthIntervalS ?? 60}

[journal]
path = "${join(c.dir, 'journal.db')}"
durability = "${c.durability ?? 'power'}"
${c.journalExtra ?? ''}

[[mqtt]]
name = "local"
url = "${c.mqttUrl}"
client_id = "${c.clientId ?? 'sluice-test'}"
reconnect_min_ms = 100
reconnect_max_ms = 1000
${c.mqttExtra ?? ''}
[[mqtt.subscribe]]
topic = "${c.subscribe ?? 'dev/#'}"
qos = 1

[[sink]]
name = "${c.sinkName ?? 'kafka'}"
brokers = [${c.brokers.map((b) => `"${b}"`).join(', ')}]
request_timeout_ms = 5000
connection_timeout_ms = 2000
retry_min_ms = 200
retry_max_ms = 2000
${c.sinkExtra ?? ''}
${routes.map((r) => `[[sink.route]]\nmatch = "${r.match}"\ntopic = "${r.topic}"\n${r.key ? `key = "${r.key}"\n` : ''}${r.priority !== undefined ? `priority = ${r.priority}\n` : ''}${r.overflow ? `overflow = "${r.overflow}"\n` : ''}`).join('\n')}
${c.extraTables ?? ''}
`;
  mkdirSync(c.dir, { recursive: true });
  const path = join(c.dir, 'sluice.toml');
  writeFileSync(path, toml);
  return path;
}

/** The sluice daemon as a child process, its log lines kept for assertions. */
export class Daemon {
  readonly lines: string[] = [];
  /** When each line arrived (ms since the epoch), for start-up timing. */
  readonly lineTimes: number[] = [];
  startedAt = 0;
  private proc: ChildProcess | null = null;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly args: string[],
    private readonly env: Record<string, string> = {},
  ) {}

  static run(configPath: string, env: Record<string, string> = {}): Daemon {
    return new Daemon(['run', '-c', configPath], env);
  }

  start(): this {
    this.exitCode = null;
    this.exitSignal = null;
    this.startedAt = Date.now();
    const proc = spawn(process.execPath, [sluiceBin, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        this.lineTimes.push(Date.now());
        buf = buf.slice(i + 1);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (buf) this.lines.push(buf);
        this.exitCode = code;
        this.exitSignal = signal;
        this.proc = null;
        resolve();
      });
    });
    return this;
  }

  get running(): boolean {
    return this.proc !== null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Waits for a log line matching `pattern` (searching all lines so far). */
  waitForLog(pattern: RegExp, timeoutMs = 30000, intervalMs = 100): Promise<string> {
    return waitFor(() => this.lines.find((l) => pattern.test(l)), { timeoutMs, intervalMs, what: () => `log line ${pattern}; got:\n${this.lines.slice(-15).join('\n')}` });
  }

  countLogs(pattern: RegExp): number {
    return this.lines.filter((l) => pattern.test(l)).length;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then waits for the exit; returns the exit code. */
  async stop(timeoutMs = 20000): Promise<number | null> {
    if (this.proc) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exitCode;
  }

  wait(): Promise<void> {
    return this.exited;
  }
}

/** Runs a sluice command to completion; returns its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [sluiceBin, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
