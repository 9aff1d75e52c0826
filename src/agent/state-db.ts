/**
 * The agent's state database (SQLite, `<state dir>/agent.db`): every run of every job (so missed
 * runs are caught up after downtime, and `lifeboat status` works with the agent stopped), per-job
 * counters for the metrics, and the watcher journal of changed paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type RunResult = 'success' | 'failure' | 'incomplete' | 'skipped' | 'running' | 'interrupted';

export interface RunRecord {
  id: number;
  job: string;
  /** Why it ran: schedule, catch-up, retry, manual, watch. */
  trigger: string;
  attempt: number;
  started: number;
  finished: number | null;
  result: RunResult;
  durationMs: number | null;
  bytesAdded: number | null;
  snapshots: string[];
  error: string | null;
  /** Job-specific numbers (files scanned, packs checked, files verified...). */
  details: Record<string, unknown>;
}

export interface JobCounters {
  job: string;
  firstSeen: number;
  lastScheduled: number | null;
  lastSuccess: number | null;
  failuresTotal: number;
  runsTotal: number;
  skippedTotal: number;
  consecutiveFailures: number;
}

interface RunRow {
  id: number; job: string; trigger: string; attempt: number; started: number; finished: number | null; result: RunResult;
  duration_ms: number | null; bytes_added: number | null; snapshots: string; error: string | null; details: string;
}

