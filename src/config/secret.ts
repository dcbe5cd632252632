import { inspect } from 'node:util';

/**
 * A password or key. It prints as "[redacted]" through every path a value can take into a log
 * line (toString, JSON, util.inspect), so a secret cannot leak by accident.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The secret itself; call only where it is handed to a client library. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}
