import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig, type ModbusConfig } from '../../src/config/load.js';
import { SluiceError } from '../../src/errors.js';
import type { GapReport } from '../../src/journal/gaps.js';
import type { Journal, NewRecord } from '../../src/journal/journal.js';
import { Metrics } from '../../src/metrics.js';
import { crc16, type ReadRequest, type ReadResult } from '../../src/sources/modbus/frames.js';
import { ModbusSource } from '../../src/sources/modbus/modbus-source.js';
import type { PollPayload } from '../../src/sources/modbus/poll-record.js';
import type { LinkState } from '../../src/sources/modbus/reopener.js';
import { RtuTransport } from '../../src/sources/modbus/rtu-transport.js';
import type { ModbusTransport } from '../../src/sources/modbus/transport.js';
import type { SerialBinding } from '../../src/sources/serial/serial-source.js';
import { MockBinding, type MockPortBinding } from '../helpers/mock-binding.js';
import { waitFor } from '../helpers/wait-for.js';

class FakeJournal {
  records: NewRecord[] = [];
  full = false;
  append(r: NewRecord): number {
    if (this.full) throw new SluiceError('SLUICE_JOURNAL_FULL', 'journal is at max_bytes', { retriable: true });
    this.records.push(r);
    return this.records.length;
  }
}

/** A bus in memory: answers each read from `answer`, with a delay; records what it was asked, and whether two reads ever overlapped. */
class FakeBus implements ModbusTransport {
  state: LinkState = 'idle';
  asked: ReadRequest[] = [];
  overlapped = false;
  private busy = false;
  constructor(private readonly answer: (req: ReadRequest) => ReadResult | 'silent') {}
  async start(): Promise<void> {
    this.state = 'open';
  }
  async stop(): Promise<void> {
    this.state = 'idle';
  }
  async read(req: ReadRequest, timeoutMs: number): Promise<ReadResult> {
    if (this.busy) this.overlapped = true;
    this.busy = true;
    this.asked.push(req);
    const a = this.answer(req);
    await new Promise((r) => setTimeout(r, a === 'silent' ? timeoutMs : 1));
    this.busy = false;
    return a === 'silent' ? { ok: false, reason: 'timeout' } : a;
  }
}

const registers = (...w: number[]): ReadResult => ({ ok: true, registers: Uint16Array.from(w) });

function busConfig(devices: string, extra = ''): ModbusConfig {
  return parseConfig(`[[modbus]]\nname = "b"\ntransport = "tcp"\naddress = "127.0.0.1:502"\n${extra}\n${devices}`).modbus[0]!;
}

