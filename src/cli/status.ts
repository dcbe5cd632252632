import { existsSync, readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import type { StatusReport } from '../ops/status.js';
import { ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

/** Where `sluice status` looks for the config when no -c is given. */
export const DEFAULT_CONFIG_PATH = '/etc/sluice/sluice.toml';
const DEFAULT_PORT = 9793;

/**
 * `sluice status`: asks the running daemon (its /status endpoint) and prints a summary, or the
 * report as JSON. Exit 0 ready, 5 degraded or not ready, 4 no daemon answers.
 */
export async function statusCommand(opts: { config?: string; url?: string; json?: boolean }, io: CliIo): Promise<void> {
  let base: string;
  let note = '';
  try {
    base = opts.url ?? endpointFromConfig(opts.config);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (!opts.config && (code === 'EACCES' || code === 'EPERM')) {
      // /etc/sluice/sluice.toml is readable by root and the sluice group only: try the default port.
      base = `http://127.0.0.1:${DEFAULT_PORT}`;
      note = `(${DEFAULT_CONFIG_PATH} is not readable by this user, so the default endpoint was tried; if http.port was changed, use sudo or --url)\n`;
    } else {
      io.stderr.write(`sluice status: ${(err as Error).message}\n`);
      return io.exit(ExitCode.notRunning);
    }
  }
  let report: StatusReport;
  try {
    const res = await fetch(new URL('/status', base), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    report = (await res.json()) as StatusReport;
  } catch (err) {
    const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    io.stderr.write(`sluice status: no sluice daemon answers at ${base} (${why}).\n${note}Is it running? Try: systemctl status sluice; journalctl -u sluice -n 50\n`);
    return io.exit(ExitCode.notRunning);
  }
  io.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
  return io.exit(report.state === 'ready' ? ExitCode.ok : ExitCode.degraded);
}

/** The daemon's endpoint from the config's [http] table (only that table is read: secrets need not resolve). */
function endpointFromConfig(path: string | undefined): string {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : null);
  let http: { enabled?: unknown; host?: unknown; port?: unknown } = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw Object.assign(new Error(`cannot read ${file}: ${code ?? String(err)} (give the endpoint with --url)`), { code });
    }
    try {
      http = ((parseToml(text) as { http?: typeof http }).http ?? {}) as typeof http;
    } catch (err) {
      throw new Error(`${file} is not valid TOML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (http.enabled === false) throw new Error(`the status endpoint is disabled in ${file} (http.enabled = false); enable it to use sluice status`);
  const host = typeof http.host === 'string' ? http.host : '127.0.0.1';
  const port = typeof http.port === 'number' ? http.port : DEFAULT_PORT;
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

export function duration(s: number | null): string {
  if (s === null) return '—';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function bytes(b: number | null): string {
  if (b === null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < units.length - 1) {
    b /= 1000;
    i++;
  }
  return `${i === 0 ? b : b.toFixed(1)} ${units[i]}`;
}

const rate = (r: number | null): string => (r === null ? '—' : `${r.toFixed(1)}/s`);
const clock = (iso: string): string => iso.slice(11, 19);

/** A compact, readable summary of a status report. */
export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  const state = r.state === 'ready' ? 'ready' : `${r.state.replace('_', ' ').toUpperCase()}: ${r.reasons.join('; ')}`;
  lines.push(`sluice ${r.version} on ${r.gateway}: ${state}  (pid ${r.pid}, up ${duration(r.uptime_s)}, log level ${r.log_level})`);
  const lr = r.config.last_reload;
  lines.push(`config   ${r.config.path ?? '—'}${lr ? `; last reload ${clock(lr.time)} ${lr.ok ? 'applied' : `REFUSED: ${lr.errors.join('; ')}`}` : ''}`);
  const j = r.journal;
  lines.push(`journal  backlog ${n(j.backlog_records)} records, ${bytes(j.used_bytes)}, oldest ${j.oldest_age_s === null ? '—' : `${duration(j.oldest_age_s)} ago`}  (${j.durability}; ${n(j.commits)} commits, ${bytes(j.bytes_written)} written)`);
  lines.push('sources');
  if (r.sources.length === 0) lines.push('  (none)');
  for (const s of r.sources) {
    lines.push(`  ${s.name.padEnd(16)} ${s.state.padEnd(11)} ${n(s.received)} received  ${rate(s.rate_per_s)}  ${n(s.rejected)} rejected  ${n(s.dropped)} dropped`);
    if (s.last_error) lines.push(`  ${''.padEnd(16)} last problem ${clock(s.last_error.time)}: ${s.last_error.message}${s.last_error.err ? ` (${s.last_error.err})` : ''}`);
  }
  lines.push('sinks');
  if (r.sinks.length === 0) lines.push('  (none)');
  for (const s of r.sinks) {
    const since = s.failing_since ? ` since ${clock(s.failing_since)}` : '';
    lines.push(`  ${s.name.padEnd(16)} ${(s.state.replace('_', ' ') + since).padEnd(11)} lag ${n(s.lag_records)}  ETA ${duration(s.eta_s)}  shipped ${n(s.shipped)}  ${rate(s.rate_per_s)}  errors ${n(s.errors)}  last success ${s.last_success ? clock(s.last_success) : 'never'}`);
    if (s.last_error) lines.push(`  ${''.padEnd(16)} last problem ${clock(s.last_error.time)}: ${s.last_error.message}${s.last_error.err ? ` (${s.last_error.err})` : ''}`);
  }
  if (r.downlinks?.length) {
    lines.push('downlink');
    for (const d of r.downlinks) {
      lines.push(`  ${d.name.padEnd(16)} consumer ${d.consumer.padEnd(10)} waiting ${n(d.waiting)} (${n(d.in_flight)} in flight), oldest ${d.oldest_waiting_age_s === null ? '—' : `${duration(d.oldest_waiting_age_s)} ago`}  received ${n(d.received)}  delivered ${n(d.delivered)}  expired ${n(d.expired)}  rejected ${n(d.rejected)}  failed ${n(d.failed)}  duplicates ${n(d.duplicates)}`);
      lines.push(`  ${''.padEnd(16)} ${d.destinations.map((x) => `${x.name} ${x.state}`).join(', ')}${d.consumer_error ? `; consumer problem: ${d.consumer_error}` : ''}`);
    }
  }
  const c = r.clock;
  if (c) lines.push(`clock    ${c.state === 'synced' ? 'synced' : `${c.state.toUpperCase()} for ${duration(c.unsynced_for_s)}`} (${c.via})${c.jumps ? `; ${n(c.jumps)} jumps, last ${c.last_jump_ms} ms` : ''}${c.suspended_ms ? `; suspended ${duration(Math.round(c.suspended_ms / 1000))}` : ''}${c.alarm ? '  ALARM: capture times are guesses' : ''}`);
  for (const st of r.stalls ?? []) lines.push(`STALLED  ${st.component}: no progress for ${duration(st.for_s)} (since ${clock(st.since)}): ${st.reason}`);
  const gaps = Object.entries(r.gaps);
  lines.push(`gaps     ${gaps.length ? gaps.map(([k, v]) => `${k} ${n(v)}`).join(', ') : 'none'}`);
  return `${lines.join('\n')}\n`;
}
