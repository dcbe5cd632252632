import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { waitFor } from './wait-for.js';

/**
 * A pair of real pseudo-terminals joined by socat, standing in for a serial cable: sluice opens
 * `devPath` (a symlink, like /dev/serial/by-id/...), the test plays the sensor on `feedPath`.
 * `unplug` kills socat and removes the links (as udev removes the device node); `plug` starts it
 * again under the same link names.
 */
export class SocatPty {
  readonly devPath: string;
  readonly feedPath: string;
  private proc: ChildProcess | null = null;
  private stderr = '';

  constructor(dir: string, name = 'tty') {
    this.devPath = join(dir, `${name}-dev`);
    this.feedPath = join(dir, `${name}-feed`);
  }

  async plug(): Promise<void> {
    if (this.proc) return;
    this.stderr = '';
    const proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.devPath}`, `pty,raw,echo=0,link=${this.feedPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`socat exited with ${proc.exitCode}: ${this.stderr}`);
        return this.stderr.includes('starting data transfer loop') && existsSync(this.devPath) && existsSync(this.feedPath);
      },
      { timeoutMs: 10000, intervalMs: 20, what: () => `socat ptys; stderr: ${this.stderr}` },
    );
  }

  /** Pulls the cable: socat dies at once (SIGKILL) and the device links disappear. */
  async unplug(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    if (p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    rmSync(this.devPath, { force: true });
    rmSync(this.feedPath, { force: true });
  }

  stop(): Promise<void> {
    return this.unplug();
  }
}

/**
 * The sensor's end of the cable: writes lines and answers requests. It tolerates the cable being
 * pulled (writes then fail quietly and are counted as not sent).
 */
export class PtyDevice {
  private port: SerialPort | null = null;
  private received = Buffer.alloc(0);
  /** Lines handed to the pty successfully. */
  readonly sent: string[] = [];
  notSent = 0;
  private onRequest: ((data: Buffer) => string | null) | null = null;

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    const port = new SerialPort({ path: this.path, baudRate: 9600, autoOpen: false, hupcl: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('error', () => undefined);
    port.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      if (this.onRequest) {
        const answer = this.onRequest(d);
        if (answer !== null) void this.write(answer);
      }
    });
    this.port = port;
  }

  /** Answers every chunk it receives with `respond(chunk)` (null: stay silent). */
  respond(respond: (data: Buffer) => string | null): void {
    this.onRequest = respond;
  }

  get receivedBytes(): Buffer {
    return this.received;
  }

  /** Writes one line; resolves true once written, false if the cable was pulled. */
  write(text: string): Promise<boolean> {
    const port = this.port;
    if (!port?.isOpen) {
      this.notSent++;
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      port.write(text, (err) => {
        if (err) {
          this.notSent++;
          return resolve(false);
        }
        port.drain((e) => {
          if (e) {
            this.notSent++;
            return resolve(false);
          }
          this.sent.push(text);
          resolve(true);
        });
      });
    });
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
