import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ExitCode } from '../../src/cli/exit-codes.js';
import type { CliIo } from '../../src/cli/io.js';
import { loadOrReport } from '../../src/cli/load-or-report.js';
import type { Config } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { Daemon, repoRoot, runCli } from '../helpers/daemon.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

/*
 * Issue 12's rule, "what check-config accepts, run can start", as a property: mutations of
 * config.example.toml (values out of bounds, wrong types, odd and huge strings, unicode, missing
 * keys) are validated in-process by the code `check-config` runs, a sample through the real CLI;
 * a sample of the accepted ones is started with `sluice run` against a real Mosquitto and stopped
 * with SIGTERM. The seed is fixed (SLUICE_FUZZ_SEED overrides it) and printed on failure.
 */

const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20261201);
const CHECK_CASES = 400;
const CLI_CASES = 6;
const RUN_CASES = 20;

type Table = Record<string, unknown>;
const example = parseToml(readFileSync(join(repoRoot, 'config.example.toml'), 'utf8')) as Table;

/** Every key the schema knows, as a path into a config shaped like the example (list items at 0). */
function schemaPaths(): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (s: unknown, path: (string | number)[]): void => {
    const node = s as { type?: string; properties?: Record<string, unknown>; items?: { type?: string } };
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      const child = v as { type?: string; items?: { type?: string } };
      const p = [...path, k];
      out.push(p);
      if (child.type === 'object') walk(child, p);
      if (child.type === 'array' && child.items?.type === 'object') walk(child.items, [...p, 0]);
    }
  };
  walk(configJsonSchema(), []);
  return out;
}
const PATHS = schemaPaths();

/** Strings from the list of accepted-but-broken values, and other edges. */
const ODD_STRINGS = [
  '', ' ', '.', '..', '#', '+', 'a/#/b', '+x', 'a/b#', 'a\u0000b', 'has space', 'bang!', 'ünïcödé', '日本語', '🙂', '\u202e', 'x'.repeat(250), 'x'.repeat(70000),
  '[::1]:9092', '::1:9092', '127.0.0.1:0', '127.0.0.1:70000', 'host:9092', 'mqtt://exa mple.com', 'mqtt://127.0.0.1:0', 'mqtt://127.0.0.1:70000', 'mqtt://[::1]:1883', 'ws://h/p', 'http://h',
  '(?=\\n)', '\\b', '(', 'a*', '\\r?\\n|;', '/etc/hosts', '/nonexistent/file.pem', '/dev/null', '/tmp', '0.0.0.0', '::1', 'localhost', '1.2.3.999', 'iot.{site}', '{nope}', 'serial/{name}/#',
];
const EDGE_NUMBERS = [0, -1, 1, 9, 10, 99, 100, 1023, 1024, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 3e9, 2 ** 53, 1e300, 0.5, -0, Infinity, -Infinity, NaN];

const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EDGE_NUMBERS) },
  { weight: 3, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 4, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], {}, [1, 'a'], { x: 1 }, ['127.0.0.1:9092', '[::1]:9092']) },
);

type Mutation = { path: (string | number)[]; value: unknown } | { path: (string | number)[]; remove: true };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ path: fc.constantFrom(...PATHS), value }) },
  { weight: 1, arbitrary: fc.record({ path: fc.constantFrom(...PATHS), remove: fc.constant(true as const) }) },
);
const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });

function mutate(base: Table, ms: Mutation[]): Table {
  const out = structuredClone(base);
  for (const m of ms) {
    let node: Record<string | number, unknown> = out;
    for (let j = 0; j < m.path.length - 1; j++) {
      const key = m.path[j]!;
      const next = node[key];
      // A missing (or mutated-away) table on the way is made again, a list of one where the path indexes it.
      if (typeof next !== 'object' || next === null) node[key] = typeof m.path[j + 1] === 'number' ? [{}] : {};
      node = node[key] as Record<string | number, unknown>;
    }
    const last = m.path[m.path.length - 1]!;
    if ('remove' in m) delete node[last];
    else node[last] = m.value;
  }
  return out;
}

/** TOML text of a mutated config, or null where TOML cannot say it (e.g. a NUL-free key rule). */
function toToml(t: Table): string | null {
  try {
    return stringifyToml(t);
  } catch {
    return null;
  }
}

/** Keys `forRun` rewrites: a mutation there says nothing about the run. */
const REWRITTEN = /^(journal\.path|log\.|http\.(host|port)|mqtt\.0\.url|serial\.0\.path|sink\.0\.brokers)/;
const EDGES = new Set<unknown>([...EDGE_NUMBERS, ...ODD_STRINGS]);

