import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import type { SerialBinding } from '../sources/serial/serial-source.js';

/** Something commands' bytes can be written to: a [[serial]] source's open port, or a SerialWriter. */
export interface SerialSink {
  readonly isOpen: boolean;
  write(bytes: Buffer): Promise<void>;
}

/**
 * A serial port no [[serial]] source reads, written by the downlink: opened when first asked about
 * (8N1), tried again every REOPEN_MS while it cannot be opened (commands wait meanwhile, as for a
 * broker that is away), and again after it closed. Nothing is read from it.
 */
const REOPEN_MS = 1000;

export class SerialWriter implements SerialSink {
  private port: SerialPortStream | null = null;
  private opening: Promise<SerialPortStream | null> | null = null;
  private nextTry = 0;

  constructor(
    private readonly path: string,
    private readonly baudRate: number,
    private readonly binding?: SerialBinding,
  ) {}

  /** Whether the port is open now; asking starts an open attempt when none ran for REOPEN_MS. */
  get isOpen(): boolean {
    if (this.port?.isOpen) return true;
    if (!this.opening && Date.now() >= this.nextTry) {
      this.nextTry = Date.now() + REOPEN_MS;
      void this.open();
    }
    return false;
  }

  private open(): Promise<SerialPortStream | null> {
    if (this.port?.isOpen) return Promise.resolve(this.port);
    this.opening ??= new Promise((resolve) => {
      const port = new SerialPortStream({ binding: this.binding ?? SerialPort.binding, path: this.path, baudRate: this.baudRate, autoOpen: false, hupcl: false });
      port.open((err) => {
        this.opening = null;
        if (err) return resolve(null);
        port.on('error', () => undefined);
        port.on('close', () => {
          if (this.port === port) this.port = null;
        });
        this.port = port;
        resolve(port);
      });
    });
    return this.opening;
  }

  async write(bytes: Buffer): Promise<void> {
    const port = await this.open();
    if (!port) throw new Error(`cannot open serial port ${this.path}`);
    await new Promise<void>((resolve, reject) => {
      port.write(bytes, (err) => {
        if (err) return reject(err);
        port.drain((e) => (e ? reject(e) : resolve()));
      });
    });
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
