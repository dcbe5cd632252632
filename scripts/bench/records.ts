import type { NewRecord } from '../../src/journal/journal.js';

const DEVICES = 1000;

/** The i-th drain-scenario record: a ~200-byte JSON reading from one of 1,000 devices. */
export function benchRecord(i: number): NewRecord & { key: string } {
  const d = i % DEVICES;
  const v = (x: number): string => (Math.sin(i * x + d) * 100).toFixed(3);
  const body = JSON.stringify({ device: `d${d}`, site: 'north-ridge-pumping-station-07', n: Math.floor(i / DEVICES), ts: 1700000000000 + i, temp_c: v(1.1), humidity_pct: v(0.7), pressure_hpa: (1000 + Number(v(0.3))).toFixed(2), battery_v: v(0.05), rssi_dbm: -40 - (i % 50), status: i % 17 === 0 ? 'warn' : 'ok' });
  return { time: 1700000000000 + i, source: 'mqtt:bench', topic: `bench/d${d}/reading`, key: `d${d}`, payload: Buffer.from(body), headers: null };
}
