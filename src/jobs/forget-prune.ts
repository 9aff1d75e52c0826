/**
 * The retention job: `lifeboat forget` with the config's keep rules, `--prune` by default, waiting
 * for the exclusive lock while another host backs up or prunes (--retry-lock).
 */
import os from 'node:os';
import type { RetentionSection } from '../config/maintenance.js';

export function forgetPruneArgs(r: RetentionSection, hostname = os.hostname()): string[] {
  const a = ['forget', '--json', '--retry-lock', r.lock_wait];
  const n = (flag: string, v: number | undefined) => v !== undefined && a.push(flag, v === -1 ? 'unlimited' : String(v));
  const d = (flag: string, v: string | undefined) => v !== undefined && a.push(flag, v);
  n('--keep-last', r.keep_last);
  n('--keep-hourly', r.keep_hourly);
  n('--keep-daily', r.keep_daily);
  n('--keep-weekly', r.keep_weekly);
  n('--keep-monthly', r.keep_monthly);
  n('--keep-yearly', r.keep_yearly);
  d('--keep-within', r.keep_within);
  d('--keep-within-hourly', r.keep_within_hourly);
  d('--keep-within-daily', r.keep_within_daily);
  d('--keep-within-weekly', r.keep_within_weekly);
  d('--keep-within-monthly', r.keep_within_monthly);
  d('--keep-within-yearly', r.keep_within_yearly);
  for (const t of r.keep_tag) a.push('--keep-tag', t);
  if (r.host_only) a.push('--host', hostname);
  a.push('--group-by', r.group_by);
  if (r.prune) {
    a.push('--prune');
    d('--max-unused', r.max_unused);
    d('--max-repack-size', r.max_repack_size);
  }
  return a;
}
