/**
 * The watcher journal: chokidar watches the paths of each watched backup and records what changed
 * in the state database. A backup then knows what changed since the last one (status and metrics
 * show the pending count); with `watch.continuous` a change triggers the backup a quiet interval
 * later. Watchers miss events (overflows, changes while the agent was down, network file systems),
 * so a full scan — the backup job itself, which compares every file with the last snapshot — runs
 * at start, after any watcher error, and at least every `watch.full_scan_interval`. When inotify's
 * limits are too low for the tree, the agent says so and relies on the full scans alone.
 */
import fs from 'node:fs';
import { watch, type FSWatcher } from 'chokidar';
import type { LifeboatConfig } from '../config/schema.js';
import type { WatchSection } from '../config/agent.js';
import type { JobSpec } from './jobs.js';
import type { StateDb } from './state-db.js';
import type { Trigger } from './scheduler.js';

interface Watched {
  job: JobSpec;
  watcher: FSWatcher | null;
  pending: Set<string>;
  flushTimer: NodeJS.Timeout | null;
  quietTimer: NodeJS.Timeout | null;
  /** The watcher stopped working (limits, errors): full scans only until the next reload/start. */
  failed: boolean;
}

export interface WatcherOptions {
  db: StateDb;
  log: (msg: string, level?: 'info' | 'warn' | 'error') => void;
  trigger: (job: string, why: Trigger) => { ok: boolean; message: string };
}

export class Watcher {
  private watched = new Map<string, Watched>();
  private section!: WatchSection;
  private scanTimer: NodeJS.Timeout | null = null;
  private first = true;

  constructor(private readonly o: WatcherOptions) {}

  configure(config: LifeboatConfig, specs: JobSpec[]): void {
    this.section = config.watch;
    const want = new Map(specs.filter((j) => j.kind === 'backup' && j.watch).map((j) => [j.name, j]));
    for (const [name, w] of this.watched) {
      const next = want.get(name);
      if (!next || JSON.stringify(next.paths) !== JSON.stringify(w.job.paths)) {
        void this.closeOne(w);
        this.watched.delete(name);
      } else {
        w.job = next;
      }
    }
    for (const [name, job] of want) {
      if (this.watched.has(name)) continue;
      const w: Watched = { job, watcher: null, pending: new Set(), flushTimer: null, quietTimer: null, failed: false };
      this.watched.set(name, w);
      this.startOne(w);
      // nothing is known about what changed while nobody watched: a full scan now
      this.fullScan(w, this.first ? 'the agent started' : 'the watch began');
    }
    this.first = false;
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.scanTimer = null;
    if (this.watched.size > 0) {
      this.scanTimer = setInterval(() => this.periodic(), Math.min(60_000, Math.max(1000, this.section.full_scan_interval / 4)));
      this.scanTimer.unref();
    }
  }

  private startOne(w: Watched): void {
    const name = w.job.name;
    const paths = (w.job.paths ?? []).filter((p) => fs.existsSync(p));
    if (paths.length === 0) return;
    const watcher = watch(paths, { ignoreInitial: true, persistent: true, followSymlinks: false, ignorePermissionErrors: true });
    w.watcher = watcher;
    watcher.on('all', (_event, p) => this.changed(w, p));
    watcher.on('error', (err) => {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOSPC' || e.code === 'EMFILE') {
        this.o.log(`watch ${name}: the inotify limits are too low for this tree (${e.code}: raise fs.inotify.max_user_watches / max_user_instances, e.g. sysctl fs.inotify.max_user_watches=1048576); falling back to full scans every ${Math.round(this.section.full_scan_interval / 60000)} min`, 'warn');
        w.failed = true;
        void this.closeOne(w);
      } else {
        this.o.log(`watch ${name}: watcher error (${e.message}): a full scan will catch what it missed`, 'warn');
      }
      this.fullScan(w, 'the watcher reported an error');
    });
  }

  private changed(w: Watched, p: string): void {
    w.pending.add(p);
    w.flushTimer ??= setTimeout(() => this.flush(w), this.section.debounce);
    if (this.section.continuous !== undefined) {
      if (w.quietTimer) clearTimeout(w.quietTimer);
      w.quietTimer = setTimeout(() => {
        w.quietTimer = null;
        this.flush(w);
        const r = this.o.trigger(w.job.name, 'watch');
        if (!r.ok) this.o.log(`watch ${w.job.name}: ${r.message}; the changes wait for the next run`);
      }, this.section.continuous);
    }
  }

  private flush(w: Watched): void {
    if (w.flushTimer) clearTimeout(w.flushTimer);
    w.flushTimer = null;
    if (w.pending.size === 0) return;
    const list = [...w.pending];
    w.pending.clear();
    try {
      this.o.db.recordChanges(w.job.name, list);
    } catch (e) {
      this.o.log(`watch ${w.job.name}: cannot record changes: ${(e as Error).message}`, 'error');
    }
  }

  private fullScan(w: Watched, why: string): void {
    const r = this.o.trigger(w.job.name, 'full-scan');
    if (r.ok) this.o.log(`watch ${w.job.name}: full scan (${why})`);
  }

  /** A full scan when the last successful backup is older than the interval. */
  private periodic(): void {
    const now = Date.now();
    for (const w of this.watched.values()) {
      const c = this.o.db.counters(w.job.name);
      const last = c?.lastSuccess ?? c?.firstSeen ?? now;
      const lastRun = this.o.db.lastRun(w.job.name);
      if (lastRun?.result === 'running') continue;
      const since = Math.max(last, lastRun?.finished && lastRun.result !== 'success' ? 0 : 0);
      if (now - since >= this.section.full_scan_interval) this.fullScan(w, `no full scan for ${Math.round((now - since) / 1000)} s`);
    }
  }

  /** Extra environment for a backup: how many changed paths the journal holds (for its log). */
  prepare(job: JobSpec): Record<string, string> | undefined {
    const w = this.watched.get(job.name);
    if (!w) return undefined;
    this.flush(w);
    return { LIFEBOAT_WATCH_CHANGED: String(this.o.db.countPending(job.name)) };
  }

  /** A backup that started at `started` succeeded: the changes before it are in its snapshot. */
  backedUp(job: JobSpec, started: number): void {
    if (!this.watched.has(job.name)) return;
    this.o.db.clearChanges(job.name, started);
  }

  private async closeOne(w: Watched): Promise<void> {
    if (w.flushTimer) clearTimeout(w.flushTimer);
    if (w.quietTimer) clearTimeout(w.quietTimer);
    w.flushTimer = w.quietTimer = null;
    const watcher = w.watcher;
    w.watcher = null;
    await watcher?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.scanTimer) clearInterval(this.scanTimer);
    for (const w of this.watched.values()) {
      this.flush(w);
      await this.closeOne(w);
    }
  }
}
