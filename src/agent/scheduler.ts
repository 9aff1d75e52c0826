/**
 * The agent's heart: runs each job on its cron schedule (plus jitter), never two runs of one job at
 * once (a run due while the last still runs is skipped with a log line, or queued once, per
 * `agent.overlap`), at most `agent.max_concurrent` jobs at a time, retries failures with doubling
 * delays, catches up once on start what was missed while the agent was down, and records every
 * run in the state database.
 */
import { Cron } from 'croner';
import type { LifeboatConfig } from '../config/schema.js';
import type { JobSpec } from './jobs.js';
import { runJob, type ChildGlobals, type JobOutcome } from './runner.js';
import type { StateDb } from './state-db.js';
import type { LiveJob, LiveState } from './status.js';
import { ping } from './healthchecks.js';

export type Trigger = 'schedule' | 'catch-up' | 'retry' | 'manual' | 'watch' | 'full-scan';

interface JobState {
  spec: JobSpec;
  cron: Cron | null;
  state: LiveState;
  /** The next scheduled time (with jitter) and the cron time it stands for. */
  nextAt: number | null;
  nextCron: number | null;
  /** A run due while this one runs (overlap: queue). */
  again: Trigger | null;
  attempt: number;
  trigger: Trigger;
  retryTimer: NodeJS.Timeout | null;
  retryAt?: number;
  runningSince?: number;
  abort?: AbortController;
  done?: Promise<void>;
  /** Removed from the config by a reload while running: forget it once finished. */
  removed?: boolean;
  /** Extra environment for the next run (e.g. the watcher's changed paths). */
  env?: Record<string, string>;
}

export interface SchedulerOptions {
  db: StateDb;
  log: (msg: string) => void;
  globals: () => ChildGlobals;
  /** Called when a run finished (the watcher clears its journal, metrics refresh). */
  onFinished?: (job: JobSpec, outcome: JobOutcome, started: number) => void;
  /** Called just before a job's child starts: extra environment for it. */
  prepare?: (job: JobSpec, trigger: Trigger) => { args?: string[]; env?: Record<string, string>; details?: Record<string, unknown> } | undefined;
  random?: () => number;
}

const TICK_MAX_MS = 30_000;

export class Scheduler {
  private jobs = new Map<string, JobState>();
  private queue: string[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private config!: LifeboatConfig;

  constructor(private readonly o: SchedulerOptions) {}

  /** Installs (or, on reload, replaces) the job table; running jobs go on with their old spec. */
  configure(config: LifeboatConfig, specs: JobSpec[], now = Date.now()): void {
    this.config = config;
    const seen = new Set<string>();
    for (const spec of specs) {
      seen.add(spec.name);
      this.o.db.touchJob(spec.name, now);
      const old = this.jobs.get(spec.name);
      const cron = spec.schedule ? new Cron(spec.schedule, { paused: true }) : null;
      old?.cron?.stop();
      if (old) {
        old.spec = spec;
        old.cron = cron;
        old.removed = false;
        this.planNext(old, now);
      } else {
        const js: JobState = { spec, cron, state: 'idle', nextAt: null, nextCron: null, again: null, attempt: 1, trigger: 'schedule', retryTimer: null };
        this.jobs.set(spec.name, js);
        this.planNext(js, now);
      }
    }
    for (const [name, js] of this.jobs) {
      if (seen.has(name)) continue;
      js.cron?.stop();
      if (js.retryTimer) clearTimeout(js.retryTimer);
      this.queue = this.queue.filter((q) => q !== name);
      if (js.state === 'running') js.removed = true;
      else this.jobs.delete(name);
    }
    this.arm();
  }

  /** Once, at start: each job whose scheduled time passed while the agent was down (or whose last run was cut short) runs now. */
  catchUp(now = Date.now()): string[] {
    const caught: string[] = [];
    for (const js of this.jobs.values()) {
      const c = this.o.db.counters(js.spec.name)!;
      const last = this.o.db.lastFinishedRun(js.spec.name);
      if (last?.result === 'interrupted') {
        this.fire(js, 'catch-up', now, 'its last run was interrupted');
        caught.push(js.spec.name);
        continue;
      }
      if (!js.cron) continue;
      const anchor = Math.max(c.lastScheduled ?? 0, last?.started ?? 0, c.firstSeen);
      const missed = js.cron.nextRun(new Date(anchor));
      if (missed && missed.getTime() <= now) {
        this.fire(js, 'catch-up', now, `missed its run at ${missed.toISOString()}`);
        caught.push(js.spec.name);
      }
    }
    return caught;
  }

  /** `lifeboat run NAME` (or the watcher): queue a run now. */
  trigger(name: string, trigger: Trigger, env?: Record<string, string>): { ok: boolean; message: string } {
    const js = this.jobs.get(name);
    if (!js || js.removed) return { ok: false, message: `no job named ${name}` };
    if (env) js.env = { ...js.env, ...env };
    return this.fire(js, trigger, Date.now());
  }

  live(): Map<string, LiveJob> {
    const m = new Map<string, LiveJob>();
    for (const [name, js] of this.jobs) {
      if (js.removed) continue;
      m.set(name, { state: js.state, nextRun: js.retryAt !== undefined && (js.nextAt === null || js.retryAt < js.nextAt) ? js.retryAt : js.nextAt, ...(js.runningSince ? { runningSince: js.runningSince, attempt: js.attempt } : {}) });
    }
    return m;
  }

  specs(): JobSpec[] {
    return [...this.jobs.values()].filter((j) => !j.removed).map((j) => j.spec);
  }

  isRunning(name: string): boolean {
    return this.jobs.get(name)?.state === 'running';
  }

  /** SIGTERM: no new runs; running jobs are told to stop (they flush, release their lock and exit). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue = [];
    const waits: Promise<void>[] = [];
    for (const js of this.jobs.values()) {
      js.cron?.stop();
      if (js.retryTimer) clearTimeout(js.retryTimer);
      if (js.state === 'running') {
        js.abort?.abort();
        if (js.done) waits.push(js.done);
      }
    }
    await Promise.all(waits);
  }

  private planNext(js: JobState, now: number): void {
    if (!js.cron) {
      js.nextAt = js.nextCron = null;
      return;
    }
    const n = js.cron.nextRun(new Date(now));
    if (!n) {
      js.nextAt = js.nextCron = null;
      return;
    }
    const jitter = js.spec.jitterMs ? Math.floor((this.o.random ?? Math.random)() * js.spec.jitterMs) : 0;
    js.nextCron = n.getTime();
    js.nextAt = n.getTime() + jitter;
  }

  /** One timer for all jobs, woken at the earliest due time (and at least every 30 s, so clock jumps heal). */
  private arm(): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    let earliest = Infinity;
    for (const js of this.jobs.values()) if (js.nextAt !== null && !js.removed) earliest = Math.min(earliest, js.nextAt);
    const wait = Math.max(0, Math.min(TICK_MAX_MS, earliest - Date.now()));
    this.timer = setTimeout(() => this.tick(), wait);
  }