/** Sources started by a test: stopped after it whatever happened, so a failure cannot leave timers running. */
const running: ModbusSource[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

function setup(cfg: ModbusConfig, transport: ModbusTransport | ((cfg: ModbusConfig, events: { onLost: (e: Error, how: string) => void; onOpen: (o: null) => void }) => ModbusTransport)) {
  const journal = new FakeJournal();
  const metrics = new Metrics();
  const gaps: GapReport[] = [];
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const source = new ModbusSource(cfg, {
    journal: journal as unknown as Journal,
    logger,
    clock: { now: () => Date.now() },
    metrics,
    reportGap: (g) => gaps.push(g),
    createTransport: typeof transport === 'function' ? transport : () => transport,
    gapWindowMs: 20,
  });
  running.push(source);
  const payloads = (): PollPayload[] => journal.records.map((r) => JSON.parse(r.payload.toString()) as PollPayload);
  return { source, journal, metrics, gaps, logs, payloads, countLogs: (re: RegExp) => logs.filter((l) => re.test(l.msg)).length };
}

const dev = (name: string, unit: number, extra = '', regs = '[[modbus.device.register]]\nname = "v"\naddress = 0\n'): string => `[[modbus.device]]\nname = "${name}"\nunit_id = ${unit}\npoll_interval_ms = 100\ntimeout_ms = 30\nretries = 2\n${extra}\n${regs}`;

test('one record per poll: named, scaled values with quality, key and topic per device; requests never overlap on the bus', async () => {
  const regs = '[[modbus.device.register]]\nname = "t"\naddress = 0\ntype = "int16"\nscale = 0.1\nunit = "degC"\n[[modbus.device.register]]\nname = "n"\naddress = 1\n[[modbus.device.register]]\nname = "f"\ntable = "coils"\naddress = 4\ntype = "bool"\n';
  const bus = new FakeBus((req) => (req.fn === 1 ? { ok: true, bits: Uint8Array.from([1]) } : registers(0xff38, req.unit)));
  const { source, payloads, journal, metrics } = setup(busConfig(dev('a', 1, '', regs) + dev('b', 2, '', regs)), bus);
  await source.start();
  await waitFor(() => journal.records.length >= 6, { timeoutMs: 5000 });
  await source.stop();
  assert.equal(bus.overlapped, false);
  const a = payloads().find((p) => p.device === 'a')!;
  assert.deepEqual(a.values, { t: { value: -20, unit: 'degC', quality: 'good' }, n: { value: 1, quality: 'good' }, f: { value: true, quality: 'good' } });
  assert.equal(a.ok, true);
  assert.equal(a.unit_id, 1);
  const rb = journal.records.find((r) => r.key === 'b')!;
  assert.equal(rb.topic, 'modbus/b/b');
  assert.equal(rb.source, 'modbus:b');
  assert.equal(new Date(rb.time).toISOString(), (JSON.parse(rb.payload.toString()) as PollPayload).time);
  assert.ok(metrics.get('sluice_modbus_polls_total', { source: 'modbus:b', device: 'a' }) >= 3);
  assert.deepEqual(bus.asked.filter((r) => r.unit === 1).slice(0, 2), [{ unit: 1, fn: 1, address: 4, count: 1 }, { unit: 1, fn: 3, address: 0, count: 2 }], 'two reads per poll: the coil, and registers 0-1 together');
});

test('a silent device: timeouts retried only until it is known silent, the rest of its poll skipped; the other device keeps its pace; one log line per outage', async () => {
  const regs = '[[modbus.device.register]]\nname = "x"\naddress = 0\n[[modbus.device.register]]\nname = "y"\ntable = "input_registers"\naddress = 0\n';
  let deadSilent = true;
  const bus = new FakeBus((req) => (req.unit === 9 && deadSilent ? 'silent' : registers(5)));
  const { source, payloads, metrics, countLogs, logs } = setup(busConfig(dev('ok', 1, '', regs) + dev('dead', 9, '', regs)), bus);
  await source.start();
  await waitFor(() => payloads().filter((p) => p.device === 'dead').length >= 3, { timeoutMs: 5000 });
  const dead = payloads().filter((p) => p.device === 'dead');
  for (const p of dead) assert.deepEqual(p.values, { x: { value: null, quality: 'bad', error: 'timeout' }, y: { value: null, quality: 'bad', error: 'timeout' } });
  const deadAsks = bus.asked.filter((r) => r.unit === 9);
  assert.equal(deadAsks.filter((r) => r.fn === 4).length, 0, 'after a timeout the rest of the poll is not asked for');
  // The next poll's request may be in flight already: it is asked but not yet journaled.
  const expected = 3 + (dead.length - 1);
  assert.ok(deadAsks.length === expected || deadAsks.length === expected + 1, `first poll: 1 + 2 retries; then no retries while silent: ${deadAsks.length} asks for ${dead.length} polls`);
  assert.ok(metrics.get('sluice_modbus_errors_total', { source: 'modbus:b', device: 'dead', reason: 'timeout' }) >= expected);
  assert.ok(payloads().filter((p) => p.device === 'ok').every((p) => p.ok));
  deadSilent = false;
  await waitFor(() => payloads().at(-1)?.device === 'dead' && payloads().at(-1)!.ok, { timeoutMs: 5000 });
  await source.stop();
  assert.equal(countLogs(/modbus device failing/), 1);
  assert.equal(countLogs(/modbus device answering again/), 1);
  assert.equal(logs.find((l) => /failing/.test(l.msg))!.device, 'dead');
});

test('an exception is an answer (not retried), a CRC error is retried; each failed attempt counted by reason', async () => {
  let crcLeft = 1;
  const bus = new FakeBus((req) => {
    if (req.address === 50) return { ok: false, reason: 'illegal_data_address' };
    if (crcLeft > 0) {
      crcLeft--;
      return { ok: false, reason: 'crc_error' };
    }
    return registers(7);
  });
  const regs = '[[modbus.device.register]]\nname = "good"\naddress = 0\n[[modbus.device.register]]\nname = "nope"\naddress = 50\n';
  const { source, payloads, metrics } = setup(busConfig(dev('m', 1, '', regs)), bus);
  await source.start();
  await waitFor(() => payloads().length >= 2, { timeoutMs: 5000 });
  await source.stop();
  const p = payloads()[0]!;
  assert.deepEqual(p.values, { good: { value: 7, quality: 'good' }, nope: { value: null, quality: 'bad', error: 'illegal_data_address' } });
  assert.equal(p.ok, false);
  assert.equal(metrics.get('sluice_modbus_errors_total', { source: 'modbus:b', device: 'm', reason: 'crc_error' }), 1);
  const asked = bus.asked.filter((r) => r.address === 50).length;
  // A poll cut short by the stop is asked but not journaled.
  assert.ok(asked === payloads().length || asked === payloads().length + 1, `the exception is asked once per poll: ${asked} asks, ${payloads().length} polls`);
});

test('report = "on_change": a poll is journaled when a value moves by its deadband or a quality changes', async () => {
  const seq = [1000, 1003, 1004, 1020, 'bad', 'bad', 1020, 1020];
  let i = 0;
  const bus = new FakeBus(() => {
    const v = seq[Math.min(i++, seq.length - 1)]!;
    return v === 'bad' ? { ok: false, reason: 'server_device_failure' } : registers(v as number);
  });
  const regs = '[[modbus.device.register]]\nname = "p"\naddress = 0\ndeadband = 5\n';
  const { source, payloads, metrics } = setup(busConfig(dev('m', 1, 'report = "on_change"\nretries = 0', regs).replace('retries = 2\n', '')), bus);
  await source.start();
  await waitFor(() => i >= seq.length + 1, { timeoutMs: 5000 });
  await source.stop();
  assert.deepEqual(
    payloads().map((p) => p.values.p!.value),
    [1000, 1020, null, 1020],
    'first poll; 1003, 1004 within the deadband of 1000; 1020 beyond; the failure; the recovery',
  );
  assert.ok(metrics.get('sluice_modbus_unchanged_total', { source: 'modbus:b', device: 'm' }) >= 4);
});

test('a poll the full journal cannot take is dropped and reported as a gap', async () => {
  const bus = new FakeBus(() => registers(1));
  const { source, journal, gaps } = setup(busConfig(dev('m', 1)), bus);
  journal.full = true;
  await source.start();
  await waitFor(() => gaps.length >= 1, { timeoutMs: 5000 });
  await source.stop();
  assert.equal(gaps[0]!.reason, 'journal_full');
  assert.equal(gaps[0]!.source, 'modbus:b');
  assert.ok(gaps[0]!.count >= 1);
});

afterEach(() => MockBinding.reset());

/** Plays an RTU device on the mock port: answers reads of holding registers after `answer`. */
function rtuDevice(port: MockPortBinding, answer: (req: Buffer) => Buffer | null, writes: number[]): void {
  const write = port.write.bind(port);
  port.write = async (buf: Buffer) => {
    await write(buf);
    writes.push(performance.now());
    const reply = answer(buf);
    if (reply) setTimeout(() => port.emitData(reply), 2);
  };
}

function withCrc(body: number[]): Buffer {
  const b = Buffer.from([...body, 0, 0]);
  b.writeUInt16LE(crc16(b, body.length), body.length);
  return b;
}

test('RTU on a mock port: the frame gap is kept between answer and next request, a bad CRC is reported as such, an unplugged port reopens', async () => {
  MockBinding.createPort('/dev/mock-rtu', { record: true });
  const opened: MockPortBinding[] = [];
  const writes: number[] = [];
  let corrupt = false;
  const binding = {
    ...MockBinding,
    open: async (opts: Parameters<typeof MockBinding.open>[0]) => {
      const p = await MockBinding.open(opts);
      opened.push(p);
      rtuDevice(p, (req) => {
        const reply = withCrc([req[0]!, 3, 2, 0x01, 0x02]);
        if (corrupt) reply[3] = reply[3]! ^ 0xff;
        return reply;
      }, writes);
      return p;
    },
  } as SerialBinding;
  const events: string[] = [];
  // 1200 baud 8N1: 3.5 characters = 29.2 ms, so 30 ms of silence between frames.
  const t = new RtuTransport({ path: '/dev/mock-rtu', baudRate: 1200, dataBits: 8, parity: 'none', stopBits: 1, reopenMinMs: 10, reopenMaxMs: 20 }, { clock: { now: () => Date.now() }, binding, onLost: (_e, how) => events.push(`lost:${how}`), onOpen: (o) => events.push(o ? 'recovered' : 'open') });
  await t.start();
  assert.equal(t.gap, 30);
  const req = { unit: 4, fn: 3 as const, address: 0, count: 1 };
  const r1 = await t.read(req, 500);
  const answeredAt = performance.now();
  assert.ok(r1.ok && r1.registers![0] === 0x0102, JSON.stringify(r1));
  const r2 = await t.read(req, 500);
  assert.ok(r2.ok);
  assert.ok(writes[1]! - answeredAt >= 29, `the second request waited for the gap: ${(writes[1]! - answeredAt).toFixed(1)} ms`);
  corrupt = true;
  const r3 = await t.read(req, 500);
  assert.ok(!r3.ok && r3.reason === 'crc_error', JSON.stringify(r3));
  corrupt = false;
  // Unplug: the port closes as disconnected; reads say not_connected; it is reopened.
  await waitFor(() => (opened[0] as unknown as { pendingRead: unknown }).pendingRead, { what: 'a pending read', timeoutMs: 5000 });
  MockBinding.reset(); // the device is gone: reopening fails until it comes back
  (opened[0] as unknown as { pendingRead: (e: Error) => void }).pendingRead(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
  await waitFor(() => t.state === 'lost', { timeoutMs: 5000, what: 'lost' });
  const r4 = await t.read(req, 100);
  assert.ok(!r4.ok && r4.reason === 'not_connected', JSON.stringify(r4));
  MockBinding.createPort('/dev/mock-rtu', { record: true });
  await waitFor(() => events.includes('recovered'), { timeoutMs: 5000, what: `reopen; events ${events.join(',')}` });
  const r5 = await t.read(req, 500);
  assert.ok(r5.ok);
  await t.stop();
  assert.deepEqual(events, ['open', 'lost:disconnected', 'recovered'], 'the outage reported once, and its end');
});
