import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Component } from '../component.js';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { ProgressTracker } from './progress.js';
import { renderPrometheus } from './prometheus.js';
import { buildStatus, observeProgress, type OpsView } from './status.js';

export interface OpsServerOptions {
  host: string;
  port: number;
}

/** How often counters are sampled for rates and failure tracking. */
const SAMPLE_MS = 2000;

/**
 * The local HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers),
 * `/readyz` (journal open and sinks configured; 503 when not ready or degraded) and `/status`
 * (JSON, read by `sluice status`). A port already in use is logged once and retried with backoff:
 * the endpoints are for watching sluice and must never stop it from forwarding.
 */
export class OpsServer implements Component {
  readonly name = 'http';
  readonly tracker = new ProgressTracker();
  private server: Server | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = true;
  private listenFailing = false;
  private readonly backoff = new Backoff({ initialMs: 1000, maxMs: 60000 });

  constructor(
    private readonly opts: OpsServerOptions,
    private readonly deps: { view: OpsView; logger: Logger; clock: Clock },
  ) {}

  /** The port actually listened on (differs from the option when it is 0), or null. */
  get port(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.sampler = setInterval(() => this.sample(), SAMPLE_MS);
    this.sampler.unref();
    this.sample();
    await this.listen();
  }

  private sample(): void {
    try {
      observeProgress(this.deps.view, this.tracker, this.deps.clock.now());
    } catch (err) {
      this.deps.logger.debug({ err }, 'progress sample failed');
    }
  }

  private listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    // Slow or idle clients must not hold sockets open for long on a small machine.
    server.requestTimeout = 10000;
    server.headersTimeout = 5000;
    server.keepAliveTimeout = 5000;
    return new Promise((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (!this.listenFailing) this.deps.logger.error({ err: err.message, code: err.code, host: this.opts.host, port: this.opts.port }, 'cannot listen for the metrics/status endpoints; retrying with backoff (forwarding is not affected)');
        this.listenFailing = true;
        server.close();
        if (!this.stopped) {
          this.retry = setTimeout(() => {
            this.retry = null;
            if (!this.stopped) void this.listen();
          }, this.backoff.next());
          this.retry.unref();
        }
        resolve();
      });
      server.listen(this.opts.port, this.opts.host, () => {
        this.server = server;
        this.backoff.reset();
        this.deps.logger.info({ url: `http://${this.opts.host}:${this.port}/` }, this.listenFailing ? 'metrics/status endpoints listening again' : 'metrics/status endpoints listening');
        this.listenFailing = false;
        if (this.stopped) void this.stop();
        resolve();
      });
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET\n');
    try {
      const { view } = this.deps;
      const now = this.deps.clock.now();
      switch (path) {
        case '/healthz':
          return send(res, 200, 'text/plain', 'ok\n');
        case '/readyz': {
          const s = buildStatus(view, this.tracker, now);
          const text = s.state === 'ready' ? 'ready\n' : `${s.state.replace('_', ' ')}: ${s.reasons.join('; ')}\n`;
          return send(res, s.state === 'ready' ? 200 : 503, 'text/plain', text);
        }
        case '/status':
          return send(res, 200, 'application/json', `${JSON.stringify(buildStatus(view, this.tracker, now))}\n`);
        case '/metrics': {
          const s = buildStatus(view, this.tracker, now);
          return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', renderPrometheus(view.metrics, s, view.reloads.count));
        }
        default:
          return send(res, 404, 'text/plain', 'not found: try /metrics, /healthz, /readyz or /status\n');
      }
    } catch (err) {
      this.deps.logger.error({ err, path }, 'status request failed');
      return send(res, 500, 'text/plain', 'internal error\n');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sampler) clearInterval(this.sampler);
    if (this.retry) clearTimeout(this.retry);
    this.sampler = null;
    this.retry = null;
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
