import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { waitFor } from '../../test/helpers/wait-for.js';

/**
 * Telegraf (mqtt_consumer -> kafka) as a bench baseline: the bridge most sites would deploy
 * instead of sluice. Its settings mirror sluice's where they have a counterpart: QoS 1 on a
 * persistent session, acks=all, no compression, batches of 2,000, a 100 ms flush. It keeps its
 * buffer in memory (metric_buffer_limit), so it is the bar for CPU and memory, not for durability.
 */
export interface TelegrafRun {
  proc: ChildProcess;
  lines: string[];
  /** Resolves once the MQTT input is connected (its subscription then exists on the broker). */
  connected: () => Promise<void>;
}

export function startTelegraf(bin: string, configPath: string, o: { mqttUrl: string; bootstrap: string; topic: string; clientId: string; subscribe: string }): TelegrafRun {
  writeFileSync(
    configPath,
    `[agent]
  interval = "1s"
  flush_interval = "100ms"
  flush_jitter = "0s"
  metric_batch_size = 2000
  metric_buffer_limit = 200000
  omit_hostname = true

[[inputs.mqtt_consumer]]
  servers = ["${o.mqttUrl}"]
  topics = ["${o.subscribe}"]
  qos = 1
  persistent_session = true
  client_id = "${o.clientId}"
  max_undelivered_messages = 2000
  data_format = "value"
  data_type = "string"

[[outputs.kafka]]
  brokers = ["${o.bootstrap}"]
  topic = "${o.topic}"
  required_acks = -1
  compression_codec = 0
  data_format = "influx"
`,
  );
  const proc = spawn(bin, ['--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const collect = (d: Buffer): void => {
    for (const l of d.toString().split('\n')) if (l) lines.push(l);
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const connected = async (): Promise<void> => {
    await waitFor(() => lines.some((l) => /mqtt_consumer.*Connected/i.test(l)), { timeoutMs: 60000, intervalMs: 20, what: 'Telegraf connected to Mosquitto' });
  };
  return { proc, lines, connected };
}
