/**
 * The restore test: proof that the backups can be restored. From the latest snapshot of each
 * backup (each host+paths group of file snapshots) and the latest dump of each database, a random
 * sample of files (the largest always among them) is restored into a temporary directory —
 * every blob fetched from the store, decrypted and authenticated — then read back from disk and
 * each chunk checked against its blob id and the file's size against the snapshot's. The directory
 * is removed afterwards. Any mismatch or unreadable blob fails the test.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/formats.js';
import { forEachChunk } from '../engine/dump.js';
import { verifyFile } from '../engine/restorer.js';
import { TreeLoader, joinDisplay, walkTree } from '../engine/tree-load.js';
import type { TreeNode } from '../engine/tree.js';

export interface RestoreTestOptions {
  /** Files per snapshot (default 20). */
  files: number;
  /** Stop adding files to a snapshot's sample past this many bytes. */
  maxBytes: number;
  /** Only this host's snapshots. */
  host?: string;
  /** Include the latest dump of each database entry. */
  databases: boolean;
  tmpDir?: string;
  random?: () => number;
  onFile?: (snapshot: string, p: string, bytes: number) => void;
}

export interface RestoreTestResult {
  ok: boolean;
  snapshotsTested: Array<{ id: string; paths: string[]; tags: string[]; files: number; bytes: number }>;
  filesVerified: number;
  bytesVerified: number;
  failures: Array<{ snapshot: string; path: string; error: string }>;
  repository: { snapshots: number; size_bytes: number };
}

type Entry = { id: string; snapshot: Snapshot };

/** The snapshots to test: the newest of each file group (host + paths) and of each database dump. */
export function pickSnapshots(all: Entry[], o: { host?: string; databases: boolean }): Entry[] {
  const newest = new Map<string, Entry>();
  const byTime = [...all].sort((a, b) => Date.parse(a.snapshot.time) - Date.parse(b.snapshot.time));
  for (const e of byTime) {
    const s = e.snapshot;
    if (o.host && s.hostname !== o.host) continue;
    const isDb = s.tags.includes('db');
    if (isDb && !o.databases) continue;
    const key = isDb
      ? `db\0${s.hostname}\0${s.tags.filter((t) => t.startsWith('db:')).join(',')}\0${String((s.source as Record<string, unknown> | undefined)?.database ?? s.paths.join('\0'))}`
      : `files\0${s.hostname}\0${[...s.paths].sort().join('\0')}`;
    newest.set(key, e);
  }
  return [...newest.values()];
}

interface Candidate {
  parts: Buffer[];
  node: TreeNode;
}

/** A uniform random sample of `k` files (reservoir), plus the largest file. */
async function sampleFiles(loader: TreeLoader, tree: string, k: number, maxBytes: number, random: () => number): Promise<Candidate[]> {
  const reservoir: Candidate[] = [];
  let seen = 0;
  let largest: Candidate | null = null;
  await walkTree(loader, tree, [], ({ parts, node }) => {
    if (node.type !== 'file') return;
    seen++;
    const c = { parts, node };
    if (!largest || (node.size ?? 0) > (largest.node.size ?? 0)) largest = c;
    if (reservoir.length < k) reservoir.push(c);
    else {
      const j = Math.floor(random() * seen);
      if (j < k) reservoir[j] = c;
    }
  });
  const pick: Candidate[] = [];
  const big = largest as Candidate | null;
  if (big && !reservoir.includes(big)) pick.push(big);
  pick.push(...reservoir);
  const out: Candidate[] = [];
  let bytes = 0;
  for (const c of pick) {
    const size = c.node.size ?? 0;
    if (out.length > 0 && bytes + size > maxBytes) continue;
    out.push(c);
    bytes += size;
  }
  return out.slice(0, Math.max(1, k));
}

async function restoreOne(repo: Repository, node: TreeNode, dest: string): Promise<number> {
  const content = node.content ?? [];
  const lengths = new Map<string, number>();
  const fh = await fsp.open(dest, 'wx', 0o600);
  let i = 0;
  let written = 0;
  try {
    await forEachChunk(repo, content, async (b) => {
      lengths.set(content[i++]!, b.length);
      await fh.write(b, 0, b.length, written);
      written += b.length;
    });
  } finally {
    await fh.close();
  }
  await verifyFile(repo, Buffer.from(dest), content, (id) => lengths.get(id)!);
  if (node.size !== undefined && node.size !== written) throw new Error(`restored ${written} bytes, the snapshot says ${node.size}`);
  return written;
}

export async function runRestoreTest(repo: Repository, o: RestoreTestOptions): Promise<RestoreTestResult> {
  const random = o.random ?? Math.random;
  const all = await repo.listSnapshots();
  const chosen = pickSnapshots(all, o);
  const tmp = await fsp.mkdtemp(path.join(o.tmpDir ?? os.tmpdir(), 'lifeboat-restore-test-'));
  const result: RestoreTestResult = {
    ok: true,
    snapshotsTested: [],
    filesVerified: 0,
    bytesVerified: 0,
    failures: [],
    repository: { snapshots: all.length, size_bytes: repo.cache.packs().reduce((n, p) => n + p.size, 0) },
  };
  const loader = new TreeLoader(repo);
  try {
    let n = 0;
    for (const e of chosen) {
      const tested = { id: e.id, paths: e.snapshot.paths, tags: e.snapshot.tags, files: 0, bytes: 0 };
      result.snapshotsTested.push(tested);
      let sample: Candidate[];
      try {
        sample = await sampleFiles(loader, e.snapshot.tree, o.files, o.maxBytes, random);
      } catch (err) {
        result.failures.push({ snapshot: e.id, path: '/', error: `cannot read the snapshot's trees: ${(err as Error).message}` });
        continue;
      }
      for (const c of sample) {
        const shown = joinDisplay(c.parts);
        const dest = path.join(tmp, `${n++}`);
        try {
          const bytes = await restoreOne(repo, c.node, dest);
          tested.files++;
          tested.bytes += bytes;
          result.filesVerified++;
          result.bytesVerified += bytes;
          o.onFile?.(e.id, shown, bytes);
        } catch (err) {
          result.failures.push({ snapshot: e.id, path: shown, error: (err as Error).message });
        } finally {
          fs.rmSync(dest, { force: true });
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  result.ok = result.failures.length === 0;
  return result;
}