/** How much of a case the run will see (values set outside the rewritten keys, edge values twice): those run first. */
function edgeScore(ms: Mutation[]): number {
  const seen = ms.filter((m) => !('remove' in m) && !REWRITTEN.test(m.path.join('.')));
  return seen.length + seen.filter((m) => EDGES.has((m as { value: unknown }).value)).length;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** `check-config`'s loading, in-process: the config, or the exit code and what it printed. */
function checkInProcess(path: string): { config: Config | null; stderr: string } {
  const stderr = new Capture();
  const io: CliIo = { stdout: new Capture(), stderr, env: {}, exit: () => undefined, onSignal: () => () => undefined };
  return { config: loadOrReport(path, io), stderr: stderr.text };
}

const DOTTED_LINE = /^ {2}(\(toml\) line \d+, column \d+: |\(root\): |[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: |[^:\s]+: cannot read config file: )\S/;
const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

function assertReport(stderr: string, what: string): void {
  const lines = stderr.split('\n').filter(Boolean);
  assert.match(lines[0] ?? '', /^sluice: invalid config .* \(\d+ problems?\):$/, what);
  for (const line of lines.slice(1)) assert.match(line, DOTTED_LINE, `${what}\nline without a dotted path: ${JSON.stringify(line.slice(0, 200))}`);
  assert.doesNotMatch(stderr, STACK_LINE, what);
}

const tmp = tempDir('sluice-config-fuzz-');
const broker = new MosquittoBroker(join(tmp.path, 'mosquitto'), { persistence: false });
const accepted: { toml: string; table: Table; score: number }[] = [];
const refused: string[] = [];
let checked = 0;

before(async () => {
  await broker.start();
});

after(async () => {
  await broker.stop();
  tmp.cleanup();
  process.stdout.write(`# config fuzz (seed ${SEED}): ${checked} configs checked in-process (${accepted.length} accepted), ${CLI_CASES} through the CLI, ${Math.min(RUN_CASES, accepted.length)} run\n`);
});

test(`check-config never throws and names a dotted path in every line, on ${CHECK_CASES} mutated configs (seed ${SEED})`, () => {
  let n = 0;
  fc.assert(
    fc.property(mutations, (ms) => {
      const toml = toToml(mutate(example, ms));
      fc.pre(toml !== null);
      const path = join(tmp.path, `check-${n++}.toml`);
      writeFileSync(path, toml);
      // A throw here is what the CLI turns into exit 1 with a bare message: never for a config.
      const r = checkInProcess(path);
      checked++;
      if (r.config) {
        if (accepted.length < 200) accepted.push({ toml, table: parseToml(toml) as Table, score: edgeScore(ms) });
      } else {
        assertReport(r.stderr, `mutations ${JSON.stringify(ms).slice(0, 300)}`);
        if (refused.length < CLI_CASES) refused.push(path);
      }
    }),
    { seed: SEED, numRuns: CHECK_CASES, endOnFailure: true },
  );
  // The generator must make both kinds, or the property says little.
  assert.ok(accepted.length >= RUN_CASES, `only ${accepted.length} accepted`);
  assert.ok(checked - accepted.length >= CHECK_CASES / 2, `only ${checked - accepted.length} refused`);
});

test('the sluice CLI: refused configs exit 3 with dotted paths and no stack trace, accepted ones exit 0', async () => {
  for (const path of refused) {
    const r = await runCli(['check-config', '-c', path]);
    assert.equal(r.code, ExitCode.config, `${path} (seed ${SEED}):\n${r.stderr.slice(0, 2000)}`);
    assertReport(r.stderr, `${path} (seed ${SEED})`);
  }
  const ok = join(tmp.path, 'accepted-0.toml');
  writeFileSync(ok, accepted[0]!.toml);
  const r = await runCli(['check-config', '-c', ok]);
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.equal(r.stderr, '');
});

/** What a run needs to be a test here: loopback only, its own journal and ports, logs it can read. */
function forRun(t: Table, i: number, kafkaPort: number, httpPort: number): Table {
  const c = structuredClone(t);
  const section = (k: string): Table => (c[k] ??= {}) as Table;
  section('journal').path = join(tmp.path, `run-${i}`, 'journal.db');
  Object.assign(section('log'), { level: 'info', format: 'json' });
  Object.assign(section('http'), { host: '127.0.0.1', port: httpPort });
  for (const m of (c.mqtt ?? []) as Table[]) m.url = broker.url;
  for (const p of (c.serial ?? []) as Table[]) p.path = join(tmp.path, `run-${i}`, 'no-such-tty');
  for (const s of (c.sink ?? []) as Table[]) s.brokers = [`127.0.0.1:${kafkaPort}`];
  return c;
}

test(`sluice run starts on accepted configs against a real Mosquitto and stops cleanly on SIGTERM (seed ${SEED})`, async () => {
  // The accepted configs with the most edge values first (a stable sort keeps the seed's order otherwise).
  const cases = [...accepted].sort((a, b) => b.score - a.score).slice(0, RUN_CASES);
  for (const [i, a] of cases.entries()) {
    const table = forRun(a.table, i, await freePort(), await freePort());
    const path = join(tmp.path, `run-${i}.toml`);
    writeFileSync(path, stringifyToml(table));
    const what = `run case ${i} (seed ${SEED}), config:\n${a.toml.slice(0, 3000)}`;
    const checked = checkInProcess(path);
    assert.ok(checked.config, `${what}\nrewritten for the run, it is refused:\n${checked.stderr}`);
    const d = Daemon.run(path).start();
    try {
      await d.waitForLog(/"msg":"sluice ready"/, 20000);
      // Plain MQTT to our broker: it must get as far as a session (TLS ones cannot, against a plain listener).
      const mqtt = checked.config.mqtt.filter((m) => !m.tls.enabled);
      if (mqtt.length) await d.waitForLog(/"msg":"connected to MQTT broker"/, 15000);
    } catch (err) {
      await d.stop(2000);
      assert.fail(`${what}\n${String(err)}`);
    }
    const code = await d.stop(30000);
    const output = d.lines.join('\n');
    assert.equal(code, ExitCode.ok, `${what}\nexit ${code}; last lines:\n${d.lines.slice(-10).join('\n')}`);
    assert.doesNotMatch(output, /cannot start|TimeoutOverflowWarning|broker refused|subscribe failed/, what);
    assert.doesNotMatch(output, STACK_LINE, what);
  }
});
