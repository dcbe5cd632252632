import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { SluiceError } from '../errors.js';
import { APPLICATION_ID } from './header.js';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\u0000', 'latin1');

/** What the file at journal.path is, before SQLite is let near it. */
export type PathVerdict =
  /** Nothing there (or an empty file): a new journal may be created. */
  | { kind: 'new' }
  /** A SQLite database: its tables decide whether it is ours. `markedOurs`: its header or a mark file says it is sluice's. */
  | { kind: 'sqlite'; markedOurs: boolean }
  /** No SQLite header, but sluice's mark file sits beside it: a journal of ours, damaged. */
  | { kind: 'damaged_ours' };

/**
 * sluice sets aside only a file it can show is (or was) its own journal. Anything else at
 * journal.path — a directory, a device, a file with no SQLite header and no mark of sluice's — is
 * refused here, before SQLite opens (and so could create or change) anything.
 */
export function inspectJournalPath(path: string, markPath: string): PathVerdict {
  if (!existsSync(path)) return { kind: 'new' };
  const st = statSync(path);
  const refuse = (why: string): never => {
    throw new SluiceError('SLUICE_JOURNAL_NOT_OURS', `journal.path: ${path} ${why}; refusing to touch it`);
  };
  if (st.isDirectory()) refuse('is a directory, not a sluice journal');
  if (!st.isFile()) refuse('is not a regular file (a device, pipe or socket), not a sluice journal');
  const markedByFile = existsSync(markPath);
  if (st.size === 0) return { kind: 'new' };
  const head = Buffer.alloc(100);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SluiceError('SLUICE_JOURNAL_OPEN', `journal.path: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const isSqlite = n >= SQLITE_MAGIC.length && head.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC);
  if (isSqlite) return { kind: 'sqlite', markedOurs: markedByFile || (n >= 72 && head.readUInt32BE(68) === APPLICATION_ID >>> 0) };
  if (markedByFile) return { kind: 'damaged_ours' };
  return refuse('is not a sluice journal (no SQLite header)');
}
