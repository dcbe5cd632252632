import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import type { SerialBinding } from '../sources/serial/serial-source.js';

/** Something commands' bytes can be written to: a [[serial]] source's open port, or a SerialWriter. */
export interface SerialSink {
  readonly isOpen: boolean;
  write(bytes: Buffer): Promise<void>;
}

/**
 * A serial port no [[serial]] source reads, written by the downlink: opened on first use (8N1),
 * closed after an error and opened again on the next write. Nothing is read from it.
 */
export class SerialWriter implements SerialSink {
  private port: SerialPortStream | null = null;
  private opening: Promise<SerialPortStream | null> | null = null;

  constructor(
    private readonly path: string,
    private readonly baudRate: number,
    private readonly binding?: SerialBinding,
  ) {}

  /** Whether a write may be tried (the port is open, or not tried yet: opening is part of the write). */
  get isOpen(): boolean {
    return true;
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
