import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { jobTable } from '../../src/agent/jobs.js';
import { journalScope } from '../../src/engine/journal-scope.js';
import { renderMetrics } from '../../src/agent/metrics.js';
import { formatStatus, nextRunOf, safeLocation, type StatusReport } from '../../src/agent/status.js';

const parse = (text: string) => parseConfig(text, '/etc/lifeboat/lifeboat.yaml');

describe('agent config', () => {
  it('fills defaults and builds the job table', () => {
    const c = parse(`
backups:
  www: {paths: [/var/www], schedule: "0 2 * * *", jitter: 10m, before: "echo hi", on_failure: [[logger, failed], "echo x"]}
databases:
  app: {type: sqlite, path: app.db, schedule: "@daily", nice: 5}
retention: {keep_daily: 7, keep_weekly: unlimited, schedule: "0 4 * * 0"}
check: {read_data_subset: all}
restore_test: {files: 3, databases: false}
instance_snapshots:
  rotations:
    weekly: {schedule: "0 1 * * 0", rotation: 4}
agent: {state_dir: state, retries: {attempts: 1}}
`);
    expect(c.agent).toMatchObject({ overlap: 'skip', catch_up: true, max_concurrent: 1, lock_wait: '30m', state_dir: '/etc/lifeboat/state' });
    expect(c.agent.retries).toEqual({ attempts: 1, initial_delay: 60_000, max_delay: 1_800_000 });
    expect(c.metrics).toEqual({ enabled: true, listen: '127.0.0.1:9898' });
    expect(c.watch).toMatchObject({ enabled: false, full_scan_interval: 86_400_000 });
    const jobs = jobTable(c, 'vm1');
    expect(jobs.map((j) => j.name)).toEqual(['www', 'db:app', 'retention', 'check', 'restore_test', 'instance_snapshot:weekly']);
    const www = jobs[0]!;
    expect(www).toMatchObject({ kind: 'backup', schedule: '0 2 * * *', jitterMs: 600_000, nice: 10, ionice: 'best-effort:7', before: ['echo hi'] });
    expect(www.onFailure).toEqual([['logger', 'failed'], 'echo x']);
    expect(www.args).toEqual(['backup', '--json', '--retry-lock', '30m', '--tag', 'job:www', '--host', 'vm1', '--', '/var/www']);
    expect(jobs[1]).toMatchObject({ kind: 'db', nice: 5, args: ['db', 'dump', '--json', '--retry-lock', '30m', '--host', 'vm1', 'app'] });
    expect(jobs[2]!.args).toEqual(['forget', '--json', '--retry-lock', '30m', '--keep-daily', '7', '--keep-weekly', 'unlimited', '--host', 'vm1', '--group-by', 'host,paths', '--prune']);
    expect(jobs[3]!.args).toEqual(['check', '--json', '--retry-lock', '30m', '--read-data']);
    expect(jobs[3]!.schedule).toBeUndefined();
    expect(jobs[4]!.args).toContain('--no-databases');
    expect(jobs[5]).toMatchObject({ kind: 'instance-snapshot', nice: 0, schedule: '0 1 * * 0' });
  });

  it('names the line and field of each mistake', () => {
    expect(() => parse('backups:\n  x:\n    paths: [/a]\n    schedule: "* * *"\n')).toThrow(/lifeboat\.yaml:4: backups\.x\.schedule: invalid cron expression/);
    expect(() => parse('backups:\n  x:\n    paths: [a]\n')).toThrow(/lifeboat\.yaml:3: backups\.x\.paths\.0: must be an absolute path/);
    expect(() => parse('backups:\n  x:\n    paths: [/a]\n    ionice: fast\n')).toThrow(/backups\.x\.ionice: expected idle, best-effort/);
    expect(() => parse('agent:\n  overlap: maybe\n')).toThrow(/lifeboat\.yaml:2: agent\.overlap: expected "skip" or "queue"/);
    expect(() => parse('healthchecks:\n  jobs:\n    x: not-a-url\n')).toThrow(/healthchecks\.jobs\.x: an http\(s\) URL/);
    expect(() => parse('watch:\n  continuous: soon\n')).toThrow(/watch\.continuous: invalid duration/);
    expect(() => parse('retention:\n  prune: true\n')).toThrow(/retention: no keep rule/);
  });
});

describe('journal scope', () => {
  it('reads the directories holding changes, their ancestors, and everything under a changed directory', () => {
    const scope = journalScope(['/srv/a/b/file.txt', '/srv/new-dir']);
    expect(scope('/srv')).toBe(true);
    expect(scope('/srv/a')).toBe(true);
    expect(scope('/srv/a/b')).toBe(true);
    expect(scope('/srv/a/c')).toBe(false);
    expect(scope('/srv/x')).toBe(false);
    expect(scope('/srv/new-dir')).toBe(true);
    expect(scope('/srv/new-dir/deep/er')).toBe(true);
    expect(scope('/srv/new-directory')).toBe(false);
    expect(journalScope([])('/srv')).toBe(false);
  });
});

describe('status and metrics', () => {
  const report: StatusReport = {
    agent: { running: true, pid: 1, started: '2026-01-01T00:00:00.000Z', metrics: '127.0.0.1:9898', state_dir: '/var/lib/lifeboat' },
    jobs: [{
      name: 'www', kind: 'backup', schedule: '0 2 * * *', state: 'idle', next_run: '2026-01-02T02:00:00.000Z',
      last_run: { started: '2026-01-01T02:00:00.000Z', finished: '2026-01-01T02:01:00.000Z', result: 'failure', trigger: 'retry', attempt: 2, duration_seconds: 60, bytes_added: null, snapshots: [], error: 'exit code 1: boom', details: {} },
      last_success: '2025-12-31T02:01:00.000Z', runs_total: 10, failures_total: 2, consecutive_failures: 2, skipped_total: 1,
    }],
    repository: { location: 's3:https://host/bucket', reachable: true, snapshots: 12 },
  };

  it('renders Prometheus text', () => {
    const t = renderMetrics(report);
    expect(t).toContain('lifeboat_job_last_success_timestamp_seconds{job="www",kind="backup"} 1767146460\n');
    expect(t).toContain('lifeboat_job_failures_total{job="www",kind="backup"} 2\n');
    expect(t).toContain('lifeboat_job_last_success{job="www",kind="backup"} 0\n');
    expect(t).toContain('lifeboat_repository_snapshots 12\n');
    expect(t).not.toMatch(/lifeboat_job_last_bytes_added\{/);
  });

  it('prints one line per job with its error', () => {
    const t = formatStatus(report, Date.parse('2026-01-01T03:00:00.000Z'));
    expect(t).toContain('www: last failure 59m ago (60.0 s); next in 23h, 2 failures in a row');
    expect(t).toContain('    exit code 1: boom');
  });

  it('computes next runs (seconds too) and hides credentials in locations', () => {
    expect(nextRunOf('*/5 * * * * *', new Date('2026-01-01T00:00:01Z'))).toBe(Date.parse('2026-01-01T00:00:05Z'));
    expect(nextRunOf(undefined)).toBeNull();
    expect(safeLocation('s3:https://user:pw@host/b')).toBe('s3:https://host/b');
  });
});
