import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { repoRoot } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';

function sh(script: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [join(repoRoot, 'scripts', script), ...args], { env: { ...process.env, ...env }, timeout: 300000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

/** Every path under `dir` with type, mode, owner and content hash (not times): what "changes nothing" compares. */
function snapshot(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(dir, rel))) {
    const p = join(rel, name);
    const st = lstatSync(join(dir, p));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.set(p, `link ${readlinkSync(join(dir, p))}`);
    else if (st.isDirectory()) {
      out.set(p, `dir ${mode} ${st.uid}:${st.gid}`);
      for (const [k, v] of snapshot(dir, p)) out.set(k, v);
    } else out.set(p, `file ${mode} ${st.uid}:${st.gid} ${createHash('sha1').update(readFileSync(join(dir, p))).digest('hex')}`);
  }
  return out;
}

function idOf(root: string, file: 'passwd' | 'group', name: string): number | null {
  const line = readFileSync(join(root, 'etc', file), 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  return line ? Number(line.split(':')[2]) : null;
}

function owner(path: string): string {
  const st = lstatSync(path);
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
}

test('install.sh into a temporary root: files, modes and ownership as documented; twice changes nothing; uninstall keeps the journal and config, --purge removes them', async () => {
  const tmp = tempDir();
  const root = tmp.path;
  try {
    mkdirSync(join(root, 'etc'));
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(root, 'etc', f));
    const env = { DESTDIR: root };

    const first = await sh('install.sh', [], env);
    assert.equal(first.code, 0, first.out);
    const uid = idOf(root, 'passwd', 'sluice');
    const gid = idOf(root, 'group', 'sluice');
    assert.ok(uid !== null && gid !== null, 'sluice user and group created in the root');
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^sluice:x:\d+:\d+:[^:]*:\/var\/lib\/sluice:\/usr\/sbin\/nologin$/m);

    // The code: root-owned, production dependencies only, runnable.
    assert.equal(owner(join(root, 'opt/sluice')), '755 0:0');
    assert.equal(owner(join(root, 'opt/sluice/dist/src/main.js')), '755 0:0');
    assert.equal(owner(join(root, 'opt/sluice/package.json')), '644 0:0');
    assert.ok(existsSync(join(root, 'opt/sluice/node_modules/better-sqlite3')));
    assert.ok(!existsSync(join(root, 'opt/sluice/node_modules/typescript')), 'dev dependencies pruned');
    assert.equal(readlinkSync(join(root, 'usr/local/bin/sluice')), '/opt/sluice/dist/src/main.js');
    // Config: readable by the service, not by others; journal directory: the service's alone.
    assert.equal(owner(join(root, 'etc/sluice')), `750 0:${gid}`);
    assert.equal(owner(join(root, 'etc/sluice/sluice.toml')), `640 0:${gid}`);
    assert.equal(owner(join(root, 'var/lib/sluice')), `750 ${uid}:${gid}`);
    const config = parseConfig(readFileSync(join(root, 'etc/sluice/sluice.toml'), 'utf8'), { baseDir: '/etc/sluice', hostname: 'pi' });
    assert.equal(config.journal.path, '/var/lib/sluice/journal.db');
    // Unit installed and enabled.
    assert.equal(owner(join(root, 'etc/systemd/system/sluice.service')), '644 0:0');
    const execStart = /^ExecStart=(\/\S*node) \/opt\/sluice\/dist\/src\/main\.js run -c \/etc\/sluice\/sluice\.toml$/m.exec(readFileSync(join(root, 'etc/systemd/system/sluice.service'), 'utf8'));
    assert.ok(execStart, 'ExecStart runs node on the installed main.js');
    // The service's Node is a supported LTS (22 or later), the one the installed native modules load on.
    const unitNode = await new Promise<string>((resolve) => execFile(execStart[1]!, ['-e', `new (require(${JSON.stringify(join(root, 'opt/sluice/node_modules/better-sqlite3'))}))(':memory:').close(); console.log(process.versions.node)`], (err, stdout, stderr) => resolve(err ? `failed: ${stderr}` : stdout.trim())));
    assert.match(unitNode, /^\d+\./, unitNode);
    assert.ok(Number(unitNode.split('.')[0]) >= 22, `the unit's node is ${unitNode}`);
    assert.equal(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/sluice.service')), '/etc/systemd/system/sluice.service');
    // The installed copy runs.
    const check = await new Promise<string>((resolve) => execFile(process.execPath, [join(root, 'opt/sluice/dist/src/main.js'), 'check-config', '-c', join(root, 'etc/sluice/sluice.toml')], (err, stdout, stderr) => resolve(err ? `failed: ${stderr}` : stdout)));
    assert.match(check, /: ok/);

    // Twice changes nothing; an edited config is kept.
    writeFileSync(join(root, 'etc/sluice/sluice.toml'), `${readFileSync(join(root, 'etc/sluice/sluice.toml'), 'utf8')}\n# edited by the operator\n`);
    const before = snapshot(root);
    const second = await sh('install.sh', [], env);
    assert.equal(second.code, 0, second.out);
    const after = snapshot(root);
    const diff = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
    assert.deepEqual(diff, []);
    assert.match(second.out, /kept the existing \/etc\/sluice\/sluice\.toml/);

    // Uninstall keeps the journal (and config and user); again changes nothing.
    writeFileSync(join(root, 'var/lib/sluice/journal.db'), 'records not yet shipped');
    const un = await sh('uninstall.sh', [], env);
    assert.equal(un.code, 0, un.out);
    for (const gone of ['opt/sluice', 'usr/local/bin/sluice', 'etc/systemd/system/sluice.service', 'etc/systemd/system/multi-user.target.wants/sluice.service']) {
      assert.ok(!existsSync(join(root, gone)) && !isLink(join(root, gone)), `${gone} removed`);
    }
    assert.equal(readFileSync(join(root, 'var/lib/sluice/journal.db'), 'utf8'), 'records not yet shipped');
    assert.ok(existsSync(join(root, 'etc/sluice/sluice.toml')));
    assert.equal(idOf(root, 'passwd', 'sluice'), uid);
    const kept = snapshot(root);
    const again = await sh('uninstall.sh', [], env);
    assert.equal(again.code, 0, again.out);
    assert.deepEqual([...snapshot(root)], [...kept]);

    const purge = await sh('uninstall.sh', ['--purge'], env);
    assert.equal(purge.code, 0, purge.out);
    assert.ok(!existsSync(join(root, 'var/lib/sluice')));
    assert.ok(!existsSync(join(root, 'etc/sluice')));
    assert.equal(idOf(root, 'passwd', 'sluice'), null);
    assert.equal(idOf(root, 'group', 'sluice'), null);
  } finally {
    tmp.cleanup();
  }
});

test('install.sh refuses a Node.js older than 22 (exit 1, says which and why) and installs nothing', async () => {
  const tmp = tempDir();
  try {
    const root = join(tmp.path, 'root');
    const bin = join(tmp.path, 'bin');
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group']) copyFileSync(`/etc/${f}`, join(root, 'etc', f));
    // A stand-in for an end-of-life Node 20 first on PATH: answers what install.sh asks a node.
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\ncase "$*" in *--version*) echo v20.20.2 ;; *process.versions.node*) echo 20 ;; *) exit 99 ;; esac\n', { mode: 0o755 });
    const r = await sh('install.sh', [], { DESTDIR: root, PATH: `${bin}:${process.env.PATH ?? ''}` });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /install\.sh: Node\.js v20\.20\.2 \(.*\/bin\/node\) is too old; sluice needs Node\.js 22 or later/);
    assert.deepEqual(readdirSync(root), ['etc']);
    assert.deepEqual(readdirSync(join(root, 'etc')).sort(), ['group', 'passwd']);
  } finally {
    tmp.cleanup();
  }
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
