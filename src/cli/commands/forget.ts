import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { addPruneOptions, pruneOptionsFrom, runPrune, type PruneCliOptions } from './prune.js';
import { findSnapshot, type SnapshotEntry } from '../../engine/snapshot-select.js';
import {
  DEFAULT_GROUP_BY,
  describeGroupKey,
  describePolicy,
  groupSnapshots,
  isEmptyPolicy,
  parseGroupBy,
  parseRetentionDuration,
  parseTagList,
  planForget,
  type ForgetFilter,
  type ForgetGroupPlan,
  type GroupBy,
  type RetentionDuration,
  type RetentionPolicy,
} from '../../engine/retention.js';
import { formatWallClock, localTimeZone, parseInstant } from '../../engine/zoned-time.js';

interface ForgetCliOptions extends PruneCliOptions {
  prune?: boolean;
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag: string[];
  unsafeAllowRemoveAll?: boolean;
  host: string[];
  tag: string[];
  path: string[];
  groupBy: string;
  dryRun?: boolean;
}

const collect = (v: string, prev: string[]) => prev.concat([v]);

function count(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v === 'unlimited') return -1;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`${flag}: "${v}" is not a count (a number, or unlimited)`);
  const n = Number(v);
  if (n < -1) throw new UsageError(`${flag}: negative values other than -1 are not allowed (use unlimited)`);
  return n;
}

