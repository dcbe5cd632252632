import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait-for.js';

/**
 * A Unix datagram socket standing in for systemd's NOTIFY_SOCKET. Node cannot open one, so a
 * small python3 program binds it and prints each datagram as a line; file descriptors passed
 * along (systemd-notify's barrier) are closed at once, as the service manager does.
 */
const LISTENER = `
import os, socket, sys, array
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print("LISTENING", flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4) + socket.CMSG_SPACE(12))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    print(msg.decode("utf-8", "replace").replace("\\n", " | "), flush=True)
`;

export class NotifySocket {
  readonly messages: string[] = [];
  readonly path: string;
  private proc: ChildProcess | null = null;

  constructor(dir: string) {
    this.path = join(dir, 'notify.sock');
  }

  async start(): Promise<void> {
    const proc = spawn('python3', ['-c', LISTENER, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.proc = proc;
    let buf = '';
    let listening = false;
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'LISTENING') listening = true;
        else this.messages.push(line);
      }
    });
    await waitFor(() => listening, { what: 'notify socket listener', timeoutMs: 10000 });
  }

  /** Messages containing `field` (e.g. "READY=1"). */
  count(field: string): number {
    return this.messages.filter((m) => m.split(' | ').includes(field)).length;
  }

  waitFor(field: string, times = 1, timeoutMs = 30000): Promise<boolean> {
    return waitFor(() => this.count(field) >= times, { timeoutMs, what: () => `${times}× ${field} on the notify socket; got ${JSON.stringify(this.messages)}` });
  }

  stop(): void {
    this.proc?.kill('SIGTERM');
    this.proc = null;
  }
}

/** GET a path of the daemon's HTTP endpoint; returns status and body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** The value of one Prometheus sample, e.g. metricValue(text, 'sluice_sink_shipped_total{sink="kafka"}'). */
export function metricValue(text: string, sample: string): number | null {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return null;
}
