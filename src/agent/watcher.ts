/**
 * The watcher journal: a directory-level watcher (dir-watch.ts: one inotify watch per directory) watches the paths of each watched backup and records what changed
 * in the state database. A backup then knows what changed since the last one (status and metrics
 * show the pending count); with `watch.continuous` a change triggers the backup a quiet interval
 * later. Watchers miss events (overflows, changes while the agent was down, network file systems),
 * so a full scan — the backup job itself, which compares every file with the last snapshot — runs
 * at start, after any watcher error, and at least every `watch.full_scan_interval`. When inotify's
 * limits are too low for the tree, the agent says so and relies on the full scans alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DirWatch } from './dir-watch.js';
import type { LifeboatConfig } from '../config/schema.js';
import type { WatchSection } from '../config/agent.js';
import type { JobSpec } from './jobs.js';
import type { StateDb } from './state-db.js';
import type { Trigger } from './scheduler.js';

interface Watched {
  job: JobSpec;
  watcher: DirWatch | null;
  pending: Set<string>;
  flushTimer: NodeJS.Timeout | null;
  quietTimer: NodeJS.Timeout | null;
  /** The watcher stopped working (limits, errors): full scans only until the next reload/start. */
  failed: boolean;
  /** When the watcher had every directory watched: changes after it are in the journal. */
  readyAt: number | null;
}

export interface Prepared {
  args?: string[];
  env?: Record<string, string>;
  details?: Record<string, unknown>;
}

export interface WatcherOptions {
  db: StateDb;
  /** Where the journal files handed to backups are written. */
  dir: string;
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
      const w: Watched = { job, watcher: null, pending: new Set(), flushTimer: null, quietTimer: null, failed: false, readyAt: null };
      this.watched.set(name, w);
      // nothing is known about what changed while nobody watched: a full scan once the watcher is
      // ready (from then on the journal has every change)
      const why = this.first ? 'the agent started' : 'the watch began';
      if (!this.startOne(w, why)) this.fullScan(w, why);
    }
    this.first = false;
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.scanTimer = null;
    if (this.watched.size > 0) {
      this.scanTimer = setInterval(() => this.periodic(), Math.min(60_000, Math.max(1000, this.section.full_scan_interval / 4)));
      this.scanTimer.unref();
    }
  }

  /** Starts watching; false when there is nothing to watch. */
  private startOne(w: Watched, why: string): boolean {
    const name = w.job.name;
    const paths = (w.job.paths ?? []).filter((p) => fs.existsSync(p));
    if (paths.length === 0) return false;
    const watcher = new DirWatch({
      onChange: (p) => this.changed(w, p),
      onError: (e, limit) => {
        if (limit) {
          this.o.log(`watch ${name}: the inotify limits are too low for this tree (${e.code} after ${watcher.size} directories: raise fs.inotify.max_user_watches / max_user_instances, e.g. sysctl fs.inotify.max_user_watches=1048576); falling back to full scans every ${Math.round(this.section.full_scan_interval / 60000)} min`, 'warn');
          w.failed = true;
          void this.closeOne(w);
        } else {
          this.o.log(`watch ${name}: watcher error (${e.message}): a full scan will catch what it missed`, 'warn');
          // the journal may have a gap: journal-driven backups only after the next full scan
          w.readyAt = Date.now();
        }
        this.fullScan(w, 'the watcher reported an error');
      },
    });
    w.watcher = watcher;
    void watcher.start(paths).then(() => {
      if (w.failed || w.watcher !== watcher) return;
      w.readyAt = Date.now();
      this.o.log(`watch ${name}: watching ${watcher.size} directories`);
      this.fullScan(w, why);
    });
    return true;
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

  private lastFullScan(name: string): number | null {
    const v = this.o.db.getMeta(`full_scan:${name}`);
    return v ? Number(v) : null;
  }

  /** A full scan when the last one is older than the interval. */
  private periodic(): void {
    const now = Date.now();
    for (const w of this.watched.values()) {
      const last = this.lastFullScan(w.job.name) ?? this.o.db.counters(w.job.name)?.firstSeen ?? now;
      if (now - last >= this.section.full_scan_interval) this.fullScan(w, `the last full scan was ${Math.round((now - last) / 1000)} s ago`);
    }
  }

  /**
   * How a watched backup runs: journal-driven (only the directories holding changed paths are read)
   * when the watcher has been watching since before the parent snapshot was started and a full
   * scan is not due; else a full scan.
   */
  prepare(job: JobSpec, trigger: string): Prepared | undefined {
    const w = this.watched.get(job.name);
    if (!w) return undefined;
    this.flush(w);
    const pending = this.o.db.pendingChanges(job.name).map((c) => c.path);
    const full = (why: string): Prepared => ({ details: { scan: 'full', scan_reason: why, journal_paths: pending.length } });
    if (trigger !== 'watch' && trigger !== 'schedule') return full(`a ${trigger} run`);
    if (w.failed || !w.watcher) return full('the watcher is not running');
    if (w.readyAt === null) return full('the watcher is still starting');
    const lastFull = this.lastFullScan(job.name);
    if (lastFull === null) return full('no full scan yet');
    if (Date.now() - lastFull >= this.section.full_scan_interval) return full('a full scan is due');
    const parent = this.o.db.runs(job.name, 50).find((r) => r.result === 'success' || r.result === 'incomplete');
    if (!parent || parent.started < w.readyAt) return full('the last backup started before the watcher was ready');
    const file = path.join(this.o.dir, `journal-${job.name}.paths`);
    fs.writeFileSync(file, pending.join('\0'), { mode: 0o600 });
    const i = job.args.indexOf('--');
    const args = i < 0 ? [...job.args, '--changed-from', file] : [...job.args.slice(0, i), '--changed-from', file, ...job.args.slice(i)];
    return { args, env: { LIFEBOAT_WATCH_CHANGED: String(pending.length) }, details: { scan: 'journal', journal_paths: pending.length } };
  }

  /** A backup that started at `started` succeeded: the changes before it are in its snapshot. */
  backedUp(job: JobSpec, started: number, scan: unknown): void {
    if (!this.watched.has(job.name)) return;
    this.o.db.clearChanges(job.name, started);
    if (scan === 'full') this.o.db.setMeta(`full_scan:${job.name}`, String(started));
  }

  private async closeOne(w: Watched): Promise<void> {
    if (w.flushTimer) clearTimeout(w.flushTimer);
    if (w.quietTimer) clearTimeout(w.quietTimer);
    w.flushTimer = w.quietTimer = null;
    const watcher = w.watcher;
    w.watcher = null;
    watcher?.close();
  }

  async close(): Promise<void> {
    if (this.scanTimer) clearInterval(this.scanTimer);
    for (const w of this.watched.values()) {
      this.flush(w);
      await this.closeOne(w);
    }
  }
}
