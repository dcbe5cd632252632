import { execFile } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { consumeOrEmpty } from './kcat.js';

/**
 * Produces lines "key<TAB>value" to a topic with kcat (an independent producer, like an operator's
 * shell); `headers` ("name=value") go on every record.
 */
export function produceCommands(bootstrap: string, topic: string, records: { key: string; value: string }[], headers: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = execFile('kcat', ['-P', '-b', bootstrap, '-t', topic, '-K', '\t', '-X', 'message.timeout.ms=30000', ...headers.flatMap((h) => ['-H', h])], { timeout: 60000 }, (err, _out, stderr) => (err ? reject(new Error(`kcat -P failed: ${stderr || err.message}`)) : resolve()));
    p.stdin!.end(records.map((r) => `${r.key}\t${r.value}\n`).join(''));
  });
}

/** One command's JSON, as the README documents it. */
export function command(id: string, target: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id, target, payload: id, ...extra });
}

/** The device: an MQTT client with a persistent session, subscribed at QoS 2; keeps what it got. */
export class Device {
  readonly got: { topic: string; payload: string }[] = [];
  private client: MqttClient | null = null;

  constructor(
    private readonly url: string,
    private readonly filter: string,
  ) {}

  async start(): Promise<void> {
    const client = mqtt.connect(this.url, { clientId: 'test-device', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 }, reconnectPeriod: 200, log: () => undefined });
    this.client = client;
    client.on('message', (topic, payload) => this.got.push({ topic, payload: payload.toString() }));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => client.subscribe(this.filter, { qos: 2 }, (err) => (err ? reject(err) : resolve())));
    });
  }

  /** Payloads per topic, in arrival order. */
  byTopic(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const g of this.got) m.set(g.topic, [...(m.get(g.topic) ?? []), g.payload]);
    return m;
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
  }
}

export interface ResultRecord {
  id: string;
  status: string;
  target: string | null;
  reason: string | null;
  time: number;
  attempts: number;
}

/** The result records in Kafka, read with kcat. */
export async function results(bootstrap: string, topic: string, extra: string[] = []): Promise<ResultRecord[]> {
  return (await consumeOrEmpty(bootstrap, topic, extra)).map((m) => JSON.parse(m.payload ?? 'null') as ResultRecord);
}

/** Ids that occur more than once. */
export function repeated(ids: string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}
