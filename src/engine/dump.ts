/**
 * `dump`: a file's bytes in order, or a directory as a tar stream (tar-stream) carrying modes,
 * owners, names, mtimes, symlinks, hardlinks, FIFOs and devices. Blobs are fetched a few ahead
 * of the writer so a slow store and a slow pipe overlap.
 */
import type { Writable } from 'node:stream';
import tar from 'tar-stream';

type HeaderArg = Partial<tar.Header> & Pick<tar.Header, 'name'>;
interface WritableLike {
  write(b: Buffer): boolean;
  once(event: 'drain', cb: () => void): unknown;
}
import type { Repository } from '../repo/repository.js';
import { fromHexId } from '../util/hex.js';
import { devSplit } from '../native/index.js';
import type { TreeNode } from './tree.js';
import { TreeLoader, printable, resolvePath, walkTree } from './tree-load.js';

/** Calls `each` with every chunk of a file's content, in order, `ahead` blobs fetched in advance. */
export async function forEachChunk(repo: Repository, content: string[], each: (b: Buffer) => Promise<void> | void, ahead = 4): Promise<void> {
  const inflight: Array<Promise<Buffer>> = [];
  let next = 0;
  const fill = () => {
    while (inflight.length < ahead && next < content.length) {
      const p = repo.loadBlob(fromHexId(content[next++]!));
      p.catch(() => {});
      inflight.push(p);
    }
  };
  fill();
  while (inflight.length > 0) {
    const data = await inflight.shift()!;
    fill();
    await each(data);
  }
}

async function writeTo(out: WritableLike, b: Buffer): Promise<void> {
  if (!out.write(b)) await new Promise<void>((res) => out.once('drain', res));
}

export async function dumpFile(repo: Repository, node: TreeNode, out: Writable): Promise<void> {
  await forEachChunk(repo, node.content ?? [], (b) => writeTo(out, b));
}

/** Writes the tree at `path` (a directory, or any node) as a tar stream to `out`. */
export async function dumpTar(repo: Repository, rootTree: string, path: string, out: Writable, warn: (m: string) => void): Promise<void> {
  const loader = new TreeLoader(repo);
  const r = await resolvePath(loader, rootTree, path);
  const pack = tar.pack();
  // forwarded by hand, not pipeline(): on a failure the archive is cut short (never finalized, so it does not
  // look complete) without destroying `out` with the error — an error event on process.stdout
  // would be an uncaught exception with a stack trace instead of the caller's one-line message
  let failed = false;
  const onDrain = () => pack.resume();
  out.on('drain', onDrain);
  pack.on('data', (chunk: unknown) => {
    if (!failed && !out.write(chunk as Buffer)) pack.pause();
  });
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => {
      out.off('drain', onDrain);
      out.end(res);
    });
    pack.on('error', rej);
    out.on('error', rej);
  });
  const links = new Map<string, string>();
  // names are relative to the parent of the dumped path (like `tar -C parent name`)
  const strip = Math.max(0, r.parts.length - 1);
  const nameOf = (parts: Buffer[]) => parts.slice(strip).map((p) => p.toString('utf8')).join('/');

  const addEntry = async (node: TreeNode, name: string): Promise<void> => {
    const header: HeaderArg = {
      name: node.type === 'dir' ? `${name}/` : name,
      mode: node.mode & 0o7777,
      uid: node.uid,
      gid: node.gid,
      uname: node.user,
      gname: node.group,
      mtime: new Date(Number(node.mtimeNs / 1_000_000n)),
    };
    switch (node.type) {
      case 'dir':
        await entry(pack, { ...header, type: 'directory' });
        return;
      case 'symlink':
        await entry(pack, { ...header, type: 'symlink', linkname: (node.target ?? Buffer.alloc(0)).toString('utf8') });
        return;
      case 'fifo':
        await entry(pack, { ...header, type: 'fifo' });
        return;
      case 'chardev':
      case 'blockdev': {
        const { major, minor } = devSplit(node.rdev ?? 0);
        await entry(pack, { ...header, type: node.type === 'chardev' ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
        return;
      }
      case 'file': {
        if ((node.links ?? 1) > 1 && node.inode !== undefined && node.device !== undefined) {
          const key = `${node.device}:${node.inode}`;
          const first = links.get(key);
          if (first !== undefined) {
            await entry(pack, { ...header, type: 'link', linkname: first });
            return;
          }
          links.set(key, name);
        }
        const size = node.size ?? 0;
        let written = 0;
        const stream = pack.entry({ ...header, type: 'file', size });
        const finished = new Promise<void>((res, rej) => {
          stream.on('finish', res);
          stream.on('error', rej);
        });
        await forEachChunk(repo, node.content ?? [], async (b) => {
          written += b.length;
          if (written > size) throw new Error(`${name}: content is longer than the recorded size`);
          await writeTo(stream, b);
        });
        if (written !== size) throw new Error(`${name}: content is ${written} bytes, the tree says ${size}`);
        stream.end(Buffer.alloc(0));
        await finished;
        return;
      }
      default:
        warn(`${name}: ${node.type} not dumped`);
    }
  };

  try {
    if (r.node) await addEntry(r.node, nameOf(r.parts));
    if (r.treeId) {
      await walkTree(loader, r.treeId, r.parts, async ({ parts, node }) => {
        await addEntry(node, nameOf(parts));
      }, (parts, reason) => warn(`skipping ${printable(nameOf(parts))}: ${reason}`));
    }
    pack.finalize();
  } catch (e) {
    failed = true;
    out.off('drain', onDrain);
    done.catch(() => {});
    pack.destroy();
    throw e;
  }
  await done;
}

function entry(pack: tar.Pack, header: HeaderArg): Promise<void> {
  return new Promise((res, rej) => pack.entry(header, (err) => (err ? rej(err) : res())));
}
