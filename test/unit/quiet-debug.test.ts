import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/daemon.js';

/**
 * A fresh process, as the daemon starts (everything `sluice run` imports), parses a PUBLISH with
 * the mqtt-packet MQTT.js uses: is the quiet `debug` in place, is the packet parsed, and what
 * did debug print?
 */
function probe(debugEnv: string): { installed: boolean; packet: string; stderr: string } {
  const script = `
    await import(${JSON.stringify(join(repoRoot, 'dist/src/cli/run.js'))});
    const { createRequire } = await import('node:module');
    const q = await import(${JSON.stringify(join(repoRoot, 'dist/src/sources/quiet-debug.js'))});
    const mqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt'))('mqtt-packet');
    const parser = mqttPacket.parser();
    let packet = null;
    parser.on('packet', (p) => (packet = p.topic + ':' + p.payload.toString() + ':' + p.messageId));
    parser.parse(mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('hi'), qos: 1, messageId: 7 }));
    process.stdout.write(JSON.stringify({ installed: q.quietDebugInstalled(), packet }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, DEBUG: debugEnv } });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(r.stdout) as { installed: boolean; packet: string }), stderr: r.stderr };
}

test("the daemon's import graph quiets mqtt-packet's disabled debug calls; packets parse as before", () => {
  const r = probe('');
  assert.equal(r.installed, true);
  assert.equal(r.packet, 'a/b:hi:7');
  assert.equal(r.stderr, '');
});

test('DEBUG=mqtt-packet:* still prints the parser and writer debug lines', () => {
  const r = probe('mqtt-packet:*');
  assert.equal(r.installed, true);
  assert.equal(r.packet, 'a/b:hi:7');
  assert.match(r.stderr, /mqtt-packet:parser/);
  assert.match(r.stderr, /mqtt-packet:writeToStream/);
});
