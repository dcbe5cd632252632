const LEVEL_WIDTH = 5;
const SKIP = new Set(['level', 'time', 'msg', 'gateway', 'component', 'pid', 'hostname']);

/**
 * One pino JSON line as one readable line, for a person at a terminal:
 * `04:50:01.123 WARN  sink:cloud  cannot ship to Kafka … err="connect ECONNREFUSED"`.
 * Anything that is not JSON passes through unchanged.
 */
export function prettyLine(line: string): string {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof e.time === 'string' ? e.time.slice(11, 23) : '';
  const level = String(e.level ?? '').toUpperCase().padEnd(LEVEL_WIDTH);
  const component = typeof e.component === 'string' ? ` ${e.component}` : '';
  const fields = Object.entries(e)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/[\s"]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level}${component}  ${String(e.msg ?? '')}${fields ? `  ${fields}` : ''}\n`;
}
