/**
 * Restoring a node's metadata onto a path that the restore itself created: owner (as root),
 * xattrs, permission bits (after the owner: chown clears setuid/setgid), then times with
 * nanoseconds via utimensat without following symlinks. Failures are warnings, not errors.
 */
import fsp from 'node:fs/promises';
import { setXattr, utimesNs } from '../native/index.js';
import type { TreeNode } from './tree.js';

export interface MetaOptions {
  /** Restore owners (lchown) — true when running as root. */
  owners: boolean;
  warn(message: string): void;
}

export const IS_ROOT = process.getuid?.() === 0;

export async function applyMetadata(p: Buffer, node: TreeNode, display: string, o: MetaOptions, times = true): Promise<void> {
  if (o.owners) {
    try {
      await fsp.lchown(p, node.uid, node.gid);
    } catch (e) {
      o.warn(`${display}: cannot set owner ${node.uid}:${node.gid}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  for (const x of node.xattrs ?? []) {
    try {
      setXattr(p, x.name, x.value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // user.* attributes are not allowed on symlinks by Linux; other namespaces need root
      if (node.type === 'symlink' && code === 'EPERM') continue;
      if (!o.owners && !x.name.startsWith('user.') && code === 'EPERM') continue;
      o.warn(`${display}: cannot set xattr ${x.name}: ${code ?? (e as Error).message}`);
    }
  }
  if (node.type !== 'symlink') {
    try {
      await fsp.chmod(p, node.mode & 0o7777);
    } catch (e) {
      o.warn(`${display}: cannot set mode ${(node.mode & 0o7777).toString(8)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (times) setTimes(p, node, display, o);
}

export function setTimes(p: Buffer, node: TreeNode, display: string, o: MetaOptions): void {
  try {
    utimesNs(p, node.atimeNs ?? node.mtimeNs, node.mtimeNs);
  } catch (e) {
    o.warn(`${display}: cannot set times: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
