import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { RedeliveryFilter } from '../../src/sources/redelivery-filter.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const p = (s: string): Buffer => Buffer.from(s);

test('a DUP redelivery of a journaled, unacknowledged message matches its original seq; anything else does not', () => {
  const f = new RedeliveryFilter();
  f.connected(false);
  f.journaled(7, 'dev/a', p('{"n":1}'), 41);
  f.connected(true); // the connection dropped with the ack held
  assert.equal(f.match(7, false, 'dev/a', p('{"n":1}')), null, 'DUP=0 is never a redelivery: the id was reused');
  assert.equal(f.size, 0, 'and the entry is gone');

  f.journaled(8, 'dev/a', p('{"n":2}'), 42);
  f.connected(true);
  assert.equal(f.match(8, true, 'dev/b', p('{"n":2}')), null, 'other topic');
  f.journaled(8, 'dev/b', p('{"n":2}'), 43);
  assert.equal(f.match(8, true, 'dev/b', p('{"n":3}')), null, 'other payload');
  f.journaled(8, 'dev/b', p('{"n":3}'), 44);
  f.connected(true);
  assert.equal(f.match(8, true, 'dev/b', p('{"n":3}')), 44);
  assert.equal(f.match(8, true, 'dev/b', p('{"n":3}')), 44, 'still there until its ack is sent (the connection may drop again)');
  f.acked(8, 0);
  assert.equal(f.match(8, true, 'dev/b', p('{"n":3}')), 44, 'ack written, not yet known to be read: a redelivery is still recognised');
  f.acked(8, 2);
  f.confirmed(2);
  assert.equal(f.size, 1, 'PINGRESP 2 answers a PINGREQ written before the ack: not a confirmation');
  f.confirmed(3);
  assert.equal(f.size, 0, 'PINGRESP 3 answers the PINGREQ written after the ack: the broker read it');
  assert.equal(f.match(8, true, 'dev/b', p('{"n":3}')), null);
});

test('an acked entry is persisted until confirmed, so a kill -9 before the broker read the ack still dedupes', () => {
  const f = new RedeliveryFilter();
  f.connected(true);
  f.journaled(5, 't', p('x'), 10);
  f.acked(5, 0);
  const carried = f.sidecar.encode();
  const g = new RedeliveryFilter();
  g.load(carried);
  g.connected(true);
  assert.equal(g.match(5, true, 't', p('x')), 0, 'recognised after the restart (seq 0: already committed)');
});

test('entries carried over from an earlier connection go at its first non-DUP message, and all go without a session', () => {
  const f = new RedeliveryFilter();
  f.connected(false);
  f.journaled(1, 't', p('a'), 1);
  f.journaled(2, 't', p('b'), 2);
  f.connected(true);
  assert.equal(f.match(1, true, 't', p('a')), 1);
  // The broker sends in-flight messages before new ones: a new message means no more redeliveries.
  assert.equal(f.match(3, false, 't', p('c')), null);
  assert.equal(f.size, 1, 'the matched entry (ack still held) stays; the unmatched one is gone');
  f.journaled(4, 't', p('d'), 4);
  f.connected(false);
  assert.equal(f.size, 0);
});

test('the set survives a restart through the journal commit that held the records; entries of records not yet committed stay off the disk', async () => {
  const path = join(tmp.path, 'sidecar.db');
  const mk = () => new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 1000, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 } });
  const j = mk();
  await j.start();
  const f = new RedeliveryFilter();
  assert.equal(j.setCommitSidecar('redelivery:mqtt:local', f.sidecar), null);
  const seq = j.append({ time: 1, source: 'mqtt:local', topic: 'dev/a', key: null, payload: p('x'), headers: null });
  f.journaled(65535, 'dev/a', p('x'), seq);
  f.journaled(3, 'dev/b', p('y'), seq);
  j.flush();
  // Not committed with any record: must not reach the disk (a kill now loses the record and its entry alike).
  f.journaled(4, 'dev/c', p('z'), seq + 1);
  const db = (j as unknown as { store: { db: { prepare: (s: string) => { pluck: () => { get: () => Buffer } } } } }).store.db;
  const onDisk = db.prepare("SELECT data FROM sidecars WHERE name = 'redelivery:mqtt:local'").pluck().get();
  assert.equal(onDisk.length, 12, '6 bytes per entry');
  // A "kill -9": the next run reads what the last commit wrote.
  const j2 = mk();
  await j2.start();
  const g = new RedeliveryFilter();
  g.load(j2.setCommitSidecar('redelivery:mqtt:local', g.sidecar));
  g.connected(true);
  assert.equal(g.size, 2);
  assert.equal(g.match(65535, true, 'dev/a', p('x')), 0, 'committed: the ack need not wait');
  assert.equal(g.match(3, true, 'dev/b', p('y')), 0);
  assert.equal(g.match(4, true, 'dev/c', p('z')), null);
  await j2.stop();
  await j.stop();
});
