import assert from 'node:assert/strict';
import { test } from 'node:test';
import { processWriteBytes, WriteCounter } from '../../src/ops/io-counters.js';
import { forwardingStatus } from '../../src/ops/sd-notify.js';

const io = (writeBytes: number): string => `rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: ${writeBytes}\ncancelled_write_bytes: 0\n`;

test('processWriteBytes reads write_bytes from /proc/self/io; null without the file', () => {
  assert.equal(processWriteBytes(() => io(4096)), 4096);
  assert.equal(processWriteBytes(() => 'rchar: 1\n'), null);
  assert.equal(
    processWriteBytes(() => {
      throw new Error('ENOENT');
    }),
    null,
  );
});

test('bytes written count only what sluice wrote: what the process carried in at start (its shell ran npm ci, tsc) is the baseline', () => {
  let now: number | null = 175_600_000; // inherited from reaped children before exec
  const c = new WriteCounter(() => now);
  assert.equal(c.written(), 0, 'a fresh daemon has written nothing');
  now = 175_600_000 + 8192;
  assert.equal(c.written(), 8192);
  now = null;
  assert.equal(c.written(), null, 'unknown when /proc/self/io cannot be read');
  assert.equal(new WriteCounter(() => null).written(), null);
  // The real file: whatever this test process carried in is not counted.
  const real = new WriteCounter();
  const w = real.written();
  assert.ok(w === null || (w >= 0 && w < 1_000_000), `just made: ${w}`);
});

test('the unit status text counts every source, MQTT and serial', () => {
  assert.equal(forwardingStatus({ mqtt: 1, serial: 1, sinks: 1 }), 'forwarding: 2 source(s), 1 sink(s)');
  assert.equal(forwardingStatus({ mqtt: 0, serial: 3, sinks: 2 }), 'forwarding: 3 source(s), 2 sink(s)');
});
