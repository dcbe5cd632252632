import type { ModbusDeviceConfig } from '../../config/load.js';
import type { ReadResult } from './frames.js';
import { planReads, type PlannedRead } from './register-plan.js';
import type { ModbusTransport } from './transport.js';

/** Failures worth asking again: the next answer may be fine. An exception is an answer. */
const RETRIABLE = new Set(['timeout', 'crc_error', 'bad_response', 'server_device_busy']);
/** Failures that say the device (or link) is not answering: the rest of its poll is skipped. */
const SILENT = new Set(['timeout', 'not_connected']);

export interface DevicePoll {
  device: ModbusDeviceConfig;
  reads: PlannedRead[];
  /** Capture time of the poll (wall clock, ms): when its first request went out. */
  time: number;
  /** One result per read, in plan order. */
  results: ReadResult[];
}

export interface BusPollerDeps {
  /** Wall clock, for the capture time. */
  now: () => number;
  /** Every poll, finished. */
  onPoll: (poll: DevicePoll) => void;
  /** Every failed request attempt (retries included), for counting. */
  onFailedAttempt: (device: ModbusDeviceConfig, reason: string) => void;
  /** A poll came due while the previous one of the device had not finished; it is skipped. */
  onOverrun: (device: ModbusDeviceConfig) => void;
}

interface DeviceState {
  cfg: ModbusDeviceConfig;
  reads: PlannedRead[];
  timer: NodeJS.Timeout | null;
  /** Queued or being polled: a poll due now is an overrun. */
  busy: boolean;
  /** The last poll ended with the device silent: no retries until it answers again. */
  silent: boolean;
}

/**
 * Polls the devices of one bus. Each device has its own interval; its due polls wait in one FIFO
 * and run one request at a time on the transport, which keeps the bus's timing (RTU frame gap).
 * A silent device costs the others at most its timeout per poll: retries are skipped while it is
 * known to be silent, and after a timeout the rest of its poll is not asked for.
 */
export class BusPoller {
  private readonly devices: DeviceState[];
  private readonly queue: DeviceState[] = [];
  private pumping: Promise<void> | null = null;
  private running = false;

  constructor(
    devices: ModbusDeviceConfig[],
    private readonly transport: Pick<ModbusTransport, 'read'>,
    private readonly deps: BusPollerDeps,
  ) {
    this.devices = devices.map((cfg) => ({ cfg, reads: planReads(cfg), timer: null, busy: false, silent: false }));
  }

  /** Requests one poll of every device takes (for status and the benchmark). */
  get requestsPerRound(): number {
    return this.devices.reduce((n, d) => n + d.reads.length, 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const d of this.devices) {
      d.timer = setInterval(() => this.due(d), d.cfg.pollIntervalMs);
      this.due(d);
    }
  }

  /** Stops polling; waits for the request in flight (bounded by its timeout). */
  async stop(): Promise<void> {
    this.running = false;
    for (const d of this.devices) {
      if (d.timer) clearInterval(d.timer);
      d.timer = null;
    }
    this.queue.length = 0;
    await this.pumping;
    for (const d of this.devices) d.busy = false;
  }

  private due(d: DeviceState): void {
    if (!this.running) return;
    if (d.busy) {
      this.deps.onOverrun(d.cfg);
      return;
    }
    d.busy = true;
    this.queue.push(d);
    this.pumping ??= this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (let d = this.queue.shift(); d && this.running; d = this.queue.shift()) {
        try {
          await this.poll(d);
        } finally {
          d.busy = false;
        }
      }
    } finally {
      this.pumping = null;
    }
  }

  private async poll(d: DeviceState): Promise<void> {
    const time = this.deps.now();
    const results: ReadResult[] = [];
    let silentReason: string | null = null;
    for (const read of d.reads) {
      if (silentReason !== null || !this.running) {
        results.push({ ok: false, reason: silentReason ?? 'not_connected', detail: 'not asked: the device did not answer an earlier request of this poll' });
        continue;
      }
      const attempts = d.silent ? 1 : 1 + d.cfg.retries;
      let r: ReadResult = { ok: false, reason: 'not_connected' };
      for (let i = 0; i < attempts && this.running; i++) {
        r = await this.transport.read({ unit: d.cfg.unitId, fn: read.fn, address: read.address, count: read.count }, d.cfg.timeoutMs);
        if (r.ok) break;
        this.deps.onFailedAttempt(d.cfg, r.reason);
        if (!RETRIABLE.has(r.reason)) break;
      }
      if (!r.ok && SILENT.has(r.reason)) silentReason = r.reason;
      results.push(r);
    }
    d.silent = silentReason === 'timeout';
    if (this.running) this.deps.onPoll({ device: d.cfg, reads: d.reads, time, results });
  }
}
