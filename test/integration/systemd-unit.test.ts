import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { repoRoot } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';

const unitPath = join(repoRoot, 'systemd/sluice.service');

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Directives of the [Service] section, each with all its values. */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test('systemd-analyze verify accepts the unit without a warning', async () => {
  const tmp = tempDir();
  try {
    copyFileSync(unitPath, join(tmp.path, 'sluice.service'));
    const r = await run('systemd-analyze', ['verify', './sluice.service'], tmp.path);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), '');
  } finally {
    tmp.cleanup();
  }
});

test('systemd-analyze security --offline=true rates the unit at 2.5 or lower', async (t) => {
  const tmp = tempDir();
  try {
    copyFileSync(unitPath, join(tmp.path, 'sluice.service'));
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', './sluice.service'], tmp.path);
    assert.equal(r.stderr.trim(), '', 'no warnings while parsing');
    const m = /Overall exposure level for sluice\.service: ([\d.]+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    t.diagnostic(`exposure ${m[1]}`);
    assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]}:\n${r.stdout}`);
  } finally {
    tmp.cleanup();
  }
});

test('the unit has what the README promises: notify + watchdog, restart, own user, state and config directories, stop timeout past the shutdown deadline, memory caps, serial devices only', () => {
  const d = directives(readFileSync(unitPath, 'utf8'));
  const one = (k: string): string | undefined => d.get(k)?.[0];
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'all');
  assert.ok(Number(one('WatchdogSec')) > 0);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('User'), 'sluice');
  assert.equal(one('SupplementaryGroups'), 'dialout');
  assert.equal(one('StateDirectory'), 'sluice');
  assert.equal(one('ConfigurationDirectory'), 'sluice');
  assert.match(one('ExecStart') ?? '', / run -c \/etc\/sluice\/sluice\.toml$/);
  // Nothing outside systemd: /bin/kill comes from procps, which minimal systems lack.
  assert.equal(one('ExecReload'), '+/bin/systemctl kill --kill-whom=main --signal=SIGHUP %n');
  const defaults = parseConfig('', { hostname: 'x' });
  assert.ok(Number(one('TimeoutStopSec')) * 1000 > defaults.gateway.shutdownTimeoutMs + 5000, 'TimeoutStopSec longer than the shutdown deadline');
  assert.match(one('MemoryMax') ?? '', /^\d+M$/);
  const heapMb = Number(/--max-old-space-size=(\d+)/.exec((d.get('Environment') ?? []).join(' '))?.[1]);
  assert.ok(heapMb > 0 && heapMb < parseInt(one('MemoryMax')!, 10), 'V8 heap cap below MemoryMax');
  for (const k of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups']) assert.equal(one(k), 'yes', k);
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX');
  assert.equal(one('DevicePolicy'), 'closed');
  assert.ok((d.get('DeviceAllow') ?? []).includes('char-ttyUSB rw'));
  // The journal's default path lies in StateDirectory.
  assert.equal(defaults.journal.path, '/var/lib/sluice/journal.db');
});
