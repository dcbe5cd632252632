import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { SluiceError } from '../../src/errors.js';
import { parseCommand } from '../../src/downlink/command.js';
import { CommandConsumer, type CommandRecord } from '../../src/downlink/consumer.js';
import { CommandStore } from '../../src/downlink/command-store.js';
import { Dispatcher } from '../../src/downlink/dispatcher.js';
import type { MqttPublisher } from '../../src/downlink/mqtt-publisher.js';
import { ResultEmitter } from '../../src/downlink/results.js';
import { CommandRouter } from '../../src/downlink/router.js';
import { fillTopic, TargetPattern } from '../../src/downlink/target-pattern.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const silent = pino({ level: 'silent' });
const NOW = 1_800_000_000_000;
const opts = { now: NOW, defaultTtlS: 300, maxPayloadBytes: 16 };
const parse = (v: unknown) => parseCommand(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), opts);

test('command parsing: payload encodings, expiry as ttl_s, deadline or the default TTL', () => {
  const a = parse({ id: 'a', target: 'valve/1', payload: 'open' });
  assert.ok(a.ok);
  assert.equal(a.command.payload.toString(), 'open');
  assert.equal(a.command.deadline, NOW + 300_000);
  const b = parse({ id: 'b', target: 't', payload: 'AAEC', encoding: 'base64', ttl_s: 5 });
  assert.ok(b.ok);
  assert.deepEqual([...b.command.payload], [0, 1, 2]);
  assert.equal(b.command.deadline, NOW + 5000);
  const c = parse({ id: 'c', target: 't', payload: { sp: 21.5 }, deadline: '2027-01-15T08:00:00Z' });
  assert.ok(c.ok);
  assert.equal(c.command.payload.toString(), '{"sp":21.5}');
  assert.equal(c.command.deadline, Date.parse('2027-01-15T08:00:00Z'));
  const d = parse({ id: 'd', target: 't', payload: 'x', deadline: NOW + 1 });
  assert.ok(d.ok);
  assert.equal(d.command.deadline, NOW + 1);
  // A TTL counts from the Kafka record's timestamp: a command read 3 h late (an uplink outage) is stale.
  const late = (v: unknown, produced: number | null) => parseCommand(Buffer.from(JSON.stringify(v)), { ...opts, produced });
  const e = late({ id: 'e', target: 't', payload: 'x', ttl_s: 60 }, NOW - 3 * 3600_000);
  assert.ok(e.ok && e.command.deadline === NOW - 3 * 3600_000 + 60_000);
  const f = late({ id: 'f', target: 't', payload: 'x' }, NOW - 1000);
  assert.ok(f.ok && f.command.deadline === NOW - 1000 + 300_000, 'default_ttl_s too');
  const g = late({ id: 'g', target: 't', payload: 'x', ttl_s: 60 }, -1);
  assert.ok(g.ok && g.command.deadline === NOW + 60_000, 'no timestamp: from receipt');
});

test('command parsing: bad commands are reasons, never exceptions', () => {
  const reason = (v: unknown): string => {
    const r = typeof v === 'object' && v instanceof Buffer ? parseCommand(v, opts) : parse(v);
    assert.ok(!r.ok);
    return r.reason;
  };
  assert.equal(reason('not json'), 'unparsable');
  assert.equal(reason('[1,2]'), 'unparsable');
  assert.equal(reason(Buffer.alloc(0)), 'unparsable');
  assert.equal(reason({ target: 't', payload: 'x' }), 'invalid');
  assert.equal(reason({ id: 'x', payload: 'x' }), 'invalid');
  assert.equal(reason({ id: 'x', target: 't' }), 'invalid');
  assert.equal(reason({ id: 'x', target: 't', payload: 'x'.repeat(17) }), 'payload_too_large');
  assert.equal(reason({ id: 'x', target: 't', payload: 'x', ttl_s: 1, deadline: 1 }), 'invalid');
  assert.equal(reason({ id: 'x', target: 't', payload: 'x', ttl_s: -1 }), 'invalid');
  assert.equal(reason({ id: 'x', target: 't', payload: '!!', encoding: 'base64' }), 'invalid');
  assert.equal(reason({ id: 'x', target: 't', payload: 'x', encoding: 'rot13' }), 'invalid');
  const r = parse({ id: 'keep', target: 'valve/2', payload: 'x', deadline: 'soon' });
  assert.ok(!r.ok && r.id === 'keep' && r.target === 'valve/2', 'a rejection keeps the id and target it could read');
});

