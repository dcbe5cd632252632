import type { ReadRequest, ReadResult } from './frames.js';
import type { LinkState } from './reopener.js';

/**
 * One Modbus link (an RTU serial port or a TCP connection) that carries one transaction at a
 * time. `read` never rejects: a timeout, a CRC error, an exception or a closed link is a result.
 */
export interface ModbusTransport {
  readonly state: LinkState;
  /** Opens the link (the first attempt is awaited); keeps it open with backoff until stop. */
  start(): Promise<void>;
  stop(): Promise<void>;
  read(req: ReadRequest, timeoutMs: number): Promise<ReadResult>;
}

/** Monotonic milliseconds, for timing on the wire (injectable in tests). */
export type Monotonic = () => number;
