import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { adoptCommittedCursor, cursorKeyFor, transactionalIdFor } from '../../src/sinks/exactly-once.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

async function journalWith(name: string, n: number, t0: number) {
  const journal = new SqliteJournal({ path: join(tmp.path, `${name}.db`), durability: 'crash', commitDelayMs: 0, commitMaxRecords: 1000, logger, clock: systemClock });
  await journal.start();
  journal.registerSinks(['k']);
  for (let i = 0; i < n; i++) journal.append({ time: t0 + i, source: 'mqtt:x', topic: `dev/d${i}`, key: null, payload: Buffer.from(String(i)), headers: null });
  journal.flush();
  return journal;
}

test('transactional id and cursor key come from the gateway id and the sink name', () => {
  assert.equal(transactionalIdFor('pi-7', 'cloud'), 'sluice-pi-7-cloud');
  assert.equal(cursorKeyFor('pi-7', 'cloud'), 'pi-7/cloud');
});

test('a Kafka cursor whose last record matches this journal is adopted: those records are not sent again', async () => {
  const j = await journalWith('same', 10, 1_700_000_000_000);
  adoptCommittedCursor(j, 'k', { seq: 7, last: { seq: 6, time: String(1_700_000_000_005), topic: 'dev/d5' } }, logger);
  assert.equal(j.cursor('k'), 7);
  adoptCommittedCursor(j, 'k', { seq: 5 }, logger);
  assert.equal(j.cursor('k'), 7, 'never moves back');
  await j.stop();
});

test('a Kafka cursor from a replaced journal (same seq, other record) or past every record is ignored', async () => {
  const j = await journalWith('replaced', 10, 1_800_000_000_000);
  adoptCommittedCursor(j, 'k', { seq: 7, last: { seq: 6, time: String(1_700_000_000_005), topic: 'dev/d5' } }, logger);
  assert.equal(j.cursor('k'), 0);
  adoptCommittedCursor(j, 'k', { seq: 600 }, logger);
  assert.equal(j.cursor('k'), 0);
  await j.stop();
});
