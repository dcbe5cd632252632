/**
 * Modbus polling on one bus: the daemon polls pymodbus's TCP server on loopback as fast as the
 * bus goes (poll_interval_ms = 10 for every device, so the bus is never idle; overruns are
 * skipped polls, not queued ones) and journals every poll (no sink, so only polling and
 * journaling cost CPU). Figures: polls per second, and the daemon's CPU per polled value.
 * Run alone: `node dist/scripts/bench/modbus.js [--smoke]`; main.ts adds its rows to the table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Daemon } from '../../test/helpers/daemon.js';
import { deviceToml, type MapDevice } from '../../test/helpers/modbus-map.js';
import { ModbusServer, type ModbusEntry } from '../../test/helpers/modbus-server.js';
import { freePort } from '../../test/helpers/net.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { delay } from '../../test/helpers/wait-for.js';
import { sample } from './proc.js';

const DEVICES = 4;
/** Per device: 30 float32 CDAB (60 registers, one request) and 10 uint16 (a second request). */
function benchDevices(): MapDevice[] {
  return Array.from({ length: DEVICES }, (_, d) => {
    const values: MapDevice['values'] = [];
    for (let i = 0; i < 30; i++) values.push({ name: `f${i}`, table: 'input_registers', address: i * 2, type: 'float32', order: 'CDAB', value: 200 + i + d / 10 });
    for (let i = 0; i < 10; i++) values.push({ name: `u${i}`, table: 'holding_registers', address: 100 + i, type: 'uint16', value: i, scale: 0.1 });
    return { name: `meter${d + 1}`, unitId: d + 1, values, timeoutMs: 8, retries: 0 };
  });
}

export const VALUES_PER_POLL = 40;

export interface ModbusRun {
  pollsPerS: number;
  cpuUsPerValue: number;
}

export async function benchModbus(seconds: number, workDir: string, env: Record<string, string> = {}): Promise<ModbusRun> {
  mkdirSync(workDir, { recursive: true });
  const devices = benchDevices();
  const port = await freePort();
  const units: Record<string, ModbusEntry[]> = {};
  for (const d of devices) units[String(d.unitId)] = d.values.map(({ table, address, type, order, value }) => ({ table, address, type, order, value }));
  const server = new ModbusServer(workDir, { units, size: 200 }, { tcpPort: port });
  await server.start();
  const journal = join(workDir, `modbus-${Date.now()}.db`);
  const config = join(workDir, 'modbus.toml');
  writeFileSync(
    config,
    `[log]\nformat = "json"\n[http]\nenabled = false\n[health]\nenabled = false\n[journal]\npath = "${journal}"\ndurability = "power"\n\n[[modbus]]\nname = "bench"\ntransport = "tcp"\naddress = "127.0.0.1:${port}"\n\n${deviceToml(devices, 10).replaceAll('timeout_ms = 8', 'timeout_ms = 9')}`,
  );
  const daemon = Daemon.run(config, env).start();
  try {
    await daemon.waitForLog(/modbus link open/, 20000);
    // Warm up: the first polls land.
    await delay(1000);
    const pid = daemon.pid!;
    const seq0 = journaledSeq(journal);
    const a = sample(pid);
    const t0 = performance.now();
    await delay(seconds * 1000);
    const b = sample(pid);
    const seconds1 = (performance.now() - t0) / 1000;
    const polls = journaledSeq(journal) - seq0;
    if (polls <= 0) throw new Error(`no polls journaled; daemon said:\n${daemon.lines.slice(-10).join('\n')}`);
    return { pollsPerS: polls / seconds1, cpuUsPerValue: (b.cpuUs - a.cpuUs) / (polls * VALUES_PER_POLL) };
  } finally {
    await daemon.stop();
    await server.stop();
  }
}

function journaledSeq(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT coalesce(max(last_seq), 0) FROM batches').pluck().get() as number;
  } finally {
    db.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const smoke = process.argv.includes('--smoke');
  const tmp = tempDir('sluice-bench-modbus-');
  const runs: ModbusRun[] = [];
  try {
    for (let i = 0; i < (smoke ? 1 : 3); i++) runs.push(await benchModbus(smoke ? 2 : 10, join(tmp.path, `run${i}`)));
  } finally {
    tmp.cleanup();
  }
  for (const r of runs) process.stdout.write(`modbus: ${r.pollsPerS.toFixed(0)} polls/s (${VALUES_PER_POLL} values, 2 requests each, ${DEVICES} devices on one TCP bus), ${r.cpuUsPerValue.toFixed(2)} µs CPU per polled value\n`);
}
