/**
 * `lifeboat agent`: the long-running service. It owns the config (validated; SIGHUP reloads it and
 * keeps the old one when the new one is invalid), the state database, the scheduler, the watcher,
 * the control socket (status, run) and the metrics endpoint. SIGTERM/SIGINT: running jobs are told
 * to stop (each flushes its current pack, writes an index checkpoint and releases its lock) and the
 * agent exits within 30 s.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { jobTable, type JobSpec } from './jobs.js';
import { Scheduler } from './scheduler.js';
import { StateDb } from './state-db.js';
import { socketPath, stateDir } from './paths.js';
import { jobStatuses, repositoryStats, safeLocation, type StatusReport } from './status.js';
import { renderMetrics } from './metrics.js';
import { probeRepository } from './probe.js';
import type { ChildGlobals, JobOutcome } from './runner.js';
import { Watcher } from './watcher.js';
import { programVersion } from '../util/version.js';
import { socketAnswers } from './control-client.js';

export interface AgentOptions {
  configFile: string;
  /** --repo, --password-file, --cache-dir given to the agent (passed on to every job). */
  repo?: string;
  passwordFile?: string;
  cacheDir?: string;
  logFormat?: 'text' | 'json';
}

export class AgentService {
  private loaded!: LoadedConfig;
  private text!: string;
  private db!: StateDb;
  private scheduler!: Scheduler;
  private control: http.Server | null = null;
  private metrics: http.Server | null = null;
  private metricsAddress: string | null = null;
  private watcher: Watcher | null = null;
  private readonly started = Date.now();
  private probe: { at: number; reachable: boolean; error?: string } | null = null;
  private stopping: Promise<void> | null = null;
  private sock = '';

  constructor(private readonly o: AgentOptions) {}

