/** Prometheus text exposition (version 0.0.4) of the agent's state. */
import type { StatusReport } from './status.js';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const secs = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : null);

export function renderMetrics(r: StatusReport): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number | null]>) => {
    const present = samples.filter((s): s is [Record<string, string>, number] => s[1] !== null && Number.isFinite(s[1]));
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of present) {
      const l = Object.entries(labels).map(([k, val]) => `${k}="${esc(val)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${v}`);
    }
  };
  const jl = (j: { name: string; kind: string }) => ({ job: j.name, kind: j.kind });
  family('lifeboat_agent_up', 'gauge', 'The agent is running.', [[{}, r.agent.running ? 1 : 0]]);
  family('lifeboat_job_last_success_timestamp_seconds', 'gauge', 'When the job last succeeded (Unix time).', r.jobs.map((j) => [jl(j), secs(j.last_success)]));
  family('lifeboat_job_last_run_timestamp_seconds', 'gauge', 'When the job last finished (Unix time).', r.jobs.map((j) => [jl(j), secs(j.last_run?.finished)]));
  family('lifeboat_job_last_success', 'gauge', 'Whether the last finished run succeeded (1) or failed (0).', r.jobs.map((j) => [jl(j), j.last_run && j.last_run.result !== 'running' ? (j.last_run.result === 'success' || j.last_run.result === 'incomplete' ? 1 : 0) : null]));
  family('lifeboat_job_last_duration_seconds', 'gauge', 'How long the last finished run took.', r.jobs.map((j) => [jl(j), j.last_run?.duration_seconds ?? null]));
  family('lifeboat_job_last_bytes_added', 'gauge', 'Bytes the last run added to the repository (before compression).', r.jobs.map((j) => [jl(j), j.last_run?.bytes_added ?? null]));
  family('lifeboat_job_runs_total', 'counter', 'Finished runs.', r.jobs.map((j) => [jl(j), j.runs_total]));
  family('lifeboat_job_failures_total', 'counter', 'Failed runs (each attempt).', r.jobs.map((j) => [jl(j), j.failures_total]));
  family('lifeboat_job_consecutive_failures', 'gauge', 'Failed runs since the last success.', r.jobs.map((j) => [jl(j), j.consecutive_failures]));
  family('lifeboat_job_skipped_total', 'counter', 'Scheduled runs skipped because the previous one still ran.', r.jobs.map((j) => [jl(j), j.skipped_total]));
  family('lifeboat_job_running', 'gauge', 'The job is running now.', r.jobs.map((j) => [jl(j), j.state === 'running' ? 1 : 0]));
  family('lifeboat_job_next_run_timestamp_seconds', 'gauge', 'When the job runs next (Unix time).', r.jobs.map((j) => [jl(j), secs(j.next_run)]));
  family('lifeboat_watch_pending_changes', 'gauge', 'Changed paths the watcher recorded since the last backup.', r.jobs.filter((j) => j.pending_changes !== undefined).map((j) => [jl(j), j.pending_changes!]));
  const rt = r.jobs.find((j) => j.kind === 'restore-test');
  if (rt) {
    family('lifeboat_restore_test_last_success_timestamp_seconds', 'gauge', 'When a restore test last verified every sampled byte.', [[{}, secs(rt.last_success)]]);
    const files = rt.last_run?.details.files_verified;
    family('lifeboat_restore_test_last_files_verified', 'gauge', 'Files the last restore test verified.', [[{}, typeof files === 'number' ? files : null]]);
  }
  const inst = r.jobs.filter((j) => j.kind === 'instance-snapshot');
  if (inst.length) family('lifeboat_instance_snapshot_last_success_timestamp_seconds', 'gauge', 'When an instance snapshot last succeeded.', inst.map((j) => [jl(j), secs(j.last_success)]));
  if (r.repository) {
    family('lifeboat_repository_reachable', 'gauge', 'The repository answered the last probe.', [[{}, r.repository.reachable ? 1 : 0]]);
    family('lifeboat_repository_snapshots', 'gauge', 'Snapshots in the repository (as of the last check or restore test).', [[{}, r.repository.snapshots ?? null]]);
    family('lifeboat_repository_size_bytes', 'gauge', 'Bytes of packs in the repository (as of the last check or restore test).', [[{}, r.repository.size_bytes ?? null]]);
  }
  return out.join('\n') + '\n';
}