test('routing: target patterns bind levels, topics are filled; no route and an invalid topic are rejections', () => {
  const p = new TargetPattern('site/+site/valve/#rest');
  assert.deepEqual(p.match('site/a/valve/1/2'), { target: 'site/a/valve/1/2', site: 'a', rest: '1/2' });
  assert.equal(p.match('site/a/pump/1'), null);
  assert.equal(new TargetPattern('valve/+id').match('valve/1/2'), null);
  assert.throws(() => new TargetPattern('a/#/b'));
  assert.deepEqual(new TargetPattern('valve/+id').unknownPlaceholders('x/{id}/{nope}/{target}'), ['nope']);
  assert.equal(fillTopic('cmd/{id}', { id: 'a+b' }), null);
  const pub = {} as MqttPublisher;
  const router = new CommandRouter([
    { target: 'valve/+id', dest: { kind: 'mqtt', publisher: pub, topic: 'cmd/{id}/set', qos: 2, retain: true } },
    { target: 'meter', dest: { kind: 'serial', port: { isOpen: true, write: async () => undefined }, name: 'm', lineEnding: 'crlf' } },
  ]);
  assert.deepEqual(router.resolve('valve/7'), { kind: 'mqtt', publisher: pub, topic: 'cmd/7/set', qos: 2, retain: true });
  const serial = router.resolve('meter');
  assert.ok('kind' in serial && serial.kind === 'serial' && serial.suffix.toString() === '\r\n');
  const none = router.resolve('pump/1');
  assert.ok('reject' in none && none.reject === 'no_route');
  const bad = router.resolve('valve/#');
  assert.ok('reject' in bad && bad.reject === 'invalid_topic');
});

async function openJournal(name: string): Promise<SqliteJournal> {
  const j = new SqliteJournal({ path: join(tmp.path, `${name}.db`), durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: silent, clock: { now: () => NOW }, maintenanceIntervalMs: 3_600_000 });
  await j.start();
  j.registerSinks(['k']);
  return j;
}

const cmd = (id: string, target: string, deadline = NOW + 60_000) => ({ command: { id, target, payload: Buffer.from(id), deadline }, origin: `t/0/${id}` });

test('command store: an id is stored once (a Kafka redelivery is a duplicate), finishes once, and is forgotten only past keep_done', async () => {
  const j = await openJournal('store');
  const s = new CommandStore(j.database, 'dl');
  assert.deepEqual(s.insert([cmd('a', 'x'), cmd('b', 'x'), cmd('c', 'y')], NOW), { added: 3, rejected: 0, duplicates: 0 });
  assert.deepEqual(s.insert([cmd('a', 'x'), { rejected: { id: 'bad', target: null, reason: 'unparsable' }, origin: 't/0/9' }], NOW), { added: 0, rejected: 1, duplicates: 1 });
  assert.equal(s.waitingCount(), 3);
  assert.deepEqual(s.heads().map((c) => c.id), ['a', 'c'], 'the oldest of each target');
  const a = s.heads()[0]!;
  assert.ok(s.finish(a.n, 'delivered', null, NOW + 1));
  assert.ok(!s.finish(a.n, 'expired', null, NOW + 2), 'an outcome is decided once');
  assert.deepEqual(s.heads().map((c) => c.id), ['b', 'c']);
  assert.deepEqual(s.insert([cmd('a', 'x')], NOW + 5).duplicates, 1, 'a finished id is still known');
  assert.deepEqual(s.pendingResults().map((r) => [r.id, r.outcome]), [['a', 'delivered'], ['bad', 'rejected']]);
  s.markResults(s.pendingResults().map((r) => r.n));
  assert.equal(s.prune(NOW, 1000), 0, 'kept until keep_done_s');
  assert.equal(s.prune(NOW + 10, 1000), 2);
  assert.equal(s.insert([cmd('a', 'x')], NOW + 20).added, 1, 'past keep_done_s an id is new again');
  await j.stop();
});

