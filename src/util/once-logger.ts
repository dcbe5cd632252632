import type { Logger } from 'pino';

/**
 * Logs the first occurrence of each kind of problem, then only counts it, so a bad sensor
 * cannot flood the log. Remembers a bounded number of kinds.
 */
export class OnceLogger {
  private readonly seen = new Set<string>();
  constructor(
    private readonly logger: Logger,
    private readonly limit = 1000,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    if (this.seen.has(kind)) return;
    if (this.seen.size >= this.limit) return;
    this.seen.add(kind);
    this.logger.warn(fields, `${message} (logged once; later ones are only counted)`);
  }
}
