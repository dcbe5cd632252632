import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { freeBytes, SmallDisks } from '../helpers/small-disk.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const disks = new SmallDisks(tmp.path);

// A journal that fills a real filesystem holds pages in its WAL that the database file has not
// grown to take yet: if the disk is allowed to fill past that, no checkpoint can complete, the
// WAL can neither start over nor grow, and not even a cursor move fits: the sink drains, the
// confirmed rows are never deleted, and the journal stays full for good. (Measured before the
// space keeper kept room for the checkpoint: stuck at 87,500 records on this 24 MiB tmpfs.)
test('a journal that filled a real 24 MiB tmpfs drains to empty while the filesystem stays full, and takes records again', async () => {
  const disk = disks.mount('wal', 24);
  const j = new SqliteJournal({
    path: join(disk, 'journal.db'),
    durability: 'power',
    commitDelayMs: 5,
    commitMaxRecords: 2000,
    minFreeBytes: 0,
    logger: pino({ level: 'silent' }),
    clock: { now: () => Date.now() },
    maintenanceIntervalMs: 200,
  });
  await j.start();
  try {
    j.registerSinks(['k']);
    const payload = Buffer.alloc(200, 'x');
    const append = (): void => void j.append({ time: Date.now(), source: 'mqtt:x', topic: 't/a', key: null, payload, headers: null });
    for (;;) {
      try {
        for (let i = 0; i < 500; i++) append();
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => j.stats().full !== null, { what: 'the journal full' });
    await new Promise((r) => setTimeout(r, 500));
    const held = j.stats().backlogRecords;
    console.log(`full with ${held} records, ${freeBytes(disk)} bytes free on the tmpfs`);
    assert.ok(held > 50000, `the journal filled the disk (${held} records)`);
    // The sink confirms everything, 2000 at a time; the filesystem gets nothing back from outside.
    for (let seq = 2000; seq < j.committedSeq + 2000; seq += 2000) {
      j.ack('k', Math.min(seq, j.committedSeq));
      await new Promise((r) => setImmediate(r));
    }
    j.ack('k', j.committedSeq);
    await waitFor(() => j.stats().backlogRecords === 0 && j.accepting, { timeoutMs: 10000, what: () => `the journal to drain and take records again (${JSON.stringify(j.stats())})` });
    append();
    j.flush();
    assert.equal(j.stats().backlogRecords, 1, 'it takes records again');
  } finally {
    await j.stop();
    disks.unmountAll();
  }
});
