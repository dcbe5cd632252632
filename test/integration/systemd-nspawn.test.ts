import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { decodeRecords } from '../../src/journal/record-codec.js';
import { repoRoot } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The README's "Install on a Raspberry Pi", done for real: a minimal Debian 12 root (cached by
 * scripts/debian-tree.sh) is booted with systemd-nspawn (a real systemd 252 as PID 1), sluice is
 * installed into it with `sudo scripts/install.sh` from a copy of this checkout, and the service
 * is started, reloaded, starved of its watchdog, stopped and removed by the guest's own systemctl.
 * The cached tree is never booted itself: each run boots an overlay of it.
 */

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: err && code === 1 && !stderr ? String(err.message) : stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

const GUEST_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'TERM=dumb', 'SYSTEMD_PAGER=', 'SYSTEMD_COLORS=0'];
const SERIAL_LINK = '/dev/serial/by-id/usb-sluice-test-if00';
const SENSOR_FEED = '/run/sensor-feed';

/** The config the test "edits" into /etc/sluice/sluice.toml (README step 3). Kafka is not reachable from the guest: records stay journaled. */
function testConfig(serialMatch: string, healthIntervalS: number | string = 1): string {
  return `[gateway]
id = "nspawn-test"

[health]
interval_s = ${healthIntervalS}

[journal]
path = "/var/lib/sluice/journal.db"

[[mqtt]]
name = "local"
url = "mqtt://127.0.0.1:1883"
[[mqtt.subscribe]]
topic = "sensors/#"

[[serial]]
name = "probe"
path = "${SERIAL_LINK}"
decoder = "kv"

[[sink]]
name = "cloud"
brokers = ["127.0.0.1:9"]
[[sink.route]]
match = "${serialMatch}"
topic = "iot.serial"
[[sink.route]]
match = "sluice/+kind"
topic = "sluice.{kind}"
`;
}