test('result records: one per command, marked journaled in the commit that writes it; a run that stopped before the commit journals it again, one after does not', async () => {
  const j = await openJournal('results');
  const s = new CommandStore(j.database, 'dl');
  s.insert([cmd('a', 'x'), cmd('b', 'x')], NOW);
  const emitter = () => new ResultEmitter(s, j, { source: 'downlink:dl', topic: 'sluice/downlink/dl', gatewayId: 'gw', downlink: 'dl' }, { logger: silent, clock: { now: () => NOW } });
  const first = emitter();
  const unhook = j.addCommitHook(first);
  const [a, b] = s.heads().length ? [s.heads()[0]!, s.get(s.heads()[0]!.n + 1)!] : [];
  s.finish(a!.n, 'delivered', null, NOW + 7);
  const before = j.lastAssignedSeq;
  first.emitPending();
  first.emitPending();
  assert.equal(j.lastAssignedSeq, before + 1, 'appended once, however often asked');
  assert.equal(s.pendingResults().length, 1, 'not marked before the commit');
  // A restart before the commit: the journal never got the record; the row still says "pending".
  assert.equal(emitter().inCommit(), null);
  j.flush();
  assert.equal(s.pendingResults().length, 0, 'marked in the commit');
  const records = j.read(0, 100, 1e9).filter((r) => r.source === 'downlink:dl');
  assert.equal(records.length, 1);
  assert.deepEqual(JSON.parse(records[0]!.payload.toString()), { id: 'a', status: 'delivered', target: 'x', reason: null, time: NOW + 7, received: NOW, attempts: 0, gateway: 'gw', downlink: 'dl', kafka: 't/0/a' });
  s.finish(b!.n, 'expired', 'deadline passed', NOW + 9);
  unhook();
  // The hook is gone (a run killed before its commit): the record commits but the row is not marked.
  first.emitPending();
  j.flush();
  assert.equal(s.pendingResults().length, 1);
  await j.stop();
});

test('dispatcher: one in flight per target and in order; a deadline passing while the broker is away expires the command, never published', async () => {
  const j = await openJournal('dispatch');
  const s = new CommandStore(j.database, 'dl');
  let now = NOW;
  let ready = false;
  const published: string[] = [];
  const pub = {
    get isReady() {
      return ready;
    },
    publish: (n: number) => {
      if (!ready) return false;
      published.push(s.get(n)!.id);
      return true;
    },
  } as unknown as MqttPublisher;
  const finished: [string, string][] = [];
  const router = new CommandRouter([{ target: '+dev', dest: { kind: 'mqtt', publisher: pub, topic: 'cmd/{dev}', qos: 2, retain: false } }]);
  const d = new Dispatcher(s, router, (n, o, reason, at) => {
    finished.push([s.get(n)!.id, o]);
    s.finish(n, o, reason, at ?? now);
  }, { retries: 1, retryMinMs: 10, retryMaxMs: 10 }, { clock: { now: () => now }, logger: silent });
  s.insert([cmd('a1', 'a', NOW + 1000), cmd('a2', 'a'), cmd('b1', 'b'), cmd('c1', 'c/x')], NOW);
  d.start();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, [], 'nothing goes out while the broker is away');
  assert.deepEqual(finished, [['c1', 'rejected']], 'no route: rejected at once');
  now = NOW + 1000;
  d.kick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(finished.at(-1), ['a1', 'expired']);
  ready = true;
  d.kick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, ['a2', 'b1']);
  s.insert([cmd('a3', 'a')], now);
  d.kick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, ['a2', 'b1'], 'a3 waits for a2');
  const n = (id: string) => s.heads().find((c) => c.id === id)!.n;
  d.onPublish(n('a2'), { kind: 'acked', at: now });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, ['a2', 'b1', 'a3']);
  d.onPublish(n('b1'), { kind: 'refused', reasonCode: 0x87 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, ['a2', 'b1', 'a3'], 'not before the retry delay');
  now += 20;
  d.kick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, ['a2', 'b1', 'a3', 'b1'], 'a refused PUBLISH is retried');
  d.onPublish(n('b1'), { kind: 'refused', reasonCode: 0x87 });
  assert.deepEqual(finished.at(-1), ['b1', 'failed'], 'failed after retries');
  assert.equal(d.mayResend(n('a3')), true);
  now += 120_000;
  assert.equal(d.mayResend(n('a3')), false, 'a stored PUBLISH past its deadline is not sent again');
  d.stop();
  await j.stop();
});