export class StateDb {
  readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(dir: string, opts: { readonly?: boolean } = {}): StateDb {
    const file = path.join(dir, 'agent.db');
    if (opts.readonly) {
      return new StateDb(new Database(file, { readonly: true, fileMustExist: true }));
    }
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Database(file);
    // run history and errors are the owner's only; SQLite gives -wal and -shm the database's mode
    for (const f of [file, `${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, trigger TEXT NOT NULL, attempt INTEGER NOT NULL,
        started INTEGER NOT NULL, finished INTEGER, result TEXT NOT NULL, duration_ms INTEGER, bytes_added INTEGER,
        snapshots TEXT NOT NULL DEFAULT '[]', error TEXT, details TEXT NOT NULL DEFAULT '{}');
      CREATE INDEX IF NOT EXISTS runs_job ON runs (job, started);
      CREATE TABLE IF NOT EXISTS jobs (
        job TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, last_scheduled INTEGER, last_success INTEGER,
        failures_total INTEGER NOT NULL DEFAULT 0, runs_total INTEGER NOT NULL DEFAULT 0,
        skipped_total INTEGER NOT NULL DEFAULT 0, consecutive_failures INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS journal (
        job TEXT NOT NULL, path TEXT NOT NULL, changed INTEGER NOT NULL, PRIMARY KEY (job, path));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    return new StateDb(db);
  }

  close(): void {
    this.db.close();
  }

  /** Registers a job (first_seen anchors catch-up for a job that never ran). */
  touchJob(job: string, now = Date.now()): JobCounters {
    this.db.prepare('INSERT OR IGNORE INTO jobs (job, first_seen) VALUES (?, ?)').run(job, now);
    return this.counters(job)!;
  }

  counters(job: string): JobCounters | null {
    const r = this.db.prepare('SELECT * FROM jobs WHERE job = ?').get(job) as Record<string, number | string | null> | undefined;
    if (!r) return null;
    return {
      job: r.job as string,
      firstSeen: r.first_seen as number,
      lastScheduled: r.last_scheduled as number | null,
      lastSuccess: r.last_success as number | null,
      failuresTotal: r.failures_total as number,
      runsTotal: r.runs_total as number,
      skippedTotal: r.skipped_total as number,
      consecutiveFailures: r.consecutive_failures as number,
    };
  }

  allCounters(): JobCounters[] {
    const jobs = this.db.prepare('SELECT job FROM jobs ORDER BY job').all() as Array<{ job: string }>;
    return jobs.map((j) => this.counters(j.job)!);
  }

  /** The scheduled time a run was started for (catch-up compares the schedule with it). */
  setLastScheduled(job: string, t: number): void {
    this.db.prepare('UPDATE jobs SET last_scheduled = ? WHERE job = ?').run(t, job);
  }

  countSkipped(job: string): void {
    this.db.prepare('UPDATE jobs SET skipped_total = skipped_total + 1 WHERE job = ?').run(job);
  }

  startRun(job: string, trigger: string, attempt: number, now = Date.now()): number {
    const r = this.db.prepare("INSERT INTO runs (job, trigger, attempt, started, result) VALUES (?, ?, ?, ?, 'running')").run(job, trigger, attempt, now);
    return Number(r.lastInsertRowid);
  }

  finishRun(id: number, r: { result: RunResult; bytesAdded?: number | null; snapshots?: string[]; error?: string | null; details?: Record<string, unknown> }, now = Date.now()): void {
    const row = this.db.prepare('SELECT job, started FROM runs WHERE id = ?').get(id) as { job: string; started: number };
    const tx = this.db.transaction(() => {
      this.db.prepare('UPDATE runs SET finished = ?, result = ?, duration_ms = ?, bytes_added = ?, snapshots = ?, error = ?, details = ? WHERE id = ?')
        .run(now, r.result, now - row.started, r.bytesAdded ?? null, JSON.stringify(r.snapshots ?? []), r.error ?? null, JSON.stringify(r.details ?? {}), id);
      if (r.result === 'success' || r.result === 'incomplete') {
        this.db.prepare('UPDATE jobs SET runs_total = runs_total + 1, last_success = ?, consecutive_failures = 0 WHERE job = ?').run(now, row.job);
      } else if (r.result === 'interrupted') {
        // stopped by the agent's shutdown, not a failure of the job: it runs again at the next start
      } else {
        this.db.prepare('UPDATE jobs SET runs_total = runs_total + 1, failures_total = failures_total + 1, consecutive_failures = consecutive_failures + 1 WHERE job = ?').run(row.job);
      }
      // keep the last 200 runs of each job
      this.db.prepare('DELETE FROM runs WHERE job = ? AND id <= (SELECT id FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1 OFFSET 200)').run(row.job, row.job);
    });
    tx();
  }

  /** Runs left 'running' by an agent that died: marked interrupted. */
  markInterrupted(now = Date.now()): number {
    return this.db.prepare("UPDATE runs SET result = 'interrupted', finished = ?, error = 'the agent stopped during the run' WHERE result = 'running'").run(now).changes;
  }

  lastRun(job: string): RunRecord | null {
    const r = this.db.prepare("SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1").get(job) as RunRow | undefined;
    return r ? toRecord(r) : null;
  }

  lastFinishedRun(job: string): RunRecord | null {
    const r = this.db.prepare("SELECT * FROM runs WHERE job = ? AND result != 'running' ORDER BY id DESC LIMIT 1").get(job) as RunRow | undefined;
    return r ? toRecord(r) : null;
  }

  runs(job?: string, limit = 50): RunRecord[] {
    const rows = (job
      ? this.db.prepare('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit)
      : this.db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit)) as RunRow[];
    return rows.map(toRecord);
  }

  getMeta(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // ---- the watcher journal

  recordChanges(job: string, paths: Iterable<string>, now = Date.now()): void {
    const stmt = this.db.prepare('INSERT INTO journal (job, path, changed) VALUES (?, ?, ?) ON CONFLICT (job, path) DO UPDATE SET changed = excluded.changed');
    const tx = this.db.transaction((list: string[]) => {
      for (const p of list) stmt.run(job, p, now);
    });
    tx([...paths]);
  }

  pendingChanges(job: string): Array<{ path: string; changed: number }> {
    return this.db.prepare('SELECT path, changed FROM journal WHERE job = ? ORDER BY path').all(job) as Array<{ path: string; changed: number }>;
  }

  countPending(job: string): number {
    return (this.db.prepare('SELECT count(*) AS n FROM journal WHERE job = ?').get(job) as { n: number }).n;
  }

  /** Forgets the changes a backup that started at `before` has covered. */
  clearChanges(job: string, before: number): void {
    this.db.prepare('DELETE FROM journal WHERE job = ? AND changed < ?').run(job, before);
  }
}

function toRecord(r: RunRow): RunRecord {
  return {
    id: r.id, job: r.job, trigger: r.trigger, attempt: r.attempt, started: r.started, finished: r.finished, result: r.result,
    durationMs: r.duration_ms, bytesAdded: r.bytes_added, snapshots: JSON.parse(r.snapshots) as string[], error: r.error,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
}
