import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { repoRoot } from './daemon.js';
import { waitFor } from './wait-for.js';

/** One value the server holds, encoded by the server script (Python's struct), not by sluice. */
export interface ModbusEntry {
  table: 'coils' | 'discrete_inputs' | 'holding_registers' | 'input_registers';
  address: number;
  type: string;
  order?: 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';
  count?: number;
  /** 64-bit integers beyond 2^53 as decimal strings. */
  value: number | boolean | string;
}

export interface ModbusSpec {
  units: Record<string, ModbusEntry[]>;
  /** Units that never answer. */
  silent?: number[];
  /** Entries per table from address 0; reads past them get exception 2. Default 200. */
  size?: number;
}

/** The python of the pinned pymodbus venv (installed by scripts/ensure-pymodbus.sh). */
export function pymodbusPython(): string {
  return execFileSync('bash', [join(repoRoot, 'scripts/ensure-pymodbus.sh')], { encoding: 'utf8' }).trim();
}

/** pymodbus's server (test/helpers/modbus-server.py) serving `spec`, over TCP on loopback or RTU on a pty. */
export class ModbusServer {
  private proc: ChildProcess | null = null;
  private out = '';

  constructor(
    private readonly dir: string,
    private readonly spec: ModbusSpec,
    private readonly listen: { tcpPort: number } | { rtuPath: string; baud: number },
  ) {}

  async start(): Promise<void> {
    const specPath = join(this.dir, `modbus-spec-${Date.now()}.json`);
    writeFileSync(specPath, JSON.stringify(this.spec));
    const where = 'tcpPort' in this.listen ? ['--tcp', String(this.listen.tcpPort)] : ['--rtu', this.listen.rtuPath, '--baud', String(this.listen.baud)];
    const proc = spawn(pymodbusPython(), [join(repoRoot, 'test/helpers/modbus-server.py'), specPath, ...where], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`modbus server exited with ${proc.exitCode}: ${this.out}`);
        return this.out.includes('ready');
      },
      { timeoutMs: 20000, intervalMs: 50, what: () => `pymodbus server ready; output: ${this.out}` },
    );
  }

  get output(): string {
    return this.out;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
}

/**
 * A relay between two ptys that corrupts the RTU responses of one unit: the first data byte of
 * each of its frames is inverted, so the CRC no longer matches. Everything else passes as it is.
 * Frames are cut by the RTU length rule (5 bytes for an exception, else 5 + byte count).
 */
export class ByteFlipRelay {
  private master: SerialPort | null = null;
  private device: SerialPort | null = null;
  private rx = Buffer.alloc(0);
  /** Frames corrupted so far. */
  flipped = 0;

  constructor(
    /** The pty the master (sluice) talks to: the feed side of its socat pair. */
    private readonly masterSide: string,
    /** The pty the server listens behind: the dev side of the server's socat pair. */
    private readonly deviceSide: string,
    private readonly corruptUnit: number,
  ) {}

  async start(): Promise<void> {
    const open = async (path: string): Promise<SerialPort> => {
      const port = new SerialPort({ path, baudRate: 19200, autoOpen: false, hupcl: false });
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
      port.on('error', () => undefined);
      return port;
    };
    this.master = await open(this.masterSide);
    this.device = await open(this.deviceSide);
    this.master.on('data', (d: Buffer) => this.device?.write(d));
    this.device.on('data', (d: Buffer) => this.fromDevice(d));
  }

  private fromDevice(chunk: Buffer): void {
    this.rx = Buffer.concat([this.rx, chunk]);
    while (this.rx.length >= 3) {
      const len = this.rx[1]! & 0x80 ? 5 : 5 + this.rx[2]!;
      if (this.rx.length < len) return;
      const frame = Buffer.from(this.rx.subarray(0, len));
      this.rx = this.rx.subarray(len);
      if (frame[0] === this.corruptUnit) {
        frame[3] = frame[3]! ^ 0xff;
        this.flipped++;
      }
      this.master?.write(frame);
    }
  }

  async stop(): Promise<void> {
    for (const p of [this.master, this.device]) if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    this.master = null;
    this.device = null;
  }
}
