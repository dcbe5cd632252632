import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecords, encodeRecords } from '../../src/journal/record-codec.js';
import type { NewRecord } from '../../src/journal/journal.js';

test('a row decodes to the records encoded, whatever their sources: repeated, alternating, same length, empty, non-ASCII', () => {
  const sources = ['mqtt:a', 'mqtt:a', 'mqtt:b', 'mqtt:a', 'serial:x', 'serial:y', '', '', 'mqtt:ü', 'mqtt:ü', 'mqtt:u?', 'mqtt:a'];
  const records: NewRecord[] = sources.map((source, i) => ({
    time: 1_700_000_000_000 + i + 0.5,
    source,
    topic: `t/${i % 3}`,
    key: i % 2 ? null : `k${i}`,
    payload: Buffer.from(`payload ${i}`),
    headers: i % 4 === 0 ? { h: String(i) } : null,
  }));
  const decoded = decodeRecords(encodeRecords(records), 100, records.length);
  assert.deepEqual(
    decoded.map((r) => ({ ...r, payload: r.payload.toString() })),
    records.map((r, i) => ({ seq: 100 + i, ...r, payload: r.payload.toString() })),
  );
});
