/**
 * A long-lived part of the gateway. Constructors do no I/O; `start` acquires resources,
 * `stop` releases them and may be called more than once.
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