test('config: [[downlink]] names what exists; every problem is listed as dotted.path: message', () => {
  const base = `[gateway]\nid = "gw"\n[[mqtt]]\nname = "local"\n[[mqtt.subscribe]]\ntopic = "a/#"\n[[serial]]\nname = "meter"\npath = "/dev/ttyS9"\n[[sink]]\nbrokers = ["127.0.0.1:9092"]\n`;
  const ok = parseConfig(`${base}[[downlink]]\n[[downlink.route]]\ntarget = "valve/+id"\nmqtt = "local"\ntopic = "cmd/{id}"\n[[downlink.route]]\ntarget = "meter"\nserial = "meter"\n`);
  assert.equal(ok.downlink[0]!.route[0]!.qos, 2);
  assert.equal(ok.downlink[0]!.selectHeader, 'gateway');
  let lines: string[] = [];
  try {
    parseConfig(`${base}[[downlink]]\nsink = "nope"\n[[downlink.route]]\ntarget = "valve/+id"\nmqtt = "other"\ntopic = "cmd/{dev}"\n[[downlink.route]]\ntarget = "x"\nserial_path = "/dev/ttyS9"\n[[downlink.route]]\ntarget = "y"\n`);
  } catch (err) {
    assert.ok(err instanceof SluiceError);
    lines = err.message.split('\n');
  }
  assert.deepEqual(lines.sort(), [
    'downlink[0].route[0].mqtt: no [[mqtt]] is named "other"',
    'downlink[0].route[0].topic: uses {dev}, which target "valve/+id" does not name',
    'downlink[0].route[1].serial_path: "/dev/ttyS9" is read by [[serial]] "meter"; use serial = "meter" (a port is not opened twice)',
    'downlink[0].route[2]: give exactly one of mqtt, serial, serial_path',
    'downlink[0].sink: no [[sink]] is named "nope"',
  ]);
});

test('salvage of a damaged journal carries the downlink\'s commands over: known ids stay known, results stay decided', async () => {
  const path = join(tmp.path, 'salvage.db');
  const j = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: silent, clock: { now: () => NOW }, maintenanceIntervalMs: 3_600_000 });
  await j.start();
  j.registerSinks(['k']);
  j.append({ time: NOW, source: 'mqtt:x', topic: 'a', key: null, payload: Buffer.from('1'), headers: null });
  j.flush();
  const s = new CommandStore(j.database, 'dl');
  s.insert([cmd('a', 'x'), cmd('b', 'x')], NOW);
  s.finish(s.heads()[0]!.n, 'delivered', null, NOW);
  await j.stop();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 68); // application_id
  closeSync(fd);
  const again = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: silent, clock: { now: () => NOW }, maintenanceIntervalMs: 3_600_000 });
  await again.start();
  const s2 = new CommandStore(again.database, 'dl');
  assert.equal(s2.insert([cmd('a', 'x')], NOW).duplicates, 1, 'a delivered id is still known');
  assert.deepEqual(s2.heads().map((c) => c.id), ['b']);
  assert.deepEqual(s2.pendingResults().map((r) => r.id), ['a']);
  await again.stop();
});

test('the commented [[downlink]] example in config.example.toml is valid', async () => {
  const { readFileSync } = await import('node:fs');
  const { repoRoot } = await import('../helpers/daemon.js');
  const text = readFileSync(join(repoRoot, 'config.example.toml'), 'utf8');
  const block = /^# \[\[downlink\]\]\n(?:# .*\n)+/m.exec(text)![0].replace(/^# /gm, '');
  const c = parseConfig(`${text}\n${block}`, { baseDir: '/etc/sluice', hostname: 'pi-7' });
  assert.equal(c.downlink.length, 1);
  assert.deepEqual(c.downlink[0]!.route.map((r) => r.target), ['valve/+id', 'display', 'relay']);
});

