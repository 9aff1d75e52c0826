import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { filterSnapshots, type SnapshotEntry } from '../../engine/snapshot-select.js';
import { formatBytes } from './backup.js';

interface SnapshotsCliOptions {
  host: string[];
  tag: string[];
  path: string[];
  latest?: string;
}

const collect = (v: string, prev: string[]) => prev.concat([v]);

function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The last n snapshots of each (host, paths) group, oldest first overall. */
export function latestPerGroup(list: SnapshotEntry[], n: number): SnapshotEntry[] {
  const groups = new Map<string, SnapshotEntry[]>();
  for (const e of list) {
    const key = JSON.stringify([e.snapshot.hostname, [...e.snapshot.paths].sort()]);
    const g = groups.get(key) ?? [];
    g.push(e);
    groups.set(key, g);
  }
  const keep = new Set<string>();
  for (const g of groups.values()) for (const e of g.slice(-n)) keep.add(e.id);
  return list.filter((e) => keep.has(e.id));
}

export function registerSnapshots(program: Command): void {
  program
    .command('snapshots')
    .description('list snapshots')
    .option('--host <hostname>', 'only snapshots of this host (repeatable)', collect, [])
    .option('--tag <tags>', 'only snapshots with these tags (comma-separated: all of them; repeatable: any group)', collect, [])
    .option('--path <path>', 'only snapshots with exactly these paths (repeatable)', collect, [])
    .option('--latest <n>', 'only the last n snapshots of each host and path set')
    .action(async (opts: SnapshotsCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      let latest: number | undefined;
      if (opts.latest !== undefined) {
        latest = Number(opts.latest);
        if (!Number.isInteger(latest) || latest < 1) throw new UsageError('--latest must be a positive integer');
      }
      const all = await ctx.withRepository((repo) => repo.listSnapshots(), { sync: false });
      let list = filterSnapshots(all, { hosts: opts.host, tags: opts.tag, paths: opts.path });
      if (latest !== undefined) list = latestPerGroup(list, latest);
      if (ctx.out.json) {
        ctx.out.result(JSON.stringify(list.map((e) => ({ id: e.id, short_id: e.id.slice(0, 8), ...e.snapshot }))));
        return;
      }
      const rows: string[][] = [];
      for (const e of list) {
        const s = e.snapshot;
        const paths = [...s.paths].sort();
        const bytes = typeof s.summary?.bytes === 'number' ? formatBytes(s.summary.bytes) : '';
        rows.push([e.id.slice(0, 8), localTime(s.time), s.hostname, s.tags.join(','), paths[0] ?? '', bytes]);
        for (const p of paths.slice(1)) rows.push(['', '', '', '', p, '']);
      }
      ctx.out.result(table(['ID', 'Time', 'Host', 'Tags', 'Paths', 'Size'], rows));
      ctx.out.result(`${list.length} snapshot${list.length === 1 ? '' : 's'}`);
    });
}
