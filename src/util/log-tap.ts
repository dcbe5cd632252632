/** The last problem a component logged: what `sluice status` shows as "last error". */
export interface LoggedProblem {
  /** ISO time of the log entry. */
  time: string;
  level: 'warn' | 'error' | 'fatal';
  message: string;
  /** The entry's `err` field, if any (an error message; secrets are never logged). */
  err: string | null;
}

const PROBLEM = /"level":"(warn|error|fatal)"/;

/**
 * Watches the log stream and remembers the last warning or error of each component. Components
 * already log every state change once (connected, lost, recovered), so the log is the one place
 * that knows the last error of every part without each part keeping its own copy.
 * Only warn and above are parsed; they are rare by design.
 */
export class LogTap {
  private readonly last = new Map<string, LoggedProblem>();

  observe(line: string): void {
    const m = PROBLEM.exec(line);
    if (!m) return;
    let entry: { component?: unknown; time?: unknown; msg?: unknown; err?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    const component = typeof entry.component === 'string' ? entry.component : 'gateway';
    const err = entry.err === undefined ? null : typeof entry.err === 'string' ? entry.err : typeof (entry.err as { message?: unknown })?.message === 'string' ? (entry.err as { message: string }).message : JSON.stringify(entry.err);
    this.last.set(component, { time: String(entry.time ?? new Date().toISOString()), level: m[1] as LoggedProblem['level'], message: String(entry.msg ?? ''), err });
    if (this.last.size > 1000) this.last.delete(this.last.keys().next().value!);
  }

  /** The last warning or error logged by `component` (e.g. "sink:cloud", "mqtt:local"), or null. */
  lastProblem(component: string): LoggedProblem | null {
    return this.last.get(component) ?? null;
  }

  all(): Record<string, LoggedProblem> {
    return Object.fromEntries(this.last);
  }
}