test('bound on waiting commands: "reject_new" turns the new one down, "drop_oldest" the oldest waiting; each with a rejected result (overflow)', async () => {
  const { Downlink } = await import('../../src/downlink/downlink.js');
  const { Metrics } = await import('../../src/metrics.js');
  for (const overflow of ['reject_new', 'drop_oldest'] as const) {
    const j = await openJournal(`overflow-${overflow}`);
    // Nothing listens on these ports: the broker is away, so commands wait.
    const c = parseConfig(`[gateway]\nid = "gw"\n[[mqtt]]\nname = "local"\nurl = "mqtt://127.0.0.1:1"\n[[mqtt.subscribe]]\ntopic = "a/#"\n[[sink]]\nbrokers = ["127.0.0.1:1"]\n[[downlink]]\nmax_waiting = 2\noverflow = "${overflow}"\n[[downlink.route]]\ntarget = "+id"\nmqtt = "local"\ntopic = "cmd/{id}"\n`);
    const metrics = new Metrics();
    const dl = new Downlink(c.downlink[0]!, { journal: j, logger: silent, metrics, clock: { now: () => NOW }, gatewayId: 'gw', sink: c.sink[0]!, mqtt: new Map([['local', c.mqtt[0]!]]), serial: new Map() });
    await dl.start();
    const take = (dl as unknown as { take: (r: { value: Buffer; origin: string; timestamp: number | null }[]) => void }).take.bind(dl);
    take(['a', 'b', 'c'].map((id) => ({ value: Buffer.from(JSON.stringify({ id, target: id, payload: id })), origin: `t/0/${id}`, timestamp: NOW })));
    const s = new CommandStore(j.database, 'downlink');
    const rejected = s.pendingResults().map((r) => [r.id, r.outcome, r.reason?.split(':')[0]]);
    assert.deepEqual(rejected, [[overflow === 'reject_new' ? 'c' : 'a', 'rejected', 'overflow']]);
    assert.equal(s.waitingCount(), 2);
    assert.equal(dl.status().rejected, 1);
    assert.equal(dl.status().waiting, 2);
    await dl.stop();
    await j.stop();
  }
});

test('dispatcher: an in-flight command past its deadline does not make the timer spin (it is not a deadline to wake for)', async () => {
  const j = await openJournal('spin');
  const s = new CommandStore(j.database, 'dl');
  let now = NOW;
  const pub = { isReady: true, publish: () => true } as unknown as MqttPublisher;
  const router = new CommandRouter([{ target: '+dev', dest: { kind: 'mqtt', publisher: pub, topic: 'cmd/{dev}', qos: 2, retain: false } }]);
  const d = new Dispatcher(s, router, (n, o, reason, at) => s.finish(n, o, reason, at ?? now), { retries: 1, retryMinMs: 10, retryMaxMs: 10 }, { clock: { now: () => now }, logger: silent });
  s.insert([cmd('a1', 'a', NOW + 1000), cmd('b1', 'b', NOW + 1000)], NOW);
  // b1's PUBLISH is stored by a last run (a row of downlink_outgoing); a1 is published (in flight in memory) now.
  s.putOutgoing('c', 1, s.heads()[1]!.n, Buffer.from('{}'));
  assert.equal(s.nextDeadline(), NOW + 1000);
  assert.equal(s.nextDeadline(new Set([s.heads()[0]!.n])), null, 'in-flight rows are no deadline to wake for');
  let pumps = 0;
  const heads = s.heads.bind(s);
  s.heads = () => (pumps++, heads());
  d.start();
  await new Promise((r) => setImmediate(r));
  now = NOW + 5000; // the broker never acknowledges; the deadlines pass
  d.kick();
  await new Promise((r) => setTimeout(r, 200));
  d.stop();
  await j.stop();
  assert.ok(pumps <= 3, `the dispatcher looked ${pumps} times (a 1 ms timer spins)`);
});