  private tick(): void {
    const now = Date.now();
    for (const js of this.jobs.values()) {
      if (js.removed || js.nextAt === null || js.nextAt > now) continue;
      const cronTime = js.nextCron!;
      // the next occurrence after this one (and after now: a long sleep fires once, not once per missed slot)
      this.planNext(js, Math.max(now, cronTime));
      this.o.db.setLastScheduled(js.spec.name, cronTime);
      this.fire(js, 'schedule', now);
    }
    this.arm();
  }

  private fire(js: JobState, trigger: Trigger, now: number, why?: string): { ok: boolean; message: string } {
    if (this.stopping) return { ok: false, message: 'the agent is stopping' };
    const name = js.spec.name;
    if (trigger === 'catch-up') this.o.db.setLastScheduled(name, now);
    if (js.state === 'running') {
      if (this.config.agent.overlap === 'queue' || trigger === 'manual') {
        if (js.again) {
          this.o.db.countSkipped(name);
          this.o.log(`job ${name}: ${trigger} run skipped: one more run is already queued behind the running one`);
          return { ok: false, message: `${name} is running and another run is already queued` };
        }
        js.again = trigger;
        this.o.log(`job ${name}: ${trigger} run queued: the previous run (since ${new Date(js.runningSince!).toISOString()}) still runs`);
        return { ok: true, message: `${name} is running; one more run is queued after it` };
      }
      this.o.db.countSkipped(name);
      this.o.log(`job ${name}: ${trigger} run skipped: the previous run (since ${new Date(js.runningSince!).toISOString()}) still runs`);
      return { ok: false, message: `${name} is already running` };
    }
    if (js.state === 'queued' || (js.state === 'retrying' && trigger !== 'manual')) {
      this.o.db.countSkipped(name);
      this.o.log(`job ${name}: ${trigger} run skipped: a run is already ${js.state === 'queued' ? 'waiting for its turn' : 'waiting to retry'}`);
      return { ok: false, message: `${name} is already ${js.state}` };
    }
    if (js.retryTimer) {
      clearTimeout(js.retryTimer);
      js.retryTimer = null;
      js.retryAt = undefined;
    }
    js.state = 'queued';
    js.trigger = trigger;
    if (trigger !== 'retry') js.attempt = 1;
    this.queue.push(name);
    this.o.log(`job ${name}: ${trigger}${why ? ` (${why})` : ''}: queued`);
    setImmediate(() => this.pump());
    return { ok: true, message: `${name} queued` };
  }

