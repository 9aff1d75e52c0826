/** The check job: `lifeboat check` with the configured read-data subset, under a shared lock. */
import type { CheckSection } from '../config/maintenance.js';

export function checkArgs(c: CheckSection): string[] {
  const a = ['check', '--json', '--retry-lock', c.lock_wait];
  if (c.read_data_subset === 'all') a.push('--read-data');
  else if (c.read_data_subset !== 'none') a.push('--read-data-subset', c.read_data_subset);
  return a;
}