test('outgoing store: the acknowledged packet\'s row goes in the transaction that finishes its command (a crash between leaves both or neither)', async () => {
  const { OutgoingStore } = await import('../../src/downlink/outgoing-store.js');
  const j = await openJournal('outgoing-ack');
  const s = new CommandStore(j.database, 'dl');
  s.insert([cmd('a', 'x'), cmd('b', 'y')], NOW);
  const [a, b] = s.heads();
  let crash = true;
  const o = new OutgoingStore(s, 'c', {
    current: () => null,
    acked: (n) => {
      if (crash) throw new Error('kill -9');
      s.finish(n, 'delivered', null, NOW);
    },
    mayResend: () => true,
  });
  s.putOutgoing('c', 1, a!.n, Buffer.from(JSON.stringify({ cmd: 'publish', topic: 't', payload: '', qos: 2, retain: false, messageId: 1 })));
  s.putOutgoing('c', 2, b!.n, Buffer.from(JSON.stringify({ cmd: 'pubrel', messageId: 2 })));
  assert.throws(() => o.del({ cmd: 'pubcomp', messageId: 1 } as never, () => undefined));
  assert.ok(s.getOutgoing('c', 1), 'the crash before the command finished keeps its packet id');
  assert.deepEqual(s.heads().map((c) => c.id), ['a', 'b']);
  crash = false;
  let got: unknown;
  o.del({ cmd: 'pubcomp', messageId: 2 } as never, (err, p) => (got = err ?? p));
  assert.equal((got as { cmd: string }).cmd, 'pubrel');
  assert.equal(s.getOutgoing('c', 2), null);
  assert.deepEqual(s.heads().map((c) => c.id), ['a']);
  await j.stop();
});

test('drop_oldest never drops a command in flight: neither one with a stored PUBLISH nor one whose serial write is under way', async () => {
  const j = await openJournal('droppable');
  const s = new CommandStore(j.database, 'dl');
  s.insert([cmd('a', 'x'), cmd('b', 'y'), cmd('c', 'z')], NOW);
  const [a, b, c] = s.heads();
  s.putOutgoing('cl', 1, a!.n, Buffer.from('{}'));
  assert.equal(s.oldestDroppable(), b!.n);
  let release: () => void = () => undefined;
  const port = { isOpen: true, write: () => new Promise<void>((r) => (release = r)) };
  const closed = { isOpen: false, write: async () => undefined };
  const router = new CommandRouter([
    { target: 'y', dest: { kind: 'serial', port, name: 'm', lineEnding: 'none' } },
    { target: 'z', dest: { kind: 'serial', port: closed, name: 'n', lineEnding: 'none' } },
  ]);
  const d = new Dispatcher(s, router, (n, o, reason, at) => s.finish(n, o, reason, at ?? NOW), { retries: 0, retryMinMs: 10, retryMaxMs: 10 }, { clock: { now: () => NOW }, logger: silent });
  d.start();
  await new Promise((r) => setImmediate(r));
  assert.ok(d.inFlightRows.has(b!.n), 'b is being written');
  assert.equal(s.oldestDroppable(d.inFlightRows), c!.n);
  d.stop();
  release();
  await new Promise((r) => setImmediate(r));
  await j.stop();
});

test('consumer: while the journal takes no records, a fetched batch waits in Kafka (not taken, offset not committed, heartbeats go on); then it is taken and committed', async () => {
  let accepting = false;
  const taken: CommandRecord[][] = [];
  const commits: string[] = [];
  let heartbeats = 0;
  const c = new CommandConsumer(
    { sink: {} as never, topic: 'cmd', groupId: 'g', clientId: 'c', select: 'key', selectHeader: 'gateway', gatewayId: 'gw', sessionTimeoutMs: 6000, retryMinMs: 100, retryMaxMs: 1000 },
    { logger: silent, clock: { now: () => NOW } as never, take: (r) => void taken.push(r), accepting: () => accepting },
  );
  (c as unknown as { consumer: unknown }).consumer = { commitOffsets: async (o: { offset: string }[]) => void commits.push(o[0]!.offset) };
  const payload = {
    batch: { topic: 'cmd', partition: 0, messages: [{ key: Buffer.from('gw'), value: Buffer.from('{"id":"a","target":"t","payload":"x"}'), offset: '41', timestamp: String(NOW), headers: {} }] },
    resolveOffset: () => undefined,
    heartbeat: async () => void heartbeats++,
    isRunning: () => true,
    isStale: () => false,
  };
  const done = (c as unknown as { onBatch: (p: unknown) => Promise<void> }).onBatch(payload);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(taken.length, 0, 'nothing taken while the journal is full');
  assert.deepEqual(commits, [], 'the offset stays where it was');
  assert.ok(heartbeats >= 1, 'the consumer stays in its group meanwhile');
  accepting = true;
  await done;
  assert.equal(taken.length, 1);
  assert.deepEqual(commits, ['42']);
});

