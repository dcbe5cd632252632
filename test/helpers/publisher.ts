import mqtt, { type MqttClient } from 'mqtt';

/** A sensor reading of about 200 bytes with varying values, as a device would publish it. */
export function reading(device: string, n: number): string {
  const v = (x: number): string => (Math.sin(n * x) * 100).toFixed(3);
  return JSON.stringify({ device, n, ts: Date.now(), temp_c: v(1.1), humidity_pct: v(0.7), pressure_hpa: (1000 + Number(v(0.3))).toFixed(2), battery_v: v(0.05), status: n % 17 === 0 ? 'warn' : 'ok' });
}

/** An MQTT.js publisher; `publish` resolves when the broker acknowledged (PUBACK). */
export class Publisher {
  private client: MqttClient | null = null;
  /** Times the connection to the broker dropped: MQTT.js then resends unacknowledged QoS 1 publishes, which the broker takes as new messages (legitimate duplicates upstream of sluice). */
  drops = 0;
  constructor(private readonly url: string, private readonly clientId = `pub-${process.pid}-${Math.random().toString(16).slice(2)}`) {}

  async connect(): Promise<void> {
    this.client = await mqtt.connectAsync(this.url, { clientId: this.clientId, clean: true, reconnectPeriod: 200, protocolVersion: 4 });
    this.client.on('reconnect', () => void this.drops++);
  }

  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 1): Promise<void> {
    await this.client!.publishAsync(topic, payload, { qos });
  }

  /**
   * Publishes `perDevice` readings to each of `devices` topics "dev/d<i>/reading", interleaved,
   * keeping up to `window` in flight. Returns the number acknowledged.
   */
  async publishMany(devices: number, perDevice: number, opts: { start?: number; window?: number; prefix?: string; qos?: 1 | 2 } = {}): Promise<number> {
    const window = opts.window ?? 200;
    const start = opts.start ?? 0;
    const inflight = new Set<Promise<void>>();
    let acked = 0;
    for (let n = start; n < start + perDevice; n++) {
      for (let d = 0; d < devices; d++) {
        const p = this.publish(`${opts.prefix ?? 'dev'}/d${d}/reading`, reading(`d${d}`, n), opts.qos ?? 1).then(() => {
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

/**
 * Publishes readings round-robin over `devices` topics "<prefix>/d<i>/reading" at about `ratePerSec` until stopped,
 * remembering which ones the broker acknowledged: those are what must reach Kafka.
 */
export class StreamPublisher {
  readonly acked = new Map<string, number[]>();
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly pub: Publisher;
  ackedCount = 0;

  constructor(url: string, private readonly devices: number, private readonly ratePerSec: number, private readonly prefix = 'dev') {
    this.pub = new Publisher(url);
  }

  async start(): Promise<void> {
    await this.pub.connect();
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let n = 0;
    const tickMs = 20;
    const perTick = Math.max(1, Math.round((this.ratePerSec * tickMs) / 1000));
    const inflight = new Set<Promise<void>>();
    while (this.running) {
      const t0 = Date.now();
      for (let i = 0; i < perTick && this.running; i++) {
        const d = n % this.devices;
        const seq = Math.floor(n / this.devices);
        n++;
        const device = `d${d}`;
        const p = this.pub
          .publish(`${this.prefix}/${device}/reading`, reading(device, seq))
          .then(() => {
            let l = this.acked.get(device);
            if (!l) this.acked.set(device, (l = []));
            l.push(seq);
            this.ackedCount++;
          })
          .catch(() => undefined)
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      const wait = tickMs - (Date.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    // Give in-flight publishes a moment to be acknowledged; unacknowledged ones are not promised.
    await Promise.race([Promise.all(inflight), new Promise((r) => setTimeout(r, 5000))]);
  }

  /** Connection drops of the publisher itself while it ran (see Publisher.drops). */
  get drops(): number {
    return this.pub.drops;
  }

  async stop(): Promise<Map<string, number[]>> {
    this.running = false;
    await this.loop;
    await this.pub.close().catch(() => undefined);
    return this.acked;
  }
}
