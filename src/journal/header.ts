import type Database from 'better-sqlite3';

/** Marks the file as a sluice journal ("SLCE"), so a stranger's database is refused, not reused. */
export const APPLICATION_ID = 0x534c4345;
/** The schema this sluice writes; versions 1 and 2 are migrated in place. */
export const SCHEMA_VERSION = 3;
const KNOWN_VERSIONS = new Set([1, 2, SCHEMA_VERSION]);
/** Tables every sluice journal has had since version 1: their presence makes a file ours. */
const SLUICE_TABLES = ['batches', 'cursors', 'meta'] as const;
const BATCH_COLUMNS = ['first_seq', 'last_seq', 'count', 'bytes', 'min_time', 'max_time', 'data'] as const;

/**
 * What a database file's header and tables say it is:
 * - `empty`: no tables yet, a new journal;
 * - `journal`: a sluice journal of a known schema `version`;
 * - `damaged`: sluice's tables, but the header (application_id or user_version, bytes 68 and 60)
 *   is wrong — ours, damaged (or written by a newer sluice): to be set aside, not refused forever;
 * - `foreign`: someone else's database: refused, it may belong to another program.
 */
export type HeaderVerdict =
  | { kind: 'empty' }
  | { kind: 'journal'; version: number }
  | { kind: 'damaged'; problem: string }
  | { kind: 'foreign'; problem: string };

/** Reads the header fields and sqlite_master; throws only when SQLite cannot read them at all. */
export function inspectHeader(db: Database.Database): HeaderVerdict {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]));
  if (tables.size === 0) {
    // A brand-new file, or one whose header alone survived: either way nothing to keep.
    return { kind: 'empty' };
  }
  const ours = SLUICE_TABLES.every((t) => tables.has(t)) && hasBatchColumns(db);
  if (!ours) {
    const why = appId === APPLICATION_ID ? 'it carries sluice\'s application_id but lacks its tables' : `application_id ${hex(appId)}, no sluice tables`;
    return { kind: 'foreign', problem: `a SQLite database but not a sluice journal (${why})` };
  }
  const problems: string[] = [];
  if (appId !== APPLICATION_ID) problems.push(`application_id ${hex(appId)} (expected ${hex(APPLICATION_ID)})`);
  if (!KNOWN_VERSIONS.has(version)) problems.push(`schema version ${version} (this sluice knows ${[...KNOWN_VERSIONS].join(', ')}; a newer sluice's journal, or damaged)`);
  if (problems.length) return { kind: 'damaged', problem: `sluice's tables but a damaged header: ${problems.join(', ')}` };
  return { kind: 'journal', version };
}

/** Tables merely named like ours are not enough to rename someone's file: the batches table must look like sluice's. */
function hasBatchColumns(db: Database.Database): boolean {
  try {
    const cols = new Set(db.prepare("SELECT name FROM pragma_table_info('batches')").pluck().all() as string[]);
    return BATCH_COLUMNS.every((c) => cols.has(c));
  } catch {
    return false;
  }
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
