/**
 * File-system side of the archiver: stat → tree node, raw (Buffer) paths, readdir with names
 * that need not be UTF-8. Times are bigint nanoseconds; atime is deliberately not recorded
 * (it changes on every read and would make every tree differ from one backup to the next).
 */
import fs from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { NodeType, TreeNode } from './tree.js';
import { groupName, userName } from './owners.js';
import type { NodeStat } from '../util/small-file.js';

const SLASH = Buffer.from('/');

/** Joins a directory path and a raw name; "/" + name stays single-slashed. */
export function joinPath(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 1 && dir[0] === 0x2f) return Buffer.concat([SLASH, name]);
  return Buffer.concat([dir, SLASH, name]);
}

/** A path for messages and pattern matching (invalid UTF-8 bytes become U+FFFD). */
export function pathText(p: Buffer): string {
  return p.toString('utf8');
}

export function nodeType(st: BigIntStats): NodeType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isSocket()) return 'socket';
  return null;
}

/** The metadata part of a node (no content, subtree or target). */
export function nodeFromStat(name: Buffer, type: NodeType, st: NodeStat): TreeNode {
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const n: TreeNode = {
    name,
    type,
    mode: Number(st.mode),
    uid,
    gid,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: Number(st.ino),
    device: Number(st.dev),
    links: Number(st.nlink),
  };
  const user = userName(uid);
  if (user !== undefined) n.user = user;
  const group = groupName(gid);
  if (group !== undefined) n.group = group;
  if (type === 'file') {
    n.size = Number(st.size);
    if (st.blocks * 512n < st.size) n.sparse = true;
  }
  if (type === 'chardev' || type === 'blockdev') n.rdev = Number(st.rdev);
  return n;
}

export function lstat(p: Buffer): Promise<BigIntStats> {
  return fs.promises.lstat(p, { bigint: true });
}

/**
 * lstat with a synchronous call: the walk stats every entry, and for a local file system (inodes
 * cached) the syscall costs a few µs against a thread-pool round trip and a promise for the
 * async call (bench/backup.ts). A slow file system stalls the event loop per entry instead.
 */
export function lstatSync(p: Buffer): BigIntStats {
  return fs.lstatSync(p, { bigint: true });
}

export async function readdirRaw(p: Buffer): Promise<Buffer[]> {
  return fs.promises.readdir(p, { encoding: 'buffer' });
}

export function readlinkRaw(p: Buffer): Promise<Buffer> {
  return fs.promises.readlink(p, { encoding: 'buffer' });
}

/** Same file, same content as far as stat can tell (the change-detection rule). */
export function unchangedSince(old: TreeNode, st: BigIntStats): boolean {
  return (
    old.type === 'file' &&
    old.size === Number(st.size) &&
    old.inode === Number(st.ino) &&
    old.device === Number(st.dev) &&
    old.mtimeNs === st.mtimeNs &&
    old.ctimeNs === st.ctimeNs
  );
}

/** A short reason for an fs error: "permission denied (EACCES)". */
export function errorReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string') {
    const m = /^[A-Z]+: ([^,]+)/.exec(err.message);
    return `${m ? m[1] : err.message} (${err.code})`;
  }
  return err instanceof Error ? err.message : String(e);
}
