import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { ExitCode } from '../../src/cli/exit-codes.js';
import type { CliIo, UncaughtKind } from '../../src/cli/io.js';
import { lastResortHandler } from '../../src/cli/last-resort.js';
import { runDaemon } from '../../src/cli/run.js';
import { Metrics } from '../../src/metrics.js';
import { repoRoot } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
after(() => tmp.cleanup());

function sink(): { stream: Writable; text: () => string } {
  let out = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }), text: () => out };
}

test('the last-resort handler logs an uncaught error once with its reason and origin (no stack trace), counts every one, and stops only for an exception', () => {
  const log = sink();
  const metrics = new Metrics();
  const failed: string[] = [];
  const handle = lastResortHandler({ logger: pino(log.stream), metrics, fail: (r) => failed.push(r) });
  handle(new TypeError('bad input'), 'unhandledRejection');
  handle(new TypeError('bad input'), 'unhandledRejection');
  assert.equal(metrics.get('sluice_uncaught_errors_total', { kind: 'unhandledRejection' }), 2);
  assert.deepEqual(failed, [], 'a rejection: carry on');
  handle(new RangeError('x'.repeat(70000)), 'uncaughtException');
  assert.equal(failed.length, 1, 'an exception: clean stop');
  const lines = log.text().trim().split('\n').map((l) => JSON.parse(l) as { reason: string; where?: string; stack?: string; kind: string });
  assert.equal(lines.length, 2, 'the repeated rejection is logged once');
  assert.equal(lines[0]!.reason, 'TypeError: bad input');
  assert.match(lines[0]!.where!, /^at .*last-resort\.test\.js/);
  assert.ok(lines[1]!.reason.length < 600, 'a 70,000-character message is cut');
  assert.ok(!log.text().includes('\\n    at '), 'no stack trace');
});

test('sluice run installs it: a rejection is counted and the daemon carries on; an exception stops it cleanly with exit code 70 and nothing on stderr', async () => {
  const configPath = join(tmp.path, 'run.toml');
  writeFileSync(configPath, `[journal]\npath = ${JSON.stringify(join(tmp.path, 'run.db'))}\n[http]\nenabled = false\n[health]\nenabled = false\n[gateway]\nshutdown_timeout_ms = 2000\n[log]\nformat = "json"\n`);
  const stdout = sink();
  const stderr = sink();
  const installed: { handler: ((err: unknown, kind: UncaughtKind) => void) | null } = { handler: null };
  let code: number | null = null;
  const io: CliIo = { stdout: stdout.stream, stderr: stderr.stream, env: {}, exit: (c) => void (code = c), onSignal: () => () => {}, onUncaught: (h) => ((installed.handler = h), () => (installed.handler = null)) };
  const running = runDaemon(configPath, {}, io);
  await waitFor(() => stdout.text().includes('sluice ready'), { what: 'ready' });
  const handler = installed.handler;
  assert.ok(handler, 'a last-resort handler is installed');
  handler(new Error('nobody awaited me'), 'unhandledRejection');
  assert.equal(code, null, 'still running after a rejection');
  handler(new TypeError('The "chunk" argument must be of type string'), 'uncaughtException');
  await running;
  assert.equal(code, ExitCode.internal);
  assert.equal(stderr.text(), '');
  assert.match(stdout.text(), /"msg":"stopped"/);
  assert.match(stdout.text(), /sluice_uncaught_errors_total\{kind=\\"uncaughtException\\"\}":1/);
  assert.equal(installed.handler, null, 'removed at exit');
});

test('the process-level handler (processIo) replaces Node\'s stack trace on stderr', () => {
  const script = `
import { processIo } from ${JSON.stringify(join(repoRoot, 'dist/src/cli/io.js'))};
processIo.onUncaught((err, kind) => { console.log(kind + ': ' + err.message); process.exit(70); });
setTimeout(() => { throw new TypeError('from a timer'); }, 1);
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 70);
  assert.equal(r.stdout.trim(), 'uncaughtException: from a timer');
  assert.equal(r.stderr, '');
});