function duration(flag: string, v: string | undefined): RetentionDuration | undefined {
  if (v === undefined) return undefined;
  try {
    return parseRetentionDuration(v);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

function policyFrom(o: ForgetCliOptions): RetentionPolicy {
  return {
    last: count('--keep-last', o.keepLast),
    hourly: count('--keep-hourly', o.keepHourly),
    daily: count('--keep-daily', o.keepDaily),
    weekly: count('--keep-weekly', o.keepWeekly),
    monthly: count('--keep-monthly', o.keepMonthly),
    yearly: count('--keep-yearly', o.keepYearly),
    within: duration('--keep-within', o.keepWithin),
    withinHourly: duration('--keep-within-hourly', o.keepWithinHourly),
    withinDaily: duration('--keep-within-daily', o.keepWithinDaily),
    withinWeekly: duration('--keep-within-weekly', o.keepWithinWeekly),
    withinMonthly: duration('--keep-within-monthly', o.keepWithinMonthly),
    withinYearly: duration('--keep-within-yearly', o.keepWithinYearly),
    tags: o.keepTag.map(parseTagList),
  };
}

/** A snapshot as `snapshots --json` prints it (restic's shape: the snapshot plus id and short_id). */
function summary(e: SnapshotEntry): Record<string, unknown> {
  return { id: e.id, short_id: e.id.slice(0, 8), ...e.snapshot };
}

function jsonGroup(g: ForgetGroupPlan): Record<string, unknown> {
  return {
    group_key: g.key,
    host: g.key.hostname,
    paths: g.key.paths,
    tags: g.key.tags,
    keep: g.keep.map(summary),
    remove: g.remove.map(summary),
    reasons: g.reasons.map((r) => ({ snapshot: summary(r.entry), matches: r.matches })),
  };
}

/** restic's snapshot table, oldest first; with reasons, one reason per line. */
function snapshotTable(list: SnapshotEntry[], tz: string, reasons?: Map<string, string[]>): string {
  const rows: string[][] = [];
  for (const e of [...list].reverse()) {
    const s = e.snapshot;
    const paths = [...s.paths].sort();
    const why = reasons?.get(e.id) ?? [];
    const lines = Math.max(1, paths.length, why.length);
    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const row = [first ? e.id.slice(0, 8) : '', first ? formatWallClock(parseInstant(s.time).ms, tz) : '', first ? s.hostname : '', first ? s.tags.join(',') : ''];
      if (reasons) row.push(why[i] ?? '');
      row.push(paths[i] ?? '');
      rows.push(row);
    }
  }
  const header = reasons ? ['ID', 'Time', 'Host', 'Tags', 'Reasons', 'Paths'] : ['ID', 'Time', 'Host', 'Tags', 'Paths'];
  return `${table(header, rows)}\n${list.length} snapshot${list.length === 1 ? '' : 's'}`;
}

export function registerForget(program: Command): void {
  const cmd = program
    .command('forget')
    .description('remove snapshots: the given ones, or those a --keep-* policy does not keep (data is freed by prune)')
    .argument('[snapshot...]', 'snapshot ids (or unique prefixes, or latest) to remove; without them, the policy decides')
    .option('-l, --keep-last <n>', 'keep the last n snapshots (unlimited or -1: all)')
    .option('-H, --keep-hourly <n>', 'keep the last n hourly snapshots (unlimited or -1: all)')
    .option('-d, --keep-daily <n>', 'keep the last n daily snapshots (unlimited or -1: all)')
    .option('-w, --keep-weekly <n>', 'keep the last n weekly snapshots (ISO weeks; unlimited or -1: all)')
    .option('-m, --keep-monthly <n>', 'keep the last n monthly snapshots (unlimited or -1: all)')
    .option('-y, --keep-yearly <n>', 'keep the last n yearly snapshots (unlimited or -1: all)')
    .option('--keep-within <duration>', 'keep snapshots newer than duration (e.g. 1y5m7d2h) before the latest snapshot')
    .option('--keep-within-hourly <duration>', 'keep hourly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-daily <duration>', 'keep daily snapshots newer than duration before the latest snapshot')
    .option('--keep-within-weekly <duration>', 'keep weekly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-monthly <duration>', 'keep monthly snapshots newer than duration before the latest snapshot')
    .option('--keep-within-yearly <duration>', 'keep yearly snapshots newer than duration before the latest snapshot')
    .option('--keep-tag <taglist>', 'keep snapshots with all these tags (comma-separated; repeatable: any list; \'\' = untagged)', collect, [])
    .option('--unsafe-allow-remove-all', 'with no --keep-* option: remove every snapshot the --host/--tag/--path filter selects')
    .option('--host <hostname>', 'only consider snapshots of this host (repeatable)', collect, [])
    .option('--tag <taglist>', 'only consider snapshots with all these tags (comma-separated; repeatable: any list)', collect, [])
    .option('--path <path>', 'only consider snapshots that include this path (repeatable: all of them)', collect, [])
    .option('-g, --group-by <group>', 'group snapshots by host, paths and/or tags, comma-separated (\'\' = one group)', 'host,paths')
    .option('-n, --dry-run', 'print what would be removed, remove nothing')
    .option('--prune', 'run prune afterwards, under the same lock (takes prune\'s options)');
  addPruneOptions(cmd).action(async (refs: string[], opts: ForgetCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const out = ctx.out;
      const tz = localTimeZone();
      const policy = policyFrom(opts);
      let groupBy: GroupBy = DEFAULT_GROUP_BY;
      try {
        groupBy = parseGroupBy(opts.groupBy);
      } catch (e) {
        throw new UsageError(`--group-by: ${(e as Error).message}`);
      }
      const pruneOptions = pruneOptionsFrom(opts);
      const filter: ForgetFilter = { hosts: opts.host, tags: opts.tag.map(parseTagList), paths: opts.path };
      if (refs.length > 0 && (!isEmptyPolicy(policy) || opts.unsafeAllowRemoveAll)) {
        throw new UsageError('give snapshot ids or a --keep-* policy, not both');
      }

      if (ctx.appendOnly() && !opts.dryRun) {
        throw new UsageError('this client is append-only and may not remove snapshots (run forget and prune from a trusted host)');
      }
      await ctx.withRepository(async (repo) => {
        const all = await repo.listSnapshots();
        let groups: ForgetGroupPlan[];
        if (refs.length > 0) {
          const picked = new Map<string, SnapshotEntry>();
          for (const ref of refs) {
            // a damaged snapshot cannot be listed, but it can be forgotten by its id
            const broken = [...repo.unreadableSnapshots.keys()].filter((id) => id.startsWith(ref));
            if (broken.length === 1 && /^[0-9a-f]{4,64}$/.test(ref)) {
              if (!opts.dryRun) await repo.deleteSnapshot(broken[0]!);
              out.info(`${opts.dryRun ? 'would remove' : 'removed'} unreadable snapshot ${broken[0]!.slice(0, 8)}`);
              continue;
            }
            try {
              const e = findSnapshot(all, ref, { hosts: opts.host, tags: opts.tag, paths: opts.path });
              picked.set(e.id, e);
            } catch (e) {
              throw new UsageError((e as Error).message);
            }
          }
          groups = groupSnapshots([...picked.values()], groupBy).map((g) => ({ key: g.key, keep: [], remove: g.snapshots, reasons: [] }));
        } else {
          try {
            groups = planForget(all, { policy, filter, groupBy, unsafeAllowRemoveAll: opts.unsafeAllowRemoveAll, timeZone: tz });
          } catch (e) {
            throw new UsageError((e as Error).message);
          }
          out.info(`Applying Policy: ${describePolicy(policy)}`);
          for (const g of groups) {
            const name = describeGroupKey(g.key);
            out.info(name ? `snapshots for (${name}):` : 'snapshots:');
            if (g.keep.length > 0) {
              out.info(`keep ${g.keep.length} snapshots:`);
              out.info(snapshotTable(g.keep, tz, new Map(g.reasons.map((r) => [r.entry.id, r.matches]))));
              out.info('');
            }
            if (g.remove.length > 0) {
              out.info(`remove ${g.remove.length} snapshots:`);
              out.info(snapshotTable(g.remove, tz));
              out.info('');
            }
          }
        }

        const remove = groups.flatMap((g) => g.remove);
        const failed: string[] = [];
        if (opts.dryRun) {
          if (remove.length > 0) out.info(`Would have removed the following snapshots:\n${remove.map((e) => e.id.slice(0, 8)).join('\n')}\n`);
        } else {
          // Only the snapshot objects: the data they referenced stays until prune (format §12).
          const queue = [...remove];
          await Promise.all(Array.from({ length: Math.min(4, queue.length) }, async () => {
            for (let e = queue.shift(); e; e = queue.shift()) {
              try {
                await repo.deleteSnapshot(e.id);
                out.info(`removed snapshot ${e.id.slice(0, 8)}`);
              } catch (err) {
                failed.push(e.id);
                process.stderr.write(`error: unable to remove snapshot ${e.id.slice(0, 8)}: ${(err as Error).message}\n`);
              }
            }
          }));
        }
        if (out.json) out.result(JSON.stringify(groups.map(jsonGroup)));
        if (failed.length > 0) throw new Error(`failed to remove ${failed.length} of ${remove.length} snapshots`);

        // prune under the same exclusive lock, after the snapshot objects are gone (snapshots → index → packs);
        // with --json its result is a second JSON document after forget's one-line array
        if (opts.prune && remove.length > 0) await runPrune(ctx, repo, { ...pruneOptions, dryRun: !!opts.dryRun });
      }, { lock: 'exclusive', sync: false });
    });
}
