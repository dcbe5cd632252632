import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { MqttClient } from 'mqtt';
import { parseConfig } from '../../src/config/load.js';
import { CommandStore } from '../../src/downlink/command-store.js';
import { MqttPublisher, type PublishOutcome } from '../../src/downlink/mqtt-publisher.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Device } from '../helpers/downlink.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { tempDir } from '../helpers/tmp.js';
import { delay, waitFor } from '../helpers/wait-for.js';

/*
 * The kill -9 windows of a QoS 2 PUBLISH, made to happen on purpose: the first client drops the
 * broker's PUBREC (or PUBCOMP) as a process killed at that instant would never see it, and is
 * thrown away; a second client with the same id and the same store (the next run) must finish the
 * exchange with the packet id on disk, and the device must get the command exactly once.
 */
const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
before(() => mosquitto.start());
after(async () => {
  await mosquitto.stop();
  tmp.cleanup();
});
const silent = pino({ level: 'silent' });

for (const lost of ['pubrec', 'pubcomp'] as const) {
  test(`a run killed before it saw the ${lost.toUpperCase()}: the next run sends the stored ${lost === 'pubrec' ? 'PUBLISH' : 'PUBREL'} again with its packet id, and the device gets the command once`, async () => {
    const j = new SqliteJournal({ path: join(tmp.path, `${lost}.db`), durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: silent, clock: { now: () => Date.now() }, maintenanceIntervalMs: 3_600_000 });
    await j.start();
    const store = new CommandStore(j.database, 'dl');
    store.insert([{ command: { id: `c-${lost}`, target: 'v', payload: Buffer.from(`c-${lost}`), deadline: Date.now() + 60_000 }, origin: 't/0/0' }], Date.now());
    const n = store.heads()[0]!.n;
    const cfg = parseConfig(`[[mqtt]]\nname = "local"\nurl = "${mosquitto.url}"\nclient_id = "resend-${lost}"\n[[mqtt.subscribe]]\ntopic = "x/#"\n`).mqtt[0]!;
    const device = new Device(mosquitto.url, `resend/${lost}`);
    await device.start();
    const outcomes: PublishOutcome[] = [];
    const publisher = () => new MqttPublisher(cfg, 'gw', 'dl', { store, logger: silent, now: () => Date.now(), mayResend: () => true, onOutcome: (_n, o) => outcomes.push(o), onReady: () => undefined });
    const p1 = publisher();
    p1.start();
    await waitFor(() => p1.isReady, { what: 'first client connected' });
    const first = (p1 as unknown as { client: MqttClient & { outgoing: Record<number, unknown> } }).client;
    // MQTT.js ignores an ack for a packet id it has no pending entry for: removing the entry is
    // losing the ack, as a process killed at that instant would.
    const forget = (): void => {
      for (const id of Object.keys(first.outgoing)) delete first.outgoing[Number(id)];
    };
    if (lost === 'pubcomp') {
      const replace = store.replaceOutgoing.bind(store);
      store.replaceOutgoing = (client, id, packet) => {
        const ok = replace(client, id, packet);
        forget(); // the PUBREL is on disk and about to go out; its PUBCOMP will not be seen
        return ok;
      };
    }
    assert.ok(p1.publish(n, `resend/${lost}`, Buffer.from(`c-${lost}`), 2, false));
    if (lost === 'pubrec') forget();
    const stored = () => store.listOutgoing(p1.clientId).map((r) => JSON.parse(r.packet.toString()).cmd as string);
    // The exchange stops where the ack was lost: the stored packet says how far it got.
    await waitFor(() => (lost === 'pubrec' ? stored()[0] === 'publish' : stored()[0] === 'pubrel'), { what: () => `stored ${stored()}` });
    await delay(300);
    assert.deepEqual(stored(), [lost === 'pubrec' ? 'publish' : 'pubrel']);
    const messageId = store.listOutgoing(p1.clientId)[0]!.messageId;
    // "kill -9": the connection is cut, nothing more is processed.
    first.stream.destroy();
    first.end(true);
    assert.equal(outcomes.length, 0);
    if (lost === 'pubcomp') assert.deepEqual(device.got.map((g) => g.payload), [`c-${lost}`], 'released to the device by the PUBREL');
    else assert.deepEqual(device.got, [], 'held by the broker until a PUBREL');
    const p2 = publisher();
    p2.start();
    await waitFor(() => outcomes.length === 1, { timeoutMs: 10000, what: 'the next run finishes the exchange' });
    assert.equal(outcomes[0]!.kind, 'acked');
    assert.deepEqual(store.listOutgoing(p2.clientId), []);
    await delay(500);
    assert.deepEqual(device.got.map((g) => g.payload), [`c-${lost}`], 'delivered exactly once');
    assert.ok(messageId > 0);
    await p2.stop();
    await device.stop();
    await j.stop();
  });
}
