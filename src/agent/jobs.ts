/**
 * The agent's job table, built from the config: each job is a `lifeboat` command line (run as a child
 * process, so a crash, a leak or a stuck native call cannot take the agent down, and nice/ionice
 * apply to everything it does), plus its schedule, hooks and priority.
 */
import os from 'node:os';
import type { LifeboatConfig } from '../config/schema.js';
import type { HookCommands } from '../config/schedule.js';
import { forgetPruneArgs } from '../jobs/forget-prune.js';
import { checkArgs } from '../jobs/check.js';

export type JobKind = 'backup' | 'db' | 'retention' | 'check' | 'restore-test' | 'instance-snapshot';

export interface JobSpec {
  /** A backup's name, db:NAME, retention, check, restore_test, instance_snapshot:TYPE. */
  name: string;
  kind: JobKind;
  /** lifeboat arguments (after the global options). */
  args: string[];
  schedule?: string;
  jitterMs?: number;
  before: HookCommands;
  after: HookCommands;
  onFailure: HookCommands;
  nice: number;
  ionice: string;
  /** For backups: the watched paths. */
  paths?: string[];
  watch?: boolean;
}

interface Scheduled {
  schedule?: string;
  jitter?: number;
  before?: HookCommands;
  after?: HookCommands;
  on_failure?: HookCommands;
  nice?: number;
  ionice?: string;
}

export function jobTable(c: LifeboatConfig, hostname = os.hostname()): JobSpec[] {
  const jobs: JobSpec[] = [];
  const base = (name: string, kind: JobKind, args: string[], s: Scheduled, heavy: boolean): JobSpec => ({
    name,
    kind,
    args,
    ...(s.schedule ? { schedule: s.schedule } : {}),
    ...(s.jitter ? { jitterMs: s.jitter } : {}),
    before: s.before ?? [],
    after: s.after ?? [],
    onFailure: s.on_failure ?? [],
    nice: s.nice ?? c.agent.nice ?? (heavy ? 10 : 0),
    ionice: s.ionice ?? c.agent.ionice ?? (heavy ? 'best-effort:7' : 'best-effort:4'),
  });
  for (const [name, b] of Object.entries(c.backups)) {
    const args = ['backup', '--json', '--retry-lock', c.agent.lock_wait, '--tag', `job:${name}`];
    for (const t of b.tags) args.push('--tag', t);
    for (const e of b.exclude) args.push('--exclude', e);
    for (const e of b.iexclude) args.push('--iexclude', e);
    for (const e of b.exclude_file) args.push('--exclude-file', e);
    if (b.exclude_caches) args.push('--exclude-caches');
    if (b.exclude_larger_than) args.push('--exclude-larger-than', b.exclude_larger_than);
    if (b.one_file_system) args.push('--one-file-system');
    args.push('--host', hostname, '--', ...b.paths);
    jobs.push({ ...base(name, 'backup', args, b, true), paths: b.paths, watch: b.watch ?? c.watch.enabled });
  }
  for (const [name, d] of Object.entries(c.databases)) {
    jobs.push(base(`db:${name}`, 'db', ['db', 'dump', '--json', '--retry-lock', c.agent.lock_wait, '--host', hostname, name], d as Scheduled, true));
  }
  if (c.retention) jobs.push(base('retention', 'retention', forgetPruneArgs(c.retention, hostname), c.retention, true));
  if (c.check) jobs.push(base('check', 'check', checkArgs(c.check), c.check, true));
  if (c.restore_test) {
    const r = c.restore_test;
    const args = ['restore-test', '--json', '--retry-lock', r.lock_wait, '--files', String(r.files), '--max-bytes', r.max_bytes, '--host', hostname];
    if (!r.databases) args.push('--no-databases');
    jobs.push(base('restore_test', 'restore-test', args, r, true));
  }
  for (const [type, rot] of Object.entries(c.instance_snapshots?.rotations ?? {})) {
    const args = ['instance-snapshot', 'create', '--json', '--type', type, '--rotation', String(rot.rotation), '--reason', 'scheduled by lifeboat agent'];
    if (rot.wait === true) args.push('--wait');
    if (rot.wait === false) args.push('--no-wait');
    if (rot.timeout) args.push('--timeout', rot.timeout);
    jobs.push(base(`instance_snapshot:${type}`, 'instance-snapshot', args, { schedule: rot.schedule }, false));
  }
  return jobs;
}