describe('the Raspberry Pi install under a real systemd (systemd-nspawn, Debian 12 minbase)', { timeout: 600000 }, () => {
  const tmp = tempDir('sluice-nspawn-');
  const upper = join(tmp.path, 'upper');
  const work = join(tmp.path, 'work');
  const root = join(tmp.path, 'root');
  const machine = `sluice-test-${process.pid}`;
  let mounted = false;
  let nspawn: ChildProcess | null = null;
  let console_ = '';
  let pid1 = 0;

  /** Runs a bash script inside the guest, as root, with a clean environment. */
  const guest = (script: string, timeoutMs = 60000): Promise<Result> => run('nsenter', ['-t', String(pid1), '-a', 'env', '-i', ...GUEST_ENV, 'bash', '-c', script], { timeoutMs });
  const ok = async (script: string, timeoutMs?: number): Promise<string> => {
    const r = await guest(script, timeoutMs);
    assert.equal(r.code, 0, `guest: ${script}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const show = async (...props: string[]): Promise<Record<string, string>> => {
    const out = await ok(`systemctl show ${props.map((p) => `-p ${p}`).join(' ')} sluice`);
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  /** sluice's own log lines (JSON) since `cursor`, from the guest's journald. */
  const sluiceLog = async (): Promise<{ msg: string; mono: number; fields: Record<string, unknown> }[]> => {
    const out = await ok('journalctl -u sluice -o json --no-pager');
    const lines: { msg: string; mono: number; fields: Record<string, unknown> }[] = [];
    for (const l of out.split('\n')) {
      if (!l.trim()) continue;
      const entry = JSON.parse(l) as { MESSAGE?: string | number[]; __MONOTONIC_TIMESTAMP: string; _COMM?: string };
      const text = typeof entry.MESSAGE === 'string' ? entry.MESSAGE : Buffer.from(entry.MESSAGE ?? []).toString();
      let fields: Record<string, unknown> = {};
      try {
        fields = JSON.parse(text) as Record<string, unknown>;
      } catch {
        fields = { systemd: true };
      }
      lines.push({ msg: typeof fields.msg === 'string' ? fields.msg : text, mono: Number(entry.__MONOTONIC_TIMESTAMP), fields });
    }
    return lines;
  };
  const status = async (): Promise<{ config: { reloads: number; last_reload: { ok: boolean; errors: string[]; changed: string[] } | null }; sources: { name: string; state: string; received: number }[]; journal: { bytes_written: number | null; commits: number } }> =>
    JSON.parse(await ok('sluice status --json || [ $? = 5 ]')) as never;
  const writeGuestConfig = (text: string): void => writeFileSync(join(root, 'etc/sluice/sluice.toml'), text);

  before(async () => {
    const t0 = Date.now();
    const deps = await run('bash', [join(repoRoot, 'scripts/ensure-test-deps.sh')], { timeoutMs: 600000 });
    assert.equal(deps.code, 0, `ensure-test-deps: ${deps.stderr}`);
    const built = await run('bash', [join(repoRoot, 'scripts/debian-tree.sh')], { timeoutMs: 600000 });
    assert.equal(built.code, 0, `debian-tree.sh failed: ${built.stderr}`);
    const tree = built.stdout.trim();
    const tTree = Date.now();

    for (const d of [upper, work, root]) mkdirSync(d);
    const m = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${tree},upperdir=${upper},workdir=${work}`, root]);
    assert.equal(m.code, 0, `cannot mount an overlay of ${tree}: ${m.stderr}`);
    mounted = true;

    // Node: the one running this test (scripts/test.sh runs it on the pinned Node 24 and again on
    // Node 22), bound in where NodeSource's package (README step 1) puts it.
    const node = realpathSync(process.execPath);
    assert.ok(Number(process.versions.node.split('.')[0]) >= 22, `the guest gets Node ${process.version}; sluice needs 22 or later`);
    const npmCli = realpathSync((await run('bash', ['-c', 'command -v npm'])).stdout.trim());
    const npmDir = dirname(dirname(npmCli));
    assert.ok(existsSync(join(npmDir, 'package.json')), `npm not found beside ${npmCli}`);
    writeFileSync(join(root, 'usr/bin/node'), '');
    mkdirSync(join(root, 'usr/lib/node_modules/npm'), { recursive: true });
    await run('ln', ['-sfn', '../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/bin/npm')]);
    // A Pi's /etc/hosts names the host; sudo wants to resolve it.
    writeFileSync(join(root, 'etc/hostname'), `${machine}\n`);
    writeFileSync(join(root, 'etc/hosts'), `127.0.0.1 localhost\n127.0.1.1 ${machine}\n`);
    mkdirSync(join(root, 'root/sluice'), { recursive: true });

    nspawn = spawn(
      'systemd-nspawn',
      ['--boot', '--register=no', '--keep-unit', '--private-network', `--machine=${machine}`, '-D', root, `--bind-ro=${node}:/usr/bin/node`, `--bind-ro=${npmDir}:/usr/lib/node_modules/npm`, `--bind-ro=${repoRoot}:/root/sluice`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    nspawn.stdout!.on('data', (d: Buffer) => (console_ += d.toString()));
    nspawn.stderr!.on('data', (d: Buffer) => (console_ += d.toString()));
    const ns = nspawn;
    pid1 = await waitFor(
      () => {
        if (ns.exitCode !== null) throw new Error(`systemd-nspawn exited with ${ns.exitCode}:\n${console_}`);
        // nspawn's first child forks the guest's init and exits; PID 1 is the child running systemd.
        try {
          for (const c of readFileSync(`/proc/${ns.pid}/task/${ns.pid}/children`, 'utf8').trim().split(' ')) {
            if (c && readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'systemd') return Number(c);
          }
        } catch {
          // not there yet
        }
        return null;
      },
      { timeoutMs: 30000, what: () => `the guest's PID 1; console:\n${console_}` },
    );
    // "offline" or "Failed to connect to bus" until systemd answers on its private socket.
    let last: Result | null = null;
    const up = await waitFor(
      async () => {
        last = await guest('systemctl is-system-running --wait', 60000);
        return /^(running|degraded)$/m.test(last.stdout) ? last : null;
      },
      { timeoutMs: 60000, intervalMs: 200, what: () => `the guest's systemd: ${JSON.stringify(last)}; console:\n${console_}` },
    );
    if (up.stdout.includes('degraded')) console.log((await guest('systemctl --failed --no-legend')).stdout);
    console.log(`# tree ${(tTree - t0) / 1000} s (${tree}), boot ${(Date.now() - tTree) / 1000} s`);
  });

  after(async () => {
    if (nspawn && nspawn.exitCode === null) {
      const ns = nspawn;
      ns.kill('SIGTERM'); // nspawn asks the guest's systemd to power off
      await waitFor(() => ns.exitCode !== null || ns.signalCode !== null, { timeoutMs: 30000 }).catch(() => ns.kill('SIGKILL'));
      await waitFor(() => ns.exitCode !== null || ns.signalCode !== null, { timeoutMs: 10000 }).catch(() => undefined);
    }
    if (mounted) {
      const u = await run('umount', [root]);
      if (u.code !== 0) await run('umount', ['-l', root]);
    }
    tmp.cleanup();
  });

  it('installs with `sudo scripts/install.sh` from a copy of the checkout (README step 2): enabled, not started', async () => {
    assert.equal((await ok('node --version')).trim(), process.version);
    const out = await ok('cd /root/sluice && sudo scripts/install.sh 2>&1', 300000);
    assert.match(out, /installed sluice .* in \/opt\/sluice/);
    assert.equal((await guest('systemctl is-enabled sluice')).stdout.trim(), 'enabled');
    assert.equal((await guest('systemctl is-active sluice')).stdout.trim(), 'inactive');
    assert.match(await ok('getent passwd sluice'), /^sluice:x:\d+:\d+:.*:\/var\/lib\/sluice:\/usr\/sbin\/nologin$/m);
  });

  it('the edited config passes `sudo -u sluice sluice check-config` (README step 3)', async () => {
    writeGuestConfig(testConfig('serial/#'));
    // A serial port as udev makes one: a root:dialout 0660 character device behind a by-id link.
    await ok(`mkdir -p ${dirname(SERIAL_LINK)} && systemd-run --quiet --unit=fake-serial socat pty,raw,echo=0,link=${SERIAL_LINK},group=dialout,mode=660 pty,raw,echo=0,link=${SENSOR_FEED}`);
    await waitFor(async () => (await guest(`test -e ${SERIAL_LINK} && test -e ${SENSOR_FEED}`)).code === 0, { timeoutMs: 10000, what: 'socat ptys in the guest' });
    await ok(`systemd-run --quiet --unit=fake-sensor bash -c 'while :; do echo "t=21.5 h=40"; sleep 0.2; done > ${SENSOR_FEED}'`);
    const out = await ok('sudo -u sluice sluice check-config -c /etc/sluice/sluice.toml 2>/dev/null');
    assert.match(out, /: ok \(/);
  });

  it('`systemctl start sluice` returns once READY=1 arrived: active (running) only after sluice opened its journal; the status text counts MQTT and serial sources', async () => {
    assert.equal((await show('ActiveState')).ActiveState, 'inactive');
    await ok('sudo systemctl start sluice');
    assert.match(await ok('systemctl status sluice --no-pager --lines=0'), /Active: active \(running\)/);
    const s = await show('ActiveState', 'SubState', 'StatusText', 'ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic');
    assert.equal(s.StatusText, 'forwarding: 2 source(s), 1 sink(s)', 'STATUS= sent with READY=1');
    const log = await sluiceLog();
    const opened = log.find((l) => l.msg === 'journal open');
    assert.ok(opened, 'sluice logged "journal open"');
    assert.ok(Number(s.ExecMainStartTimestampMonotonic) < opened.mono && opened.mono < Number(s.ActiveEnterTimestampMonotonic), `activating while sluice opened its journal: exec ${s.ExecMainStartTimestampMonotonic}, journal open ${opened.mono}, active ${s.ActiveEnterTimestampMonotonic}`);
  });

  it('the sandbox lets sluice do its job: the serial port opens and reads, the HTTP endpoint answers (`sluice status`), /proc/self/io counts its writes', async () => {
    const st = await waitFor(
      async () => {
        const r = await status();
        return (r.sources.find((x) => x.name === 'serial:probe')?.received ?? 0) >= 3 && (r.sources.find((x) => x.name === 'sluice:health')?.received ?? 0) >= 2 ? r : null;
      },
      { timeoutMs: 20000, what: 'serial readings and health records in sluice status' },
    );
    assert.equal(st.sources.find((x) => x.name === 'serial:probe')?.state, 'open');
    assert.ok(st.journal.bytes_written !== null && st.journal.bytes_written > 0, `bytes written ${st.journal.bytes_written}`);
    const text = await ok('sluice status || [ $? = 5 ]');
    assert.match(text, /serial:probe +open/);
  });

  it('`systemctl reload sluice` applies a changed route; an invalid file is refused and the old config keeps running', async () => {
    // Kafka is out of reach, so the route shows where the sink skips: every record is routed now;
    // after the reload the serial port's topic (serial/probe) matches no route.
    const unrouted = (log: Awaited<ReturnType<typeof sluiceLog>>): boolean => log.some((l) => l.msg.startsWith('no route matches this topic') && l.fields.topic === 'serial/probe');
    assert.equal(unrouted(await sluiceLog()), false, 'serial readings routed before the reload');
    writeGuestConfig(testConfig('serial/other/#'));
    await ok('sudo systemctl reload sluice');
    // systemctl returns once the signal is sent; sluice applies the file a moment later.
    const applied = await waitFor(
      async () => {
        const { config } = await status();
        return config.reloads >= 1 ? config.last_reload : null;
      },
      { timeoutMs: 30000, what: 'the reload in sluice status' },
    );
    assert.equal(applied.ok, true, JSON.stringify(applied));
    assert.deepEqual(applied.changed, ['sink:cloud']);
    await waitFor(async () => unrouted(await sluiceLog()), { timeoutMs: 30000, what: 'the sink skipping serial/probe under the new route' });
    assert.equal((await show('ActiveState')).ActiveState, 'active');

    writeGuestConfig(testConfig('serial/#', 0));
    await ok('sudo systemctl reload sluice');
    const refused = await waitFor(
      async () => {
        const last = (await status()).config.last_reload;
        return last && !last.ok ? last : null;
      },
      { timeoutMs: 30000, what: 'the refused reload in sluice status' },
    );
    writeGuestConfig(testConfig('serial/#'));
    assert.equal((await status()).config.reloads, 1, 'only the applied reload counts');
    assert.ok(refused.errors.some((e) => e.startsWith('health.interval_s:')), refused.errors.join('\n'));
    const log = await sluiceLog();
    assert.ok(log.some((l) => l.msg.startsWith('config reload refused')), 'refusal logged');
    assert.equal((await show('ActiveState')).ActiveState, 'active');
    // The old config (health every second) is still what runs.
    const before = (await status()).sources.find((x) => x.name === 'sluice:health')!.received;
    await waitFor(async () => (await status()).sources.find((x) => x.name === 'sluice:health')!.received > before + 1, { timeoutMs: 30000, what: 'health records still every second' });
    assert.equal((await show('StatusText')).StatusText, 'forwarding: 2 source(s), 1 sink(s); last reload refused: invalid config');
  });

  it('the watchdog restarts sluice after SIGSTOP (WatchdogSec=4 and RestartSec=1 in a drop-in)', async () => {
    await ok(`mkdir -p /etc/systemd/system/sluice.service.d && printf '[Service]\\nWatchdogSec=4\\nRestartSec=1\\n' > /etc/systemd/system/sluice.service.d/test-watchdog.conf && systemctl daemon-reload && systemctl restart sluice`);
    const first = await show('MainPID', 'NRestarts', 'WatchdogUSec');
    assert.equal(first.WatchdogUSec, '4s');
    await ok(`kill -STOP ${first.MainPID}`);
    const after_ = await waitFor(
      async () => {
        const s = await show('MainPID', 'NRestarts', 'ActiveState');
        return s.ActiveState === 'active' && s.MainPID !== first.MainPID && s.MainPID !== '0' ? s : null;
      },
      { timeoutMs: 30000, what: 'a new main process after the watchdog fired' },
    );
    assert.equal(Number(after_.NRestarts), Number(first.NRestarts) + 1);
    assert.match(await ok('journalctl -u sluice --no-pager -o cat'), /sluice\.service: Watchdog timeout \(limit 4s\)!/);
    // The rest runs under the unit as installed.
    await ok('rm /etc/systemd/system/sluice.service.d/test-watchdog.conf && systemctl daemon-reload && systemctl restart sluice');
    assert.equal((await show('WatchdogUSec')).WatchdogUSec, '30s');
  });

  it('`systemd-analyze security sluice` inside the guest rates it 2.5 or lower', async () => {
    const out = await ok('systemd-analyze security sluice --no-pager');
    const m = /Overall exposure level for sluice\.service: ([\d.]+)/.exec(out);
    assert.ok(m, out);
    console.log(`# exposure ${m[1]}`);
    assert.ok(Number(m[1]) <= 2.5, out);
  });

  it('`systemctl stop sluice` is clean: exit status 0, the journal closed, what it read is in the journal (health read /proc and /sys)', async () => {
    await ok('sudo systemctl stop sluice');
    const s = await show('Result', 'ExecMainCode', 'ExecMainStatus', 'ActiveState');
    assert.deepEqual(s, { Result: 'success', ExecMainCode: '1', ExecMainStatus: '0', ActiveState: 'inactive' });
    const log = await sluiceLog();
    const lastStart = log.map((l) => l.msg).lastIndexOf('journal open');
    const tail = log.slice(lastStart).map((l) => l.msg);
    assert.ok(tail.includes('stopping') && tail.indexOf('journal closed') > tail.indexOf('stopping') && tail.indexOf('stopped') > tail.indexOf('journal closed'), tail.join('\n'));
    assert.match(await ok('sudo -u sluice sluice journal check -c /etc/sluice/sluice.toml'), /: ok;/);

    // The journal the guest wrote, read on the host.
    const db = new Database(join(root, 'var/lib/sluice/journal.db'), { readonly: true, fileMustExist: true });
    const records = (db.prepare('SELECT first_seq, count, data FROM batches ORDER BY first_seq').all() as { first_seq: number; count: number; data: Buffer }[]).flatMap((r) => decodeRecords(r.data, r.first_seq, r.count));
    db.close();
    const serial = records.filter((r) => r.source === 'serial:probe');
    assert.ok(serial.length >= 3, `serial readings journaled: ${serial.length}`);
    assert.deepEqual(JSON.parse(serial[0]!.payload.toString()), { t: 21.5, h: 40 });
    const health = records.filter((r) => r.source === 'sluice:health').map((r) => JSON.parse(r.payload.toString()) as Record<string, number | null>);
    assert.ok(health.length >= 2);
    const last = health[health.length - 1]!;
    for (const k of ['load_1m', 'cpu_busy_pct', 'mem_available_bytes', 'system_uptime_s', 'disk_free_bytes', 'net_rx_bytes']) assert.notEqual(last[k], null, `${k} (from /proc or statfs) in ${JSON.stringify(last)}`);
    // /sys: a temperature wherever the guest has a thermal zone to read.
    const zones = (await guest('cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null')).stdout.trim();
    if (zones) assert.notEqual(last.cpu_temp_c, null, `cpu_temp_c with thermal zones ${zones}`);
    else assert.equal(last.cpu_temp_c, null);
    console.log(`# ${serial.length} serial readings, ${health.length} health records; cpu_temp_c ${last.cpu_temp_c}`);
  });

  it('`sudo scripts/uninstall.sh` keeps the journal, the config and the user; `--purge` removes them', async () => {
    await ok('cd /root/sluice && sudo scripts/uninstall.sh 2>&1');
    assert.notEqual((await guest('systemctl cat sluice')).code, 0, 'unit gone');
    await ok('test ! -e /opt/sluice && test ! -e /usr/local/bin/sluice && test -f /var/lib/sluice/journal.db && test -f /etc/sluice/sluice.toml && getent passwd sluice');
    await ok('cd /root/sluice && sudo scripts/uninstall.sh --purge 2>&1');
    await ok('test ! -e /var/lib/sluice && test ! -e /etc/sluice && ! getent passwd sluice && ! getent group sluice');
  });
});
