import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { unitNodeOptions } from '../helpers/unit-env.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('bench smoke: every scenario produces figures (values are not judged here)', async () => {
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [join(repoRoot, 'dist/scripts/bench/main.js'), '--smoke', '--out', tmp.path], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', resolve);
  });
  assert.equal(code, 0);
  const json = readdirSync(tmp.path).find((f) => f.endsWith('.json'));
  assert.ok(json, 'JSON figures written');
  const result = JSON.parse(readFileSync(join(tmp.path, json), 'utf8')) as { rows: { scenario: string; figure: string; unit: string; sluice: { median: number }; baseline?: { value: { median: number } } }[] };
  const scenarios = new Set(result.rows.map((r) => r.scenario));
  assert.deepEqual([...scenarios].sort(), ['bridge', 'cpu', 'drain', 'flash writes', 'ingest', 'live end-to-end', 'memory', 'modbus', 'restart']);
  for (const r of result.rows) {
    assert.ok(Number.isFinite(r.sluice.median), `${r.scenario} / ${r.figure}: no figure`);
    if (r.baseline) assert.ok(Number.isFinite(r.baseline.value.median), `${r.scenario} / ${r.figure}: no baseline figure`);
  }
  const md = readFileSync(join(tmp.path, 'BENCHMARKS.md'), 'utf8');
  assert.match(md, /\| ingest \| durability power/);
  assert.match(md, new RegExp(`NODE_OPTIONS=${unitNodeOptions()}`), 'sluice ran with the unit\'s NODE_OPTIONS');
  assert.match(md, /\| cpu \| through the bridge/);
  if (cpus().length >= 2) assert.ok(result.rows.some((r) => r.figure.startsWith('Pi-class') && r.unit === 'µs/record'), 'Pi-class drain row');
});
