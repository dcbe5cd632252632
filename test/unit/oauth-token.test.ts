import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { jwtExpiry, TokenSource } from '../../src/sinks/oauth-token.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const jwt = (claims: Record<string, unknown>): string => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

test('jwtExpiry reads "exp" (seconds) of a JWT; anything else has none', () => {
  assert.equal(jwtExpiry(jwt({ sub: 'a', exp: 1700000000 })), 1700000000000);
  assert.equal(jwtExpiry('opaque-token'), null);
  assert.equal(jwtExpiry(jwt({ sub: 'a' })), null);
});

test('a token from a file is reused until token_refresh_s, then read again', async () => {
  const file = join(tmp.path, 'token');
  let now = 1_000_000;
  const clock = { now: () => now };
  const src = new TokenSource({ file }, 300_000, clock as never);
  writeFileSync(file, 'first\n');
  assert.equal(await src.get(), 'first');
  writeFileSync(file, 'second\n');
  now += 200_000;
  assert.equal(await src.get(), 'first', 'still fresh');
  now += 200_000;
  assert.equal(await src.get(), 'second', 'refreshed after the interval');
});

test('a JWT is fetched again a minute before it expires, even within token_refresh_s', async () => {
  let now = Date.UTC(2026, 0, 1);
  const clock = { now: () => now };
  const exp = Math.floor(now / 1000) + 120;
  const script = join(tmp.path, 'tok.sh');
  writeFileSync(script, `echo "${jwt({ sub: 'x', exp })}"\n`);
  const src = new TokenSource({ command: `sh ${script}` }, 3_600_000, clock as never);
  const a = await src.get();
  // The command would now print another token: a fetch would show.
  const b = jwt({ sub: 'x', exp: exp + 3600 });
  writeFileSync(script, `echo "${b}"\n`);
  now += 30_000;
  assert.equal(await src.get(), a, 'not fetched again 90 s before expiry');
  now += 40_000; // 50 s before exp
  assert.equal(await src.get(), b, 'fetched again within the last minute');
});

test('a failing token command is a retriable error that does not include its stderr', async () => {
  const src = new TokenSource({ command: 'echo secret-in-stderr >&2; exit 3' }, 1000, { now: () => 0 } as never);
  await assert.rejects(src.get(), (err: Error & { retriable?: boolean }) => {
    assert.equal(err.retriable, true);
    assert.doesNotMatch(err.message, /secret-in-stderr/);
    return true;
  });
});
