import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import type { Clock } from '../util/clock.js';

/** Where an OAUTHBEARER token comes from: a file kept fresh by something else, or a command printing one. */
export type TokenOrigin = { file: string } | { command: string };

/** A JWT is fetched again this long before its "exp". */
const EXPIRY_MARGIN_MS = 60_000;
const COMMAND_TIMEOUT_MS = 30_000;

/**
 * Hands out the current OAUTHBEARER token, fetching a new one when the cached one is older than
 * `refreshMs` or (for a JWT) within a minute of its expiry. kafkajs asks on every connection and
 * re-authentication, so a long-lived producer keeps getting fresh tokens. The token is never logged.
 */
export class TokenSource {
  private token: string | null = null;
  private fetchedAt = 0;
  private expiresAt = Infinity;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly origin: TokenOrigin,
    private readonly refreshMs: number,
    private readonly clock: Clock,
  ) {}

  get(): Promise<string> {
    const now = this.clock.now();
    if (this.token !== null && now - this.fetchedAt < this.refreshMs && now < this.expiresAt - EXPIRY_MARGIN_MS) return Promise.resolve(this.token);
    this.pending ??= this.fetch().finally(() => (this.pending = null));
    return this.pending;
  }

  private async fetch(): Promise<string> {
    const raw = 'file' in this.origin ? await readToken(this.origin.file) : await runCommand(this.origin.command);
    const token = raw.trim();
    if (!token) throw new SluiceError('SLUICE_KAFKA_AUTH', `OAUTHBEARER token ${'file' in this.origin ? `file ${this.origin.file}` : 'command'} gave an empty token`, { retriable: true });
    this.token = token;
    this.fetchedAt = this.clock.now();
    this.expiresAt = jwtExpiry(token) ?? Infinity;
    return token;
  }
}

async function readToken(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_KAFKA_AUTH', `cannot read OAUTHBEARER token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { retriable: true, cause: err });
  }
}

function runCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout) => {
      // stderr is left out on purpose: a failing token tool may print secrets there.
      if (err) reject(new SluiceError('SLUICE_KAFKA_AUTH', `OAUTHBEARER token command failed (exit ${String((err as { code?: unknown }).code ?? err.message)})`, { retriable: true }));
      else resolve(stdout);
    });
  });
}

/** The "exp" of a JWT in ms since the epoch, or null if the token is not a JWT with one. */
export function jwtExpiry(token: string): number | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}
