/**
 * Load generator (its own process): publishes N QoS 1 readings of about 200 bytes over 1,000
 * device topics, as fast as the broker acknowledges them (rate 0) or at a fixed rate.
 * argv: url n rate [prefix]. Prints "done <ms>" when every publish was acknowledged.
 */
import mqtt from 'mqtt';

const [url, nArg, rateArg, prefix = 'bench'] = process.argv.slice(2);
const n = Number(nArg);
const rate = Number(rateArg);
const DEVICES = 1000;

function payload(device: number, i: number): string {
  const v = (x: number): string => (Math.sin(i * x + device) * 100).toFixed(3);
  return JSON.stringify({ device: `d${device}`, site: 'north-ridge-pumping-station-07', n: i, ts: Date.now(), temp_c: v(1.1), humidity_pct: v(0.7), pressure_hpa: (1000 + Number(v(0.3))).toFixed(2), battery_v: v(0.05), rssi_dbm: -40 - (i % 50), status: i % 17 === 0 ? 'warn' : 'ok' });
}

const client = await mqtt.connectAsync(url!, { clientId: `loadgen-${process.pid}`, clean: true, protocolVersion: 4 });
const t0 = Date.now();
const window = 1000;
let inflight = 0;
let sent = 0;
let acked = 0;
await new Promise<void>((resolve) => {
  const pump = (): void => {
    const allowed = rate > 0 ? Math.min(n, Math.floor(((Date.now() - t0) / 1000) * rate) + 1) : n;
    while (sent < allowed && inflight < window) {
      const i = sent++;
      const d = i % DEVICES;
      inflight++;
      client.publish(`${prefix}/d${d}/reading`, payload(d, Math.floor(i / DEVICES)), { qos: 1 }, () => {
        inflight--;
        acked++;
        if (acked === n) resolve();
        else if (rate === 0) pump();
      });
    }
    if (rate > 0 && sent < n) setTimeout(pump, 5);
  };
  pump();
});
process.stdout.write(`done ${Date.now() - t0}\n`);
await client.endAsync();
