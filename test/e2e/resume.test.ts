/**
 * Resuming an interrupted backup (issue 3): with LIFEBOAT_CHECKPOINT_INTERVAL=1s a long backup
 * writes index checkpoints as it goes; after `kill -9` no snapshot exists, and running the same
 * backup again uploads only what no checkpoint named. Soundness is checked by a full restore and
 * by reading every indexed pack header and blob through the library.
 *
 * The backup is fast (~100 MB/s), so the test does not race it: it runs the CLI in short slices
 * (SIGCONT, a few ms, SIGSTOP) and inspects the repository only while the process is stopped,
 * killing it once the checkpoints cover enough of the data. Slowed down ~10 times in wall-clock
 * time, the run writes a checkpoint after nearly every pack (interval 1 s), long before its end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, initCliRepo } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import { openStorage } from '../../src/storage/open.js';
import { Repository } from '../../src/repo/repository.js';

const FILES = 30;
const FILE_SIZE = 5 * 1024 * 1024;
const TOTAL = FILES * FILE_SIZE; // 150 MiB of incompressible data
/** The backup runs this long between two looks (stopped for at least STOP_MS each time). */
const SLICE_MS = 5;
const STOP_MS = 40;

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

function spawnCli(args: string[], env: Record<string, string>): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('LIFEBOAT_') && !k.startsWith('LIFEBOAT_TEST_')) delete base[k];
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bytes of the data packs the repository's index files name (re-synced on every call). */
async function indexedDataBytes(repo: Repository): Promise<{ indexFiles: number; bytes: number }> {
  await repo.syncIndex();
  let bytes = 0;
  for (const p of repo.cache.packs()) if (p.type === 0) bytes += p.size;
  return { indexFiles: repo.cache.indexIds().size, bytes };
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe.each(['local', 's3'] as const)('resume after kill -9 (%s)', (kind) => {
  let dir: string;
  let src: string;
  let repoLoc: string;
  let env: Record<string, string>;
  const hashes = new Map<string, string>();

  beforeAll(async () => {
    dir = await makeTempDir();
    src = path.join(dir, 'data');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < FILES; i++) {
      const name = path.join(src, i % 2 ? 'sub' : '', `f${String(i).padStart(2, '0')}.bin`);
      const bytes = randomBytes(FILE_SIZE);
      fs.writeFileSync(name, bytes);
      hashes.set(path.relative(src, name), createHash('sha256').update(bytes).digest('hex'));
    }
    env = await initCliRepo(kind, dir, buckets);
    repoLoc = env.LIFEBOAT_REPOSITORY!;
  });

  it('a killed backup leaves checkpoints; the same backup again reuses them and the repository is sound', async () => {
    // a library view of the repository, with its own cache, to watch the checkpoints
    const watcher = await Repository.open(await openStorage(repoLoc), 'secret', { cacheDir: path.join(dir, 'watch-cache') });
    let atKill: { indexFiles: number; bytes: number };
    try {
      const first = spawnCli(['backup', src, '--json'], { ...env, LIFEBOAT_CHECKPOINT_INTERVAL: '1s' });
      let exitCode: number | null | undefined;
      void first.exited.then((c) => (exitCode = c));
      const deadline = Date.now() + 180_000;
      for (;;) {
        await sleep(SLICE_MS);
        first.child.kill('SIGSTOP');
        await sleep(STOP_MS); // let the stop take effect (and the wall clock run on)
        expect(exitCode, `the first backup ended before it could be killed: ${first.stderr()}`).toBeUndefined();
        for await (const o of watcher.storage.list('snapshots/')) expect.fail(`the first backup saved ${o.name} before it could be killed`);
        const now = await indexedDataBytes(watcher);
        if (now.indexFiles >= 1 && now.bytes >= TOTAL * 0.4) {
          atKill = now;
          break;
        }
        expect(Date.now()).toBeLessThan(deadline);
        first.child.kill('SIGCONT');
      }
      first.child.kill('SIGKILL');
      expect(await first.exited).toBeNull(); // killed by a signal
    } finally {
      await watcher.close();
      await watcher.storage.close();
    }
    // index checkpoints were written while the backup ran, but no snapshot
    expect(atKill.indexFiles).toBeGreaterThanOrEqual(1);
    const snaps = await runCli(['snapshots', '--json'], env);
    expect(snaps.code).toBe(0);
    expect(JSON.parse(snaps.stdout)).toEqual([]);

    // the same backup again (default checkpoint interval): it reads everything, uploads the rest
    const again = await runCli(['backup', src, '--json'], env);
    if (again.code !== 0) console.error(again.stderr);
    expect(again.code).toBe(0);
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as Record<string, number | string>;
    expect(summary.message_type).toBe('summary');
    expect(summary.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(summary.total_bytes_processed).toBe(TOTAL);
    expect(summary.files_new).toBe(FILES);
    const added = summary.data_added as number;
    expect(added).toBeLessThan(TOTAL * 0.7);
    // what the checkpoints named before the kill is not uploaded again (packs carry some overhead)
    expect(added).toBeLessThanOrEqual(TOTAL - atKill.bytes + 1024 * 1024);

    // sound: a fresh restore equals the source byte for byte ...
    const target = path.join(dir, 'restored');
    const restore = await runCli(['restore', 'latest', '--target', target], env);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const restoredRoot = path.join(target, src);
    for (const [rel, h] of hashes) expect(sha(path.join(restoredRoot, rel)), rel).toBe(h);
    const count = (d: string): number =>
      fs.readdirSync(d, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? count(path.join(d, e.name)) : 1), 0);
    expect(count(restoredRoot)).toBe(FILES);
    fs.rmSync(target, { recursive: true, force: true });

    // ... and every index entry matches its pack's header and loads (decrypts, verifies)
    const repo = await Repository.open(await openStorage(repoLoc), 'secret', { cacheDir: path.join(dir, 'check-cache') });
    try {
      const indexIds: string[] = [];
      for await (const o of repo.storage.list('index/')) indexIds.push(o.name.slice('index/'.length));
      expect(indexIds.length).toBeGreaterThanOrEqual(2); // the checkpoints of the killed run + the final one
      const packs = repo.cache.packs();
      expect(packs.length).toBeGreaterThan(0);
      const headers = new Map<string, Map<string, { offset: number; length: number }>>();
      for (const p of packs) {
        const entries = await repo.readPackHeader(p.id);
        headers.set(p.id, new Map(entries.map((e) => [Buffer.from(e.id).toString('hex'), { offset: e.offset, length: e.length }])));
      }
      let blobs = 0;
      let dataBytes = 0;
      for (const id of indexIds) {
        const file = await repo.loadIndexFile(id);
        for (const p of file.packs) {
          const header = headers.get(p.id);
          expect(header, `pack ${p.id} of index ${id}`).toBeDefined();
          for (const b of p.blobs) {
            expect(header!.get(b.id), `blob ${b.id} in pack ${p.id}`).toEqual({ offset: b.offset, length: b.length });
            const plain = await repo.loadBlob(Buffer.from(b.id, 'hex'));
            if (p.type === 'data') dataBytes += plain.length;
            blobs++;
          }
        }
      }
      expect(blobs).toBeGreaterThan(FILES);
      expect(dataBytes).toBeGreaterThanOrEqual(TOTAL);
    } finally {
      await repo.close();
      await repo.storage.close();
    }
  }, 300_000);
});
