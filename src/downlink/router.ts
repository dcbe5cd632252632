import type { MqttPublisher } from './mqtt-publisher.js';
import type { SerialSink } from './serial-writer.js';
import { fillTopic, TargetPattern } from './target-pattern.js';

/** Where a route sends: an MQTT topic template on a publisher, or a serial port. */
export type RouteDestination =
  | { kind: 'mqtt'; publisher: MqttPublisher; topic: string; qos: 1 | 2; retain: boolean }
  | { kind: 'serial'; port: SerialSink; name: string; lineEnding: 'none' | 'lf' | 'crlf' };

/** Where one command goes: its destination, with the MQTT topic filled in. */
export type Resolved = { kind: 'mqtt'; publisher: MqttPublisher; topic: string; qos: 1 | 2; retain: boolean } | { kind: 'serial'; port: SerialSink; name: string; suffix: Buffer };

const ENDINGS = { none: Buffer.alloc(0), lf: Buffer.from('\n'), crlf: Buffer.from('\r\n') };

/** The downlink's routes: the first whose target pattern matches takes the command. */
export class CommandRouter {
  private readonly routes: { pattern: TargetPattern; dest: RouteDestination }[];

  constructor(routes: { target: string; dest: RouteDestination }[]) {
    this.routes = routes.map((r) => ({ pattern: new TargetPattern(r.target), dest: r.dest }));
  }

  /** The destination of `target`, or a rejection reason ("no_route", "invalid_topic"). */
  resolve(target: string): Resolved | { reject: string; detail: string } {
    for (const { pattern, dest } of this.routes) {
      const values = pattern.match(target);
      if (!values) continue;
      if (dest.kind === 'serial') return { kind: 'serial', port: dest.port, name: dest.name, suffix: ENDINGS[dest.lineEnding] };
      const topic = fillTopic(dest.topic, values);
      if (topic === null) return { reject: 'invalid_topic', detail: `target "${target}" makes no valid MQTT topic from "${dest.topic}"` };
      return { kind: 'mqtt', publisher: dest.publisher, topic, qos: dest.qos, retain: dest.retain };
    }
    return { reject: 'no_route', detail: `no [[downlink.route]] matches target "${target}"` };
  }
}
