import mqtt, { type MqttClient } from 'mqtt';

/** A sensor reading of about 200 bytes with varying values, as a device would publish it. */
export function reading(device: string, n: number): string {
  const v = (x: number): string => (Math.sin(n * x) * 100).toFixed(3);
  return JSON.stringify({ device, n, ts: Date.now(), temp_c: v(1.1), humidity_pct: v(0.7), pressure_hpa: (1000 + Number(v(0.3))).toFixed(2), battery_v: v(0.05), status: n % 17 === 0 ? 'warn' : 'ok' });
}

/** An MQTT.js publisher; `publish` resolves when the broker acknowledged (PUBACK). */
export class Publisher {
  private client: MqttClient | null = null;
  constructor(private readonly url: string, private readonly clientId = `pub-${process.pid}-${Math.random().toString(16).slice(2)}`) {}

  async connect(): Promise<void> {
    this.client = await mqtt.connectAsync(this.url, { clientId: this.clientId, clean: true, reconnectPeriod: 200, protocolVersion: 4 });
  }

  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 1): Promise<void> {
    await this.client!.publishAsync(topic, payload, { qos });
  }

  /**
   * Publishes `perDevice` readings to each of `devices` topics "dev/d<i>/reading", interleaved,
   * keeping up to `window` in flight. Returns the number acknowledged.
   */
  async publishMany(devices: number, perDevice: number, opts: { start?: number; window?: number; prefix?: string } = {}): Promise<number> {
    const window = opts.window ?? 200;
    const start = opts.start ?? 0;
    const inflight = new Set<Promise<void>>();
    let acked = 0;
    for (let n = start; n < start + perDevice; n++) {
      for (let d = 0; d < devices; d++) {
        const p = this.publish(`${opts.prefix ?? 'dev'}/d${d}/reading`, reading(`d${d}`, n)).then(() => {
          acked++;
          inflight.delete(p);
        });
        inflight.add(p);
        if (inflight.size >= window) await Promise.race(inflight);
      }
    }
    await Promise.all(inflight);
    return acked;
  }

  async close(): Promise<void> {
    await this.client?.endAsync();
    this.client = null;
  }
}
