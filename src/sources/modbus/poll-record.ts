import { decodeRegisters, scaleValue } from './data-types.js';
import type { DevicePoll } from './bus-poller.js';

/** One value of a poll record: good with its value, or bad with the reason and no value. */
export type PolledValue =
  | { value: number | boolean | string; unit?: string; quality: 'good' }
  | { value: null; unit?: string; quality: 'bad'; error: string };

/** The JSON payload of a poll record. */
export interface PollPayload {
  bus: string;
  device: string;
  unit_id: number;
  /** Capture time, ISO 8601 (also the record's time). */
  time: string;
  /** True when every value is good. */
  ok: boolean;
  values: Record<string, PolledValue>;
}

/** Decodes a finished poll into its named, scaled values, each with its quality. */
export function pollValues(poll: DevicePoll): { values: Record<string, PolledValue>; ok: boolean } {
  const values: Record<string, PolledValue> = {};
  let ok = true;
  poll.reads.forEach((read, i) => {
    const r = poll.results[i]!;
    for (const v of read.values) {
      const reg = v.register;
      const unit = reg.unit;
      if (!r.ok) {
        ok = false;
        values[reg.name] = unit === undefined ? { value: null, quality: 'bad', error: r.reason } : { value: null, unit, quality: 'bad', error: r.reason };
        continue;
      }
      const raw = r.bits ? r.bits[v.offset] === 1 : decodeRegisters(r.registers!.subarray(v.offset, v.offset + v.width), reg.type, reg.order);
      const value = scaleValue(raw, reg.scale, reg.offset);
      values[reg.name] = unit === undefined ? { value, quality: 'good' } : { value, unit, quality: 'good' };
    }
  });
  return { values, ok };
}

/**
 * report = "on_change": remembers the values last journaled for one device and says whether a
 * new poll differs from them: a value moved by at least its deadband (any change without one),
 * a quality or error changed, or a value appeared.
 */
export class ChangeFilter {
  private last: Record<string, PolledValue> | null = null;

  constructor(private readonly deadbands: ReadonlyMap<string, number>) {}

  changed(values: Record<string, PolledValue>): boolean {
    const last = this.last;
    if (last === null) return true;
    for (const [name, v] of Object.entries(values)) {
      const p = last[name];
      if (!p || p.quality !== v.quality) return true;
      if (v.quality === 'bad') {
        if (p.quality === 'bad' && p.error !== v.error) return true;
        continue;
      }
      if (typeof v.value === 'number' && typeof p.value === 'number') {
        const band = this.deadbands.get(name);
        const d = Math.abs(v.value - p.value);
        if (band === undefined ? d !== 0 : d >= band && d > 0) return true;
      } else if (v.value !== p.value) return true;
    }
    return false;
  }

  /** The values were journaled: later polls compare against them. */
  remember(values: Record<string, PolledValue>): void {
    this.last = values;
  }
}
