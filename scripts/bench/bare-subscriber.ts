/**
 * Baseline: a bare MQTT.js QoS 1 subscriber that acknowledges at once and stores nothing.
 * argv: url n. Prints "ready" once subscribed, "done" when n messages arrived.
 */
import mqtt from 'mqtt';

const [url, nArg] = process.argv.slice(2);
const n = Number(nArg);
let count = 0;
const client = await mqtt.connectAsync(url!, { clientId: `bare-${process.pid}`, clean: true, protocolVersion: 5, properties: { receiveMaximum: 1000 } });
client.on('message', () => {
  if (++count === n) process.stdout.write('done\n');
});
await client.subscribeAsync('bench/#', { qos: 1 });
process.stdout.write('ready\n');
