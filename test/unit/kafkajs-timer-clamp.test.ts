import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { TIMER_CLAMP_FOR_KAFKAJS } from '../../src/sinks/kafkajs-timer-clamp.js';
import { repoRoot } from '../helpers/daemon.js';

const require = createRequire(import.meta.url);

/**
 * In a fresh process: kafkajs's request queue method, with or without sluice's kafkajs module
 * loaded first, on a queue that nothing throttles (the case that warned) and one throttled for
 * 60 ms with a request pending. Reports when each check ran and what went to stderr.
 */
function probe(throughSluice: boolean): { idleCheckedAfterMs: number; throttledCheckedAfterMs: number; stderr: string } {
  const script = `
    ${throughSluice ? `await import(${JSON.stringify(join(repoRoot, 'dist/src/sinks/kafkajs.js'))});` : ''}
    const { createRequire } = await import('node:module');
    const RequestQueue = createRequire(${JSON.stringify(join(repoRoot, 'dist/src/sinks/kafkajs.js'))})('kafkajs/src/network/requestQueue/index.js');
    const run = (throttledUntil, pending) => new Promise((resolve) => {
      const t0 = Date.now();
      const q = { throttledUntil, throttleCheckTimeoutId: null, pending, checkPendingRequests: () => resolve(Date.now() - t0) };
      RequestQueue.prototype.scheduleCheckPendingRequests.call(q);
    });
    const idle = await run(-1, []);
    const throttled = await run(Date.now() + 60, [{}]);
    process.stdout.write(JSON.stringify({ idleCheckedAfterMs: idle, throttledCheckedAfterMs: throttled }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(r.stdout) as { idleCheckedAfterMs: number; throttledCheckedAfterMs: number }), stderr: r.stderr };
}

test('kafkajs is the version the clamp was written for', () => {
  assert.equal((require('kafkajs/package.json') as { version: string }).version, TIMER_CLAMP_FOR_KAFKAJS, 'kafkajs changed: re-check requestQueue.scheduleCheckPendingRequests');
});

test("through sluice's kafkajs module the request queue schedules as before, without a TimeoutNegativeWarning", () => {
  const r = probe(true);
  assert.equal(r.stderr, '');
  assert.ok(r.idleCheckedAfterMs < 1000, `idle check ran after ${r.idleCheckedAfterMs} ms`);
  assert.ok(r.throttledCheckedAfterMs >= 55, `throttled check ran after ${r.throttledCheckedAfterMs} ms, before the throttle ended`);
  const plain = probe(false);
  // What the clamp is for: Node 24 warns about kafkajs's own scheduling (Node 22 did not).
  if (Number(process.versions.node.split('.')[0]) >= 24) assert.match(plain.stderr, /TimeoutNegativeWarning/);
  assert.ok(plain.throttledCheckedAfterMs >= 55);
});