  private pump(): void {
    while (!this.stopping && this.running < this.config.agent.max_concurrent && this.queue.length > 0) {
      const name = this.queue.shift()!;
      const js = this.jobs.get(name);
      if (!js || js.state !== 'queued') continue;
      this.start(js);
    }
  }

  private start(js: JobState): void {
    const started = Date.now();
    js.state = 'running';
    js.runningSince = started;
    js.abort = new AbortController();
    this.running++;
    const runId = this.o.db.startRun(js.spec.name, js.trigger, js.attempt, started);
    let prep: ReturnType<NonNullable<SchedulerOptions['prepare']>>;
    try {
      prep = this.o.prepare?.(js.spec, js.trigger);
    } catch (e) {
      this.o.log(`job ${js.spec.name}: ${(e as Error).message} (a full scan instead)`);
      prep = undefined;
    }
    const spec: JobSpec = prep?.args ? { ...js.spec, args: prep.args } : js.spec;
    const env = { ...(prep?.env ?? {}), ...(js.env ?? {}) };
    js.env = undefined;
    this.o.log(`job ${spec.name}: started (${js.trigger}${js.attempt > 1 ? `, attempt ${js.attempt}` : ''}${prep?.details?.scan ? `, ${prep.details.scan === 'journal' ? `journal: ${String(prep.details.journal_paths)} changed paths` : 'full scan'}` : ''})`);
    const hc = this.config.healthchecks;
    const log = this.o.log;
    js.done = (async () => {
      void ping(hc, spec.name, 'start', '', log);
      let outcome: JobOutcome;
      try {
        outcome = await runJob(spec, {
          globals: this.o.globals(),
          log: (l) => log(`job ${l}`),
          timeoutMs: this.config.agent.job_timeout,
          signal: js.abort!.signal,
          killAfterMs: 25_000,
          env,
        });
      } catch (e) {
        outcome = { result: 'failure', exitCode: null, bytesAdded: null, snapshots: [], error: (e as Error).message, details: {}, logTail: [], permanent: false };
      }
      if (prep?.details) outcome.details = { ...prep.details, ...outcome.details };
      this.o.db.finishRun(runId, outcome);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      this.running--;
      js.runningSince = undefined;
      js.state = 'idle';
      const ok = outcome.result === 'success' || outcome.result === 'incomplete';
      if (ok) {
        log(`job ${spec.name}: ${outcome.result} in ${secs} s${outcome.bytesAdded !== null ? `, ${outcome.bytesAdded} bytes added` : ''}${outcome.snapshots.length ? `, snapshot ${outcome.snapshots.map((s) => s.slice(0, 8)).join(' ')}` : ''}`);
        void ping(hc, spec.name, 'success', outcome.logTail.join('\n'), log);
      } else {
        log(`job ${spec.name}: ${outcome.result} after ${secs} s: ${outcome.error ?? 'unknown error'}`);
      }
      try {
        this.o.onFinished?.(spec, outcome, started);
      } catch (e) {
        log(`job ${spec.name}: after the run: ${(e as Error).message}`);
      }
      if (js.removed) {
        this.jobs.delete(spec.name);
      } else if (!ok && outcome.result !== 'interrupted' && !this.stopping) {
        const r = this.config.agent.retries;
        if (!outcome.permanent && js.attempt <= r.attempts) {
          const delay = Math.min(r.max_delay, r.initial_delay * 2 ** (js.attempt - 1));
          js.attempt++;
          js.state = 'retrying';
          js.retryAt = Date.now() + delay;
          log(`job ${spec.name}: retrying in ${(delay / 1000).toFixed(0)} s (attempt ${js.attempt} of ${r.attempts + 1})`);
          js.retryTimer = setTimeout(() => {
            js.retryTimer = null;
            js.retryAt = undefined;
            js.state = 'idle';
            this.fire(js, 'retry', Date.now());
          }, delay);
        } else {
          log(`job ${spec.name}: giving up${outcome.permanent ? ' (retrying cannot fix this)' : ` after ${js.attempt} attempts`}`);
          void ping(hc, spec.name, 'fail', [outcome.error ?? '', ...outcome.logTail].join('\n'), log);
        }
      } else if (!ok && outcome.result === 'interrupted') {
        // the agent is stopping: the catch-up at the next start runs it again
      }
      if (js.state === 'idle' && js.again && !this.stopping && !js.removed) {
        const t = js.again;
        js.again = null;
        this.fire(js, t, Date.now());
      }
      js.again = js.state === 'retrying' ? null : js.again;
      this.pump();
    })();
  }
}
