import { readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { checkJournalFile } from '../journal/check.js';
import { salvageInto } from '../journal/salvage.js';
import { SqliteJournal } from '../journal/sqlite-journal.js';
import { systemClock } from '../util/clock.js';
import { ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadOrReport } from './load-or-report.js';

/** `sluice journal check|salvage`: offline tools for the journal file. */
export async function journalCommand(sub: string | undefined, args: string[], configPath: string | undefined, io: CliIo): Promise<void> {
  if (sub !== 'check' && sub !== 'salvage') {
    io.stderr.write('sluice journal: use "check -c FILE [JOURNAL]" or "salvage -c FILE SET_ASIDE_FILE"\n');
    return io.exit(ExitCode.usage);
  }
  if (!configPath) {
    io.stderr.write(`sluice journal ${sub}: -c FILE is required\n`);
    return io.exit(ExitCode.usage);
  }
  const config = loadOrReport(configPath, io);
  if (!config) return io.exit(ExitCode.config);
  if (sub === 'check') {
    const path = args[0] ?? config.journal.path;
    const r = checkJournalFile(path);
    io.stdout.write(`${path}: ${r.ok ? 'ok' : 'DAMAGED'}; ${r.rows} rows, ${r.records} readable records${r.firstSeq !== null ? `, seqs ${r.firstSeq}-${r.lastSeq}` : ''}; cursors ${JSON.stringify(r.cursors)}\n`);
    for (const p of r.problems) io.stdout.write(`  problem: ${p}\n`);
    return io.exit(r.ok ? ExitCode.ok : ExitCode.failure);
  }
  const damaged = args[0];
  if (!damaged) {
    io.stderr.write('sluice journal salvage: name the set-aside file to recover from\n');
    return io.exit(ExitCode.usage);
  }
  const holder = processHolding(config.journal.path);
  if (holder !== null) {
    io.stderr.write(`sluice journal salvage: the journal is open in process ${holder}; stop sluice first\n`);
    return io.exit(ExitCode.failure);
  }
  const journal = new SqliteJournal({ ...config.journal, logger: pino({ level: 'silent' }), clock: systemClock, maintenanceIntervalMs: 3_600_000 });
  await journal.start();
  try {
    const r = await salvageInto(damaged, journal);
    io.stdout.write(`salvaged ${r.recovered} records from ${damaged} into ${config.journal.path} (${r.rowsRead} rows read, ${r.rowsLost} damaged rows lost, ${r.alreadyShipped} records already shipped)\n`);
    for (const p of r.problems) io.stdout.write(`  problem: ${p}\n`);
  } finally {
    await journal.stop();
  }
  return io.exit(ExitCode.ok);
}

/** The pid of another process with the file open (Linux /proc), or null. */
function processHolding(path: string): number | null {
  const target = resolve(path);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return Number(pid);
      } catch {
        /* gone */
      }
    }
  }
  return null;
}