  log(msg: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    const format = this.o.logFormat ?? this.loaded?.config.agent.log_format ?? 'text';
    if (format === 'json') process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg }) + '\n');
    else process.stderr.write(`${level === 'info' ? '' : `${level}: `}${msg}\n`);
  }

  private readConfig(): { loaded: LoadedConfig; text: string } {
    let text: string;
    try {
      text = fs.readFileSync(this.o.configFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${this.o.configFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    // the same parser and errors as every command (file:line: field: reason)
    return { loaded: { file: this.o.configFile, config: parseConfig(text, this.o.configFile) }, text };
  }

  private globals(): ChildGlobals {
    return {
      configFile: this.o.configFile,
      configText: this.text,
      ...(this.o.repo ? { repo: this.o.repo } : {}),
      ...(this.o.passwordFile ? { passwordFile: this.o.passwordFile } : {}),
      ...(this.o.cacheDir ? { cacheDir: this.o.cacheDir } : {}),
    };
  }

  repositoryLocation(): string | null {
    return this.o.repo ?? process.env.LIFEBOAT_REPOSITORY ?? this.loaded.config.repository ?? null;
  }

  async start(): Promise<void> {
    const { loaded, text } = this.readConfig();
    this.loaded = loaded;
    this.text = text;
    const dir = stateDir(loaded.config);
    this.db = StateDb.open(dir);
    const interrupted = this.db.markInterrupted();
    if (interrupted > 0) this.log(`${interrupted} run(s) were cut short when the agent last stopped; they run again now`, 'warn');
    this.scheduler = new Scheduler({
      db: this.db,
      log: (m) => this.log(m),
      globals: () => this.globals(),
      onFinished: (job, outcome, started) => this.finished(job, outcome, started),
      prepare: (job, trigger) => this.watcher?.prepare(job, trigger),
    });
    const specs = jobTable(loaded.config);
    this.scheduler.configure(loaded.config, specs);
    this.log(`lifeboat agent ${programVersion()} started (pid ${process.pid}, config ${loaded.file}, state ${dir}, ${specs.length} job${specs.length === 1 ? '' : 's'}: ${specs.map((j) => j.name).join(', ') || 'none'})`);
    for (const j of specs) if (!j.schedule) this.log(`job ${j.name}: no schedule (runs only through lifeboat run ${j.name})`);
    await this.startControl();
    await this.startMetrics();
    this.watcher = new Watcher({ db: this.db, dir, log: (m, l) => this.log(m, l), trigger: (name, why) => this.scheduler.trigger(name, why) });
    this.watcher.configure(loaded.config, specs);
    if (loaded.config.agent.catch_up) this.scheduler.catchUp();
    process.on('SIGHUP', () => this.reload());
    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
  }

  private finished(job: JobSpec, outcome: JobOutcome, started: number): void {
    if (job.kind === 'backup' && (outcome.result === 'success' || outcome.result === 'incomplete')) this.watcher?.backedUp(job, started, outcome.details.scan);
    const stats = outcome.details.stats as { snapshots?: number } | undefined;
    const rep = (outcome.details.repository ?? (job.kind === 'check' && typeof stats?.snapshots === 'number' ? { ...repositoryStats(this.db), snapshots: stats.snapshots } : undefined)) as { snapshots?: number; size_bytes?: number } | undefined;
    if (rep && typeof rep === 'object') this.db.setMeta('repository_stats', JSON.stringify({ ...rep, as_of: new Date().toISOString() }));
    if (outcome.result !== 'interrupted') this.probe = null;
  }

  /** SIGHUP: the new config replaces the old one only when it is valid. */
  reload(): void {
    let next: { loaded: LoadedConfig; text: string };
    try {
      next = this.readConfig();
    } catch (e) {
      this.log(`reload: the new config is invalid, keeping the old one: ${(e as Error).message}`, 'error');
      return;
    }
    const oldMetrics = this.loaded.config.metrics;
    const oldDir = stateDir(this.loaded.config);
    this.loaded = next.loaded;
    this.text = next.text;
    if (stateDir(next.loaded.config) !== oldDir) this.log('reload: agent.state_dir changed; it takes effect at the next start', 'warn');
    const specs = jobTable(next.loaded.config);
    this.scheduler.configure(next.loaded.config, specs);
    this.watcher?.configure(next.loaded.config, specs);
    const m = next.loaded.config.metrics;
    if (m.enabled !== oldMetrics.enabled || m.listen !== oldMetrics.listen) {
      void this.closeServer(this.metrics).then(() => this.startMetrics());
    }
    this.log(`reload: config ${next.loaded.file} loaded (${specs.length} job${specs.length === 1 ? '' : 's'}: ${specs.map((j) => j.name).join(', ') || 'none'})`);
  }

  async status(probe = true): Promise<StatusReport> {
    const specs = this.scheduler.specs();
    const r: StatusReport = {
      agent: {
        running: true,
        pid: process.pid,
        started: new Date(this.started).toISOString(),
        config: this.loaded.file,
        metrics: this.metricsAddress,
        socket: this.sock,
        state_dir: stateDir(this.loaded.config),
        version: programVersion(),
      },
      jobs: jobStatuses(specs, this.db, this.scheduler.live()),
    };
    const loc = this.repositoryLocation();
    if (loc) {
      if (probe && (!this.probe || Date.now() - this.probe.at > 60_000)) {
        this.probe = { at: Date.now(), ...(await probeRepository(loc)) };
      }
      r.repository = {
        location: safeLocation(loc),
        reachable: this.probe?.reachable ?? true,
        ...(this.probe?.error ? { error: this.probe.error } : {}),
        ...repositoryStats(this.db),
      };
    }
    return r;
  }

  private async startControl(): Promise<void> {
    const sock = socketPath(this.loaded.config);
    this.sock = sock;
    fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o700 });
    if (fs.existsSync(sock)) {
      if (await socketAnswers(sock)) throw new Error(`another agent is running (its socket ${sock} answers)`);
      fs.rmSync(sock, { force: true });
    }
    const server = http.createServer((req, res) => void this.handleControl(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const old = process.umask(0o177);
      server.listen(sock, () => {
        process.umask(old);
        resolve();
      });
    });
    fs.chmodSync(sock, 0o600);
    this.control = server;
  }

  private async handleControl(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://agent');
      if (req.method === 'GET' && url.pathname === '/status') return send(200, await this.status(url.searchParams.get('probe') !== '0'));
      if (req.method === 'GET' && url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(renderMetrics(await this.status(false)));
        return;
      }
      const run = /^\/run\/(.+)$/.exec(url.pathname);
      if (req.method === 'POST' && run) {
        const r = this.scheduler.trigger(decodeURIComponent(run[1]!), 'manual');
        return send(r.ok ? 200 : 409, r);
      }
      if (req.method === 'POST' && url.pathname === '/reload') {
        this.reload();
        return send(200, { ok: true });
      }
      send(404, { ok: false, message: 'unknown request' });
    } catch (e) {
      send(500, { ok: false, message: (e as Error).message });
    }
  }

  private async startMetrics(): Promise<void> {
    this.metrics = null;
    this.metricsAddress = null;
    const m = this.loaded.config.metrics;
    if (!m.enabled) return;
    const i = m.listen.lastIndexOf(':');
    const host = m.listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
    const port = Number(m.listen.slice(i + 1));
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics' && req.url !== '/') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.status().then(
        (s) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(renderMetrics(s));
        },
        (e: Error) => res.writeHead(500).end(`${e.message}\n`),
      );
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const a = server.address();
      this.metricsAddress = a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : m.listen;
      this.metrics = server;
      this.log(`metrics on http://${this.metricsAddress}/metrics`);
    } catch (e) {
      this.log(`metrics: cannot listen on ${m.listen}: ${(e as Error).message} (the agent runs without them)`, 'error');
    }
  }

  private closeServer(s: http.Server | null): Promise<void> {
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections?.();
    });
  }

  stop(signal: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log(`${signal}: stopping (running jobs are told to stop and release their locks)`);
      const hard = setTimeout(() => {
        this.log('jobs did not stop within 29 s: exiting anyway', 'error');
        process.exit(1);
      }, 29_000);
      hard.unref();
      await this.watcher?.close();
      await this.scheduler.stop();
      await Promise.all([this.closeServer(this.control), this.closeServer(this.metrics)]);
      fs.rmSync(this.sock, { force: true });
      this.db.close();
      this.log('stopped');
      process.exit(0);
    })();
    return this.stopping;
  }
}
