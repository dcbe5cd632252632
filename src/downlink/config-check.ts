import type { RawConfig } from '../config/schema.js';
import { TargetPattern } from './target-pattern.js';

type RawDownlink = RawConfig['downlink'][number];

/** What a downlink may refer to: the names (and serial paths) of the other sections. */
export interface DownlinkRefs {
  sinks: string[];
  mqtt: string[];
  serial: { name: string; path: string }[];
}

/** Cross-field checks of the [[downlink]] sections: what check-config accepts, run can start. */
export function checkDownlinks(items: [number, RawDownlink][], refs: DownlinkRefs, errors: string[]): void {
  const names = new Map<string, string>();
  for (const [i, d] of items) {
    const at = `downlink[${i}]`;
    const prev = names.get(d.name);
    if (prev) errors.push(`${at}.name: "${d.name}" is already used by ${prev}`);
    names.set(d.name, at);
    if (d.sink !== undefined && !refs.sinks.includes(d.sink)) errors.push(`${at}.sink: no [[sink]] is named "${d.sink}"`);
    if (d.sink === undefined && refs.sinks.length !== 1) errors.push(`${at}.sink: ${refs.sinks.length === 0 ? 'a downlink needs a [[sink]] whose Kafka connection it uses' : `there are ${refs.sinks.length} sinks; name the one whose Kafka connection to use`}`);
    if (d.retry_min_ms > d.retry_max_ms) errors.push(`${at}.retry_min_ms: must not exceed retry_max_ms (${d.retry_max_ms})`);
    d.route.forEach((r, j) => {
      const rat = `${at}.route[${j}]`;
      let pattern: TargetPattern | null = null;
      try {
        pattern = new TargetPattern(r.target);
      } catch (err) {
        errors.push(`${rat}.target: ${(err as Error).message}`);
      }
      const kinds = [r.mqtt !== undefined && 'mqtt', r.serial !== undefined && 'serial', r.serial_path !== undefined && 'serial_path'].filter(Boolean);
      if (kinds.length !== 1) errors.push(`${rat}: give exactly one of mqtt, serial, serial_path${kinds.length ? ` (got ${kinds.join(', ')})` : ''}`);
      if (r.mqtt !== undefined) {
        if (!refs.mqtt.includes(r.mqtt)) errors.push(`${rat}.mqtt: no [[mqtt]] is named "${r.mqtt}"`);
        if (r.topic === undefined) errors.push(`${rat}.topic: needed with mqtt`);
        else if (/[+#\u0000]/.test(r.topic.replace(/\{[^{}]*\}/g, ''))) errors.push(`${rat}.topic: an MQTT topic to publish to holds no "+", "#" or NUL`);
        else if (pattern) for (const n of pattern.unknownPlaceholders(r.topic)) errors.push(`${rat}.topic: uses {${n}}, which target "${r.target}" does not name`);
      } else if (r.topic !== undefined) errors.push(`${rat}.topic: only used with mqtt`);
      if (r.serial !== undefined && !refs.serial.some((s) => s.name === r.serial)) errors.push(`${rat}.serial: no [[serial]] is named "${r.serial}"`);
      if (r.serial_path !== undefined) {
        const owner = refs.serial.find((s) => s.path === r.serial_path);
        if (owner) errors.push(`${rat}.serial_path: "${r.serial_path}" is read by [[serial]] "${owner.name}"; use serial = "${owner.name}" (a port is not opened twice)`);
      }
    });
  }
}
