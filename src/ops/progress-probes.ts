import type { Journal } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import type { KafkaSink } from '../sinks/kafka-sink.js';
import type { MqttSource } from '../sources/mqtt-source.js';
import type { SerialSource } from '../sources/serial/serial-source.js';
import type { HealthSource } from './health-source.js';
import type { ProgressProbe } from './stall-monitor.js';

/*
 * How each part shows work that does not move (see StallMonitor). Progress tokens are sums of
 * counters the parts already keep, so a probe costs nothing on the per-message path.
 */

/** A counter summed over every label set that includes `label="value"` (e.g. all reasons of one source). */
function total(metrics: Metrics, name: string, label: string, value: string): number {
  const prefix = `${name}{`;
  const needle = `${label}="${value}"`;
  let n = 0;
  for (const [k, v] of Object.entries(metrics.snapshot())) if (k.startsWith(prefix) && k.includes(needle)) n += v;
  return n;
}

/** An MQTT source paused for a full journal, or holding acknowledgements no commit releases. */
export function mqttProbe(src: MqttSource, metrics: Metrics, journal: Journal): ProgressProbe {
  return {
    name: src.name,
    kind: 'source',
    progress: () => {
      const received = metrics.get('sluice_source_received_total', { source: src.name });
      if (src.paused) return { busy: `paused: the journal is full (${journal.stats().full ?? 'room measured, reconnecting'}); the broker keeps the messages`, token: received };
      const held = src.heldAcks;
      // Commits release held acknowledgements: while they happen, this source moves.
      if (src.connected && held > 0) return { busy: `connected, ${held} message(s) taken from the broker wait for a journal commit`, token: received + journal.committedSeq };
      return { busy: null, token: received };
    },
  };
}

/** A serial port whose bytes arrive but never become frames taken, dropped or rejected. */
export function serialProbe(src: SerialSource, metrics: Metrics): ProgressProbe {
  const labels = { source: src.name };
  return {
    name: src.name,
    kind: 'source',
    progress: () => {
      const token = metrics.get('sluice_source_received_total', labels) + total(metrics, 'sluice_source_rejected_total', 'source', src.name) + metrics.get('sluice_serial_decode_errors_total', labels) + total(metrics, 'sluice_dropped_records_total', 'source', src.name);
      const buffered = src.isOpen ? src.bufferedBytes : 0;
      return { busy: buffered > 0 ? `${buffered} byte(s) received that became no frame (framing or baud rate wrong?)` : null, token };
    },
  };
}

/** Health records that stopped being journaled (a dropped one, reported by a gap record, counts as progress). */
export function healthProbe(src: HealthSource, metrics: Metrics, intervalS: number): ProgressProbe {
  return {
    name: src.name,
    kind: 'source',
    minStallMs: 3 * intervalS * 1000,
    progress: () => {
      const dropped = total(metrics, 'sluice_dropped_records_total', 'source', src.name);
      return { busy: 'health records are due every interval', token: metrics.get('sluice_source_received_total', { source: src.name }) + dropped };
    },
  };
}

/** A sink with lag whose cursor does not move while Kafka answers (errors mean "failing", reported on their own). */
export function sinkProbe(sink: KafkaSink, sinkName: string, metrics: Metrics, journal: Journal): ProgressProbe {
  return {
    name: sink.name,
    kind: 'sink',
    progress: () => {
      let cursor = 0;
      try {
        cursor = journal.cursor(sinkName);
      } catch {
        return { busy: null, token: 0 };
      }
      const lag = Math.max(0, journal.committedSeq - cursor);
      const token = cursor + metrics.get('sluice_sink_errors_total', { sink: sinkName });
      return { busy: lag > 0 ? `${lag} record(s) to ship, none shipped, no error from Kafka` : null, token };
    },
  };
}
