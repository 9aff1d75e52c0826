/**
 * Issue 5's memory claim: check and prune keep RSS flat as the repository grows. Builds local
 * repositories of many small blobs (default 100 000 and 1 000 000) through the library — one
 * snapshot naming every blob (1000 files per directory), a second naming half of them — then
 * forgets the first and runs, through the built CLI under /usr/bin/time -v: check, check
 * --read-data, prune --dry-run and prune. Prints wall time and peak RSS per step and size.
 *
 *   npm run bench:maintenance [-- --blobs 100000,1000000] [--dir /var/tmp/x]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalStorage } from '../src/storage/local.js';
import { Repository } from '../src/repo/repository.js';
import { encodeTree, type TreeNode } from '../src/engine/tree.js';
import { toHex } from '../src/util/hex.js';
import { timed, type Measure } from './measure.js';

/** The built CLI (npm run build), as a user runs it. */
const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../dist/cli/main.js');
const PER_DIR = 1000;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

function fileNode(name: string, content: string, size: number): TreeNode {
  const t = 1_700_000_000_000_000_000n;
  return { name: Buffer.from(name), type: 'file', mode: 0o100644, uid: 0, gid: 0, mtimeNs: t, ctimeNs: t, size, content: [content] };
}

function dirNode(name: string, subtree: string): TreeNode {
  const t = 1_700_000_000_000_000_000n;
  return { name: Buffer.from(name), type: 'dir', mode: 0o40755, uid: 0, gid: 0, mtimeNs: t, ctimeNs: t, subtree };
}

export async function build(dir: string, blobs: number, password: string): Promise<void> {
  const storage = new LocalStorage(dir);
  const repo = await Repository.init(storage, password, { cacheDir: path.join(dir, '..', 'build-cache'), kdf: { opslimit: 1, memlimit: 8 * 1024 * 1024, salt: randomBytes(16) } });
  const dirs: string[] = [];
  for (let d = 0; d * PER_DIR < blobs; d++) {
    const nodes: TreeNode[] = [];
    for (let f = 0; f < PER_DIR && d * PER_DIR + f < blobs; f++) {
      const data = Buffer.concat([Buffer.from(`${d}/${f}:`), randomBytes(48)]);
      const { id } = await repo.saveBlob('data', data);
      nodes.push(fileNode(`f${String(f).padStart(4, '0')}`, toHex(id), data.length));
    }
    dirs.push(toHex((await repo.saveBlob('tree', encodeTree({ nodes }))).id));
  }
  const root = async (list: string[]) =>
    toHex((await repo.saveBlob('tree', encodeTree({ nodes: list.map((t, i) => dirNode(`d${String(i).padStart(5, '0')}`, t)) }))).id);
  const all = await root(dirs);
  const half = await root(dirs.slice(0, Math.ceil(dirs.length / 2)));
  await repo.flush();
  const snap = (tree: string, t: string) => ({
    version: 1, time: t, tree, paths: ['/data'], hostname: os.hostname(), tags: [], source: { type: 'files' },
  });
  await repo.saveSnapshot(snap(all, '2026-01-01T00:00:00Z'));
  await repo.saveSnapshot(snap(half, '2026-01-02T00:00:00Z'));
  await repo.close();
}

async function main(): Promise<void> {
  const sizes = arg('blobs', '100000,1000000').split(',').map(Number);
  const base = arg('dir', fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-rss-')));
  const password = 'bench';
  const rows: Array<{ blobs: number; step: string; m: Measure }> = [];
  for (const n of sizes) {
    const dir = path.join(base, `repo-${n}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const t0 = Date.now();
    await build(dir, n, password);
    console.error(`built ${n} blobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const env = { ...process.env, LIFEBOAT_REPOSITORY: dir, LIFEBOAT_PASSWORD: password, LIFEBOAT_CACHE_DIR: path.join(base, `cache-${n}`) };
    const run = async (step: string, args: string[]) => {
      const m = await timed(process.execPath, [CLI, ...args], env);
      rows.push({ blobs: n, step, m });
      console.error(`${n} ${step}: ${m.wallS.toFixed(1)} s, ${m.rssMiB.toFixed(0)} MiB`);
    };
    await run('cache rebuild (index sync)', ['cache', 'rebuild', '-q']);
    await run('check', ['check', '-q']);
    await run('check --read-data', ['check', '--read-data', '-q']);
    await run('forget (oldest)', ['forget', '--keep-last', '1', '-q']);
    await run('prune --dry-run', ['prune', '--dry-run', '--grace', '0s', '-q']);
    await run('prune', ['prune', '--grace', '0s', '-q']);
    await run('check after prune', ['check', '-q']);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log('| blobs | step | wall s | peak RSS MiB |');
  console.log('|---:|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.blobs} | ${r.step} | ${r.m.wallS.toFixed(1)} | ${r.m.rssMiB.toFixed(0)} |`);
  fs.rmSync(base, { recursive: true, force: true });
}

if (process.argv[1] && new URL(import.meta.url).pathname === path.resolve(process.argv[1])) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
