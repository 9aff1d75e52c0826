import type { Command } from 'commander';
import { CliContext } from '../context.js';
import type { Repository } from '../../repo/repository.js';
import { rfc3339Nanos } from '../../util/time.js';
import { displayName, type TreeNode } from '../../engine/tree.js';
import { TreeLoader, joinDisplay, printable, resolvePath, walkTree } from '../../engine/tree-load.js';
import { addSnapshotFilterOptions, filterFrom, selectSnapshot } from './restore.js';

interface LsOptions {
  long?: boolean;
  recursive?: boolean;
  host: string[];
  tag: string[];
  path: string[];
}

const TYPE_CHAR: Record<TreeNode['type'], string> = { file: '-', dir: 'd', symlink: 'L', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 'S' };

/** "drwxr-xr-x" (restic/Go's style: setuid and friends shown as u/g/t prefixes are rare; use ls's). */
export function permString(n: TreeNode): string {
  const m = n.mode;
  const rwx = (shift: number, special: number, ch: string) => {
    const r = m & (4 << shift) ? 'r' : '-';
    const w = m & (2 << shift) ? 'w' : '-';
    const x = m & (1 << shift);
    const s = m & special ? (x ? ch : ch.toUpperCase()) : x ? 'x' : '-';
    return r + w + s;
  };
  return TYPE_CHAR[n.type] + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

function localTime(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n));
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A node as restic's `ls --json` prints it. */
export function nodeJson(n: TreeNode, p: string): Record<string, unknown> {
  const o: Record<string, unknown> = {
    name: displayName(n.name),
    type: n.type,
    path: p,
    uid: n.uid,
    gid: n.gid,
  };
  if (n.user) o.user = n.user;
  if (n.group) o.group = n.group;
  if (n.type === 'file') o.size = n.size ?? 0;
  o.mode = n.mode;
  o.permissions = permString(n);
  o.mtime = rfc3339Nanos(n.mtimeNs);
  o.atime = rfc3339Nanos(n.atimeNs ?? n.mtimeNs);
  o.ctime = rfc3339Nanos(n.ctimeNs);
  if (n.inode !== undefined) o.inode = n.inode;
  if (n.type === 'symlink' && n.target) o.linktarget = displayName(n.target);
  o.struct_type = 'node';
  o.message_type = 'node';
  return o;
}

export function longLine(n: TreeNode, p: string): string {
  const size = n.type === 'file' ? String(n.size ?? 0) : '0';
  const link = n.type === 'symlink' && n.target ? ` -> ${displayName(n.target)}` : '';
  return `${permString(n)} ${String(n.uid).padStart(5)} ${String(n.gid).padStart(5)} ${size.padStart(10)} ${localTime(n.mtimeNs)} ${p}${link}`;
}

export async function listSnapshot(
  repo: Repository,
  treeRoot: string,
  dir: string | undefined,
  recursive: boolean,
  emit: (n: TreeNode, p: string) => void,
  onUnsafe: (p: string, reason: string) => void = () => {},
): Promise<void> {
  const loader = new TreeLoader(repo);
  const r = await resolvePath(loader, treeRoot, dir ?? '/');
  const unsafe = (parts: Buffer[], reason: string) => onUnsafe(joinDisplay(parts), reason);
  if (r.node) {
    emit(r.node, joinDisplay(r.parts));
    if (r.node.type !== 'dir') return;
  }
  // restic: no path → everything; a path → the path and its children (all levels with --recursive)
  const all = recursive || dir === undefined;
  await walkTree(loader, r.treeId!, r.parts, ({ parts, node }) => {
    emit(node, joinDisplay(parts));
    return all;
  }, unsafe);
}

export function registerLs(program: Command): void {
  const cmd = program
    .command('ls')
    .description('list the files in a snapshot (all of them, or a directory)')
    .argument('<snapshot>', 'snapshot id, unique prefix or latest')
    .argument('[dir]', 'only this path (and its children; all levels with --recursive)')
    .option('-l, --long', 'long listing: mode, owner, size, time')
    .option('--recursive', 'list subdirectories of [dir] too');
  addSnapshotFilterOptions(cmd).action(async (ref: string, dir: string | undefined, opts: LsOptions, c: Command) => {
    const ctx = CliContext.from(c);
    const out = ctx.out;
    await ctx.withRepository(async (repo) => {
      const entry = await selectSnapshot(repo, ref, filterFrom(opts));
      const s = entry.snapshot;
      if (out.json) out.result(JSON.stringify({ ...s, id: entry.id, short_id: entry.id.slice(0, 8), struct_type: 'snapshot', message_type: 'snapshot' }));
      else out.info(`snapshot ${entry.id.slice(0, 8)} of [${s.paths.join(' ')}] filtered by [${dir ?? ''}] at ${s.time}:`);
      const lines: string[] = [];
      const flush = () => {
        if (lines.length) process.stdout.write(lines.join('\n') + '\n');
        lines.length = 0;
      };
      await listSnapshot(repo, s.tree, dir, !!opts.recursive, (n, p) => {
        lines.push(out.json ? JSON.stringify(nodeJson(n, p)) : opts.long ? longLine(n, p) : p);
        if (lines.length >= 1000) flush();
      }, (p, reason) => out.warn(`not listing ${printable(p)}: ${reason}`));
      flush();
    }, { sync: true });
  });
}
