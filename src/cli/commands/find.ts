import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { displayName, type TreeNode } from '../../engine/tree.js';
import { TreeLoader, walkTree, joinDisplay, printable } from '../../engine/tree-load.js';
import { globToRegExp } from '../../engine/path-match.js';
import { filterSnapshots, type SnapshotEntry } from '../../engine/snapshot-select.js';
import { longLine, nodeJson } from './ls.js';
import { addSnapshotFilterOptions, collect, filterFrom, selectSnapshot } from './restore.js';

interface FindOptions {
  snapshot: string[];
  ignoreCase?: boolean;
  long?: boolean;
  host: string[];
  tag: string[];
  path: string[];
}

export function registerFind(program: Command): void {
  const cmd = program
    .command('find')
    .description('find files by name (or by path, when a pattern holds "/") in snapshots')
    .argument('<pattern...>', 'glob patterns (*, ?, [...]; ** across directories)')
    .option('-s, --snapshot <id>', 'only this snapshot (repeatable; default: all)', collect, [])
    .option('-i, --ignore-case', 'ignore case in patterns')
    .option('-l, --long', 'long listing');
  addSnapshotFilterOptions(cmd).action(async (patterns: string[], opts: FindOptions, c: Command) => {
    const ctx = CliContext.from(c);
    const out = ctx.out;
    const flags = opts.ignoreCase ? 'i' : '';
    const res = patterns.map((p) => ({ byPath: p.includes('/'), re: new RegExp(globToRegExp(p.replace(/^\/+/, '')).source, flags + 's') }));
    const matches = (node: TreeNode, p: string) =>
      res.some(({ byPath, re }) => (byPath ? re.test(p.slice(1)) : re.test(displayName(node.name))));
    await ctx.withRepository(async (repo) => {
      let snaps: SnapshotEntry[];
      if (opts.snapshot.length > 0) {
        snaps = [];
        for (const s of opts.snapshot) snaps.push(await selectSnapshot(repo, s, filterFrom(opts)));
      } else snaps = filterSnapshots(await repo.listSnapshots(), filterFrom(opts));
      const loader = new TreeLoader(repo);
      const results: unknown[] = [];
      for (const s of snaps) {
        const found: Array<{ node: TreeNode; path: string }> = [];
        await walkTree(loader, s.snapshot.tree, [], ({ parts, node }) => {
          const p = joinDisplay(parts);
          if (matches(node, p)) found.push({ node, path: p });
        }, (parts, reason) => out.warn(`snapshot ${s.id.slice(0, 8)}: not searching ${printable(joinDisplay(parts))}: ${reason}`));
        if (found.length === 0) continue;
        if (out.json) results.push({ matches: found.map((f) => nodeJson(f.node, f.path)), hits: found.length, snapshot: s.id });
        else {
          out.result(`Found matching entries in snapshot ${s.id.slice(0, 8)} from ${s.snapshot.time}`);
          for (const f of found) out.result(opts.long ? longLine(f.node, f.path) : f.path);
          out.result('');
        }
      }
      if (out.json) out.result(JSON.stringify(results));
    }, { sync: true });
  });
}
