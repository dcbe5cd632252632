import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** A Modbus TCP stand-in: answers every read of holding registers with 0x002A per register. */
async function fakeTcpDevice(): Promise<{ server: Server; port: number; requests: () => number }> {
  let requests = 0;
  const server = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      for (let at = 0; at + 12 <= d.length; at += 12) {
        requests++;
        const count = d.readUInt16BE(at + 10);
        const reply = Buffer.alloc(9 + count * 2);
        d.copy(reply, 0, at, at + 4);
        reply.writeUInt16BE(3 + count * 2, 4);
        reply[6] = d[at + 6]!;
        reply[7] = 3;
        reply[8] = count * 2;
        for (let i = 0; i < count; i++) reply.writeUInt16BE(42, 9 + i * 2);
        sock.write(reply);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, requests: () => requests };
}

function config(dir: string, port: number, intervalMs: number): ReturnType<typeof parseConfig> {
  return parseConfig(
    `
[gateway]
shutdown_timeout_ms = 1000
[http]
enabled = false
[health]
enabled = false
[journal]
path = "${join(dir, 'journal.db')}"
durability = "crash"
[[modbus]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:${port}"
[[modbus.device]]
name = "m"
unit_id = 1
poll_interval_ms = ${intervalMs}
timeout_ms = 20
[[modbus.device.register]]
name = "v"
address = 3
`,
    { hostname: 'x' },
  );
}

test('the gateway runs [[modbus]] buses: polls journaled, state in status, a changed bus replaced on reload and an unchanged one kept', async () => {
  const tmp = tempDir();
  const dev = await fakeTcpDevice();
  let gw: Gateway | null = null;
  try {
    const g = (gw = new Gateway(config(tmp.path, dev.port, 50), { logger: pino({ level: 'silent' }) }));
    await g.start();
    assert.deepEqual(g.sourceStates().find((s) => s.name === 'modbus:lan'), { name: 'modbus:lan', state: 'open' });
    await waitFor(() => g.journal.lastAssignedSeq >= 3, { timeoutMs: 5000, what: 'polls journaled' });
    const same = await g.reload(config(tmp.path, dev.port, 50));
    assert.deepEqual(same.changed, []);
    const before = g.modbusSources[0];
    const changed = await g.reload(config(tmp.path, dev.port, 60));
    assert.deepEqual(changed.changed, ['modbus:lan']);
    assert.notEqual(g.modbusSources[0], before);
    const seq = g.journal.lastAssignedSeq;
    await waitFor(() => g.journal.lastAssignedSeq > seq + 2, { timeoutMs: 5000, what: 'the new bus polls' });
    assert.ok(g.metrics.get('sluice_source_received_total', { source: 'modbus:lan' }) >= 3);
  } finally {
    await gw?.stop();
    dev.server.close();
    tmp.cleanup();
  }
  assert.ok(dev.requests() >= 6);
});
