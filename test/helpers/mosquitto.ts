import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canConnect, freePort } from './net.js';
import type { TestPki } from './pki.js';
import { waitFor } from './wait-for.js';

/** A real Mosquitto broker on a free loopback port, with persistence in `dir`. */
export class MosquittoBroker {
  port = 0;
  /** TLS listener port (0 without `tls`): client certificate and username/password required. */
  tlsPort = 0;
  private proc: ChildProcess | null = null;

  constructor(
    private readonly dir: string,
    private readonly opts: { persistence?: boolean; tls?: { pki: TestPki; users: { name: string; password: string }[] } } = {},
  ) {}

  /** The broker's process id while it runs (the bench pins it to a core). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get tlsUrl(): string {
    return `mqtts://127.0.0.1:${this.tlsPort}`;
  }

  /** The TLS listener's lines: anonymous stays allowed on the plain listener only. */
  private tlsLines(): string[] {
    const tls = this.opts.tls;
    if (!tls) return [];
    const pwFile = join(this.dir, 'passwords');
    writeFileSync(pwFile, '');
    for (const u of tls.users) execFileSync('mosquitto_passwd', ['-b', pwFile, u.name, u.password], { stdio: 'ignore' });
    return [
      `listener ${this.tlsPort} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${pwFile}`,
      `cafile ${tls.pki.caCert}`,
      `certfile ${tls.pki.serverCert}`,
      `keyfile ${tls.pki.serverKey}`,
      'require_certificate true',
    ];
  }

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    if (this.opts.tls && !this.tlsPort) this.tlsPort = await freePort();
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        ...(this.opts.tls ? ['per_listener_settings true'] : []),
        `listener ${this.port} 127.0.0.1`,
        'allow_anonymous true',
        `persistence ${this.opts.persistence === false ? 'false' : 'true'}`,
        `persistence_location ${join(this.dir, 'data')}/`,
        'autosave_interval 1',
        // Unbounded queues so a test's backlog is never cut by the broker itself.
        'max_queued_messages 0',
        'max_inflight_messages 0',
        // Running as root, Mosquitto would drop to the mosquitto user, which cannot write our temp dir.
        'user root',
        `log_dest file ${join(this.dir, 'mosquitto.log')}`,
        'log_type error',
        'log_type warning',
        ...this.tlsLines(),
        '',
      ].join('\n'),
    );
    const bin = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
    this.proc = spawn(bin, ['-c', conf], { stdio: 'ignore' });
    await waitFor(() => canConnect(this.port), { timeoutMs: 10000, what: 'mosquitto to listen' });
  }

  /** Clean stop: Mosquitto saves its persistence file on SIGTERM. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
