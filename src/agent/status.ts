/**
 * The status report (`lifeboat status`, GET /status on the agent's socket, the metrics): per job the
 * last run, the next run and the counters, from the state database plus, when the agent answers,
 * what it is doing right now.
 */
import { Cron } from 'croner';
import type { JobSpec } from './jobs.js';
import type { RunRecord, StateDb } from './state-db.js';

export type LiveState = 'idle' | 'queued' | 'running' | 'retrying';

export interface LiveJob {
  state: LiveState;
  nextRun: number | null;
  /** When the current run started. */
  runningSince?: number;
  attempt?: number;
}

export interface JobStatus {
  name: string;
  kind: string;
  schedule: string | null;
  state: LiveState | 'unknown';
  running_since?: string | null;
  next_run: string | null;
  last_run: RunJson | null;
  last_success: string | null;
  runs_total: number;
  failures_total: number;
  consecutive_failures: number;
  skipped_total: number;
  pending_changes?: number;
}

export interface RunJson {
  started: string;
  finished: string | null;
  result: string;
  trigger: string;
  attempt: number;
  duration_seconds: number | null;
  bytes_added: number | null;
  snapshots: string[];
  error: string | null;
  details: Record<string, unknown>;
}

export interface StatusReport {
  agent: { running: boolean; pid?: number; started?: string; config?: string | null; metrics?: string | null; socket?: string; state_dir: string; version?: string };
  jobs: JobStatus[];
  repository?: { location: string; reachable: boolean; error?: string; snapshots?: number; size_bytes?: number; as_of?: string };
}

const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null);

export function runJson(r: RunRecord): RunJson {
  return {
    started: iso(r.started)!,
    finished: iso(r.finished),
    result: r.result,
    trigger: r.trigger,
    attempt: r.attempt,
    duration_seconds: r.durationMs === null ? null : r.durationMs / 1000,
    bytes_added: r.bytesAdded,
    snapshots: r.snapshots,
    error: r.error,
    details: r.details,
  };
}

/** The next time a cron expression fires after `from` (null without a schedule). */
export function nextRunOf(schedule: string | undefined, from = new Date()): number | null {
  if (!schedule) return null;
  const c = new Cron(schedule, { paused: true });
  const n = c.nextRun(from);
  c.stop();
  return n ? n.getTime() : null;
}

export function jobStatuses(jobs: JobSpec[], db: StateDb | null, live?: Map<string, LiveJob>): JobStatus[] {
  return jobs.map((j) => {
    const c = db?.counters(j.name) ?? null;
    // the last finished run (a running one shows in `state` and `running_since`)
    const last = db?.lastFinishedRun(j.name) ?? null;
    const l = live?.get(j.name);
    const s: JobStatus = {
      name: j.name,
      kind: j.kind,
      schedule: j.schedule ?? null,
      state: l?.state ?? 'unknown',
      ...(l?.runningSince ? { running_since: iso(l.runningSince) } : {}),
      next_run: iso(l ? l.nextRun : nextRunOf(j.schedule)),
      last_run: last ? runJson(last) : null,
      last_success: iso(c?.lastSuccess),
      runs_total: c?.runsTotal ?? 0,
      failures_total: c?.failuresTotal ?? 0,
      consecutive_failures: c?.consecutiveFailures ?? 0,
      skipped_total: c?.skippedTotal ?? 0,
    };
    if (j.watch && db) s.pending_changes = db.countPending(j.name);
    return s;
  });
}

/** The repository statistics a check or restore test last reported (kept in the state database). */
export function repositoryStats(db: StateDb | null): { snapshots?: number; size_bytes?: number; as_of?: string } {
  const raw = db?.getMeta('repository_stats');
  if (!raw) return {};
  try {
    return JSON.parse(raw) as { snapshots?: number; size_bytes?: number; as_of?: string };
  } catch {
    return {};
  }
}

/** A repository location fit for printing: no user:password@ in a URL. */
export function safeLocation(loc: string): string {
  return loc.replace(/(\/\/)[^/@]*@/, '$1');
}

function fmtAgo(t: string | null, now: number): string {
  if (!t) return 'never';
  const ms = Date.parse(t) - now;
  const a = Math.abs(ms);
  const unit = a < 120_000 ? `${Math.round(a / 1000)}s` : a < 7_200_000 ? `${Math.round(a / 60_000)}m` : a < 172_800_000 ? `${Math.round(a / 3_600_000)}h` : `${Math.round(a / 86_400_000)}d`;
  return ms < 0 ? `${unit} ago` : `in ${unit}`;
}

function fmtBytes(n: number | null): string {
  if (n === null) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`;
}

/** The human form of a status report. */
export function formatStatus(r: StatusReport, now = Date.now()): string {
  const lines: string[] = [];
  lines.push(r.agent.running
    ? `agent: running (pid ${r.agent.pid}, since ${r.agent.started})${r.agent.metrics ? `, metrics on http://${r.agent.metrics}/metrics` : ''}`
    : `agent: not running (from the state database in ${r.agent.state_dir})`);
  if (r.repository) {
    const rep = r.repository;
    const stats = rep.snapshots !== undefined ? `, ${rep.snapshots} snapshots${rep.size_bytes !== undefined ? `, ${fmtBytes(rep.size_bytes)}` : ''} (as of ${rep.as_of})` : '';
    lines.push(`repository: ${rep.location}: ${rep.reachable ? 'reachable' : `NOT reachable: ${rep.error}`}${stats}`);
  }
  if (r.jobs.length === 0) lines.push('no jobs configured');
  for (const j of r.jobs) {
    const last = j.last_run;
    const lastText = last
      ? `last ${last.result} ${fmtAgo(last.finished ?? last.started, now)}${last.duration_seconds !== null ? ` (${last.duration_seconds.toFixed(1)} s` + (last.bytes_added !== null ? `, ${fmtBytes(last.bytes_added)} added)` : ')') : ''}`
      : 'never ran';
    const state = j.state === 'unknown' || j.state === 'idle' ? '' : ` [${j.state}]`;
    const next = j.next_run ? `next ${fmtAgo(j.next_run, now)}` : j.schedule ? 'next: -' : 'no schedule';
    const fails = j.consecutive_failures > 0 ? `, ${j.consecutive_failures} failure${j.consecutive_failures > 1 ? 's' : ''} in a row` : '';
    const pending = j.pending_changes ? `, ${j.pending_changes} changed paths pending` : '';
    lines.push(`${j.name}${state}: ${lastText}; ${next}${fails}${pending}`);
    if (last?.error && last.result !== 'success') lines.push(`    ${last.error}`);
  }
  return lines.join('\n');
}