test('a packet left in flight on an MQTT client the configuration no longer has ends "failed" (delivery unknown) at start, instead of holding its target for good', async () => {
  const { Downlink } = await import('../../src/downlink/downlink.js');
  const { Metrics } = await import('../../src/metrics.js');
  const j = await openJournal('orphan-outgoing');
  const s = new CommandStore(j.database, 'downlink');
  s.insert([cmd('old', 'v1')], NOW);
  const [old] = s.heads();
  const packet = (id: number): Buffer => Buffer.from(JSON.stringify({ cmd: 'publish', topic: 't', payload: '', qos: 2, retain: false, messageId: id }));
  // "old" went out on a client id of an earlier configuration.
  s.putOutgoing('renamed-client-downlink', 1, old!.n, packet(1));
  const c = parseConfig(`[gateway]\nid = "gw"\n[[mqtt]]\nname = "local"\nurl = "mqtt://127.0.0.1:1"\n[[mqtt.subscribe]]\ntopic = "a/#"\n[[sink]]\nbrokers = ["127.0.0.1:1"]\n[[downlink]]\n[[downlink.route]]\ntarget = "+id"\nmqtt = "local"\ntopic = "cmd/{id}"\n`);
  const dl = new Downlink(c.downlink[0]!, { journal: j, logger: silent, metrics: new Metrics(), clock: { now: () => NOW }, gatewayId: 'gw', sink: c.sink[0]!, mqtt: new Map([['local', c.mqtt[0]!]]), serial: new Map() });
  const current = (dl as unknown as { publishers: Map<string, { clientId: string }> }).publishers;
  assert.equal(current.size, 0, 'publishers are built at start');
  await dl.start();
  const clientId = [...current.values()][0]!.clientId;
  assert.notEqual(clientId, 'renamed-client-downlink');
  const results = s.pendingResults().map((r) => [r.id, r.outcome, r.reason?.split(':')[0]]);
  assert.deepEqual(results, [['old', 'failed', 'delivery unknown']]);
  assert.equal(s.outgoingClients().some((o) => o.client === 'renamed-client-downlink'), false, 'its packet row is gone');
  await dl.stop();
  await j.stop();
});

test('a serial write that never completes ends its command "failed" after the write timeout, and the target takes the next command', async () => {
  const j = await openJournal('serial-timeout');
  const s = new CommandStore(j.database, 'dl');
  s.insert([cmd('stuck', 'p'), cmd('next', 'p')], NOW);
  let writes = 0;
  const port = { isOpen: true, write: () => (++writes === 1 ? new Promise<void>(() => undefined) : Promise.resolve()) };
  const router = new CommandRouter([{ target: 'p', dest: { kind: 'serial', port, name: 'm', lineEnding: 'none' } }]);
  const d = new Dispatcher(s, router, (n, o, reason, at) => s.finish(n, o, reason, at ?? NOW), { retries: 0, retryMinMs: 10, retryMaxMs: 10, serialWriteTimeoutMs: () => 50 }, { clock: { now: () => NOW }, logger: silent });
  d.start();
  await new Promise((r) => setTimeout(r, 300));
  d.stop();
  const outcomes = s.pendingResults().map((r) => [r.id, r.outcome, r.reason?.includes('did not complete') ?? false]);
  assert.deepEqual(outcomes, [['stuck', 'failed', true], ['next', 'delivered', false]]);
  await j.stop();
});
