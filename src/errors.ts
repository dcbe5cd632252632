/**
 * Every error sluice raises on purpose carries a stable code (for logs, metrics and tests),
 * whether retrying can help, and the underlying cause.
 */
export type ErrorCode =
  | 'SLUICE_CONFIG_INVALID'
  | 'SLUICE_CONFIG_UNREADABLE'
  | 'SLUICE_JOURNAL_OPEN'
  | 'SLUICE_JOURNAL_CORRUPT'
  | 'SLUICE_JOURNAL_WRITE'
  | 'SLUICE_JOURNAL_CLOSED'
  | 'SLUICE_JOURNAL_FULL'
  | 'SLUICE_JOURNAL_NOT_OURS'
  | 'SLUICE_KAFKA_TIMEOUT'
  | 'SLUICE_KAFKA_AUTH'
  | 'SLUICE_KAFKA_REJECTED'
  | 'SLUICE_KAFKA_CURSOR'
  | 'SLUICE_KAFKA_PARTIAL'
  | 'SLUICE_KAFKA_FENCED'
  | 'SLUICE_MQTT_INTERNALS';

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

/** Programming errors (TypeError, RangeError…) are never retried: retrying cannot fix a bug. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof SluiceError) return err.retriable;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError) {
    return false;
  }
  return true;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
