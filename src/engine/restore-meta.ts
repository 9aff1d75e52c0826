/**
 * Restoring a node's metadata onto a path that the restore itself created: owner (as root),
 * xattrs, permission bits (after the owner: chown clears setuid/setgid), then times with
 * nanoseconds via utimensat without following symlinks. Failures are warnings, not errors.
 */
import fs from 'node:fs';
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
  setXattrs(p, node, display, o);
  if (node.type !== 'symlink') {
    try {
      await fsp.chmod(p, node.mode & 0o7777);
    } catch (e) {
      o.warn(`${display}: cannot set mode ${(node.mode & 0o7777).toString(8)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (times) setTimes(p, node, display, o);
}

/**
 * {@link applyMetadata} with synchronous calls (each a few µs on a local file system): for the
 * restore's many small files, where a round trip through the thread pool per call costs more
 * than the call.
 */
export function applyMetadataSync(p: Buffer, node: TreeNode, display: string, o: MetaOptions, times = true): void {
  if (o.owners) {
    try {
      fs.lchownSync(p, node.uid, node.gid);
    } catch (e) {
      o.warn(`${display}: cannot set owner ${node.uid}:${node.gid}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  setXattrs(p, node, display, o);
  if (node.type !== 'symlink') {
    try {
      fs.chmodSync(p, node.mode & 0o7777);
    } catch (e) {
      o.warn(`${display}: cannot set mode ${(node.mode & 0o7777).toString(8)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (times) setTimes(p, node, display, o);
}

function setXattrs(p: Buffer, node: TreeNode, display: string, o: MetaOptions): void {
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
}

export function setTimes(p: Buffer, node: TreeNode, display: string, o: MetaOptions): void {
  try {
    utimesNs(p, node.atimeNs ?? node.mtimeNs, node.mtimeNs);
  } catch (e) {
    o.warn(`${display}: cannot set times: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
