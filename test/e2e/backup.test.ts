import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, initCliRepo } from '../helpers/cli.js';
import { makeTempDir, s3Endpoint, deleteBucket } from '../helpers/storage-backends.js';
import { pseudoRandom } from '../helpers/repo.js';
import { afterAll } from 'vitest';


interface Summary {
  message_type: string;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  dirs_new: number;
  data_added: number;
  data_added_packed: number;
  total_files_processed: number;
  total_bytes_processed: number;
  total_duration: number;
  snapshot_id: string;
  files_read: number;
  data_blobs: number;
}

function lastJson(stdout: string): Summary {
  const lines = stdout.trim().split('\n');
  for (const l of lines.slice(0, -1)) expect(JSON.parse(l).message_type).toBe('status');
  return JSON.parse(lines.at(-1)!) as Summary;
}

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

describe.each(['local', 's3'] as const)('backup and snapshots (%s)', (kind) => {
  let dir: string;
  let src: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await makeTempDir();
    src = path.join(dir, 'data');
    fs.mkdirSync(path.join(src, 'sub/deeper'), { recursive: true });
    fs.mkdirSync(path.join(src, 'cache'));
    fs.writeFileSync(path.join(src, 'cache/CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n');
    fs.writeFileSync(path.join(src, 'cache/junk'), 'junk');
    fs.writeFileSync(path.join(src, 'a.txt'), 'alpha\n');
    fs.writeFileSync(path.join(src, 'skip.tmp'), 'temporary');
    fs.writeFileSync(path.join(src, 'sub/big.bin'), pseudoRandom(3 * 1024 * 1024, 11));
    fs.writeFileSync(path.join(src, 'sub/deeper/b.txt'), 'beta\n'.repeat(100));
    fs.writeFileSync(Buffer.from(path.join(src, 'sub/caf\xe9'), 'latin1'), 'latin-1 name');
    fs.symlinkSync('../a.txt', path.join(src, 'sub/link'));
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    env = await initCliRepo(kind, dir, buckets);
  });

  it('backs up a tree, then a second run reads nothing and adds nothing', async () => {
    const r = await runCli(['backup', src, '--json', '--tag', 'first', '--host', 'h1', '--exclude', '*.tmp', '--exclude-caches'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = lastJson(r.stdout);
    expect(s.message_type).toBe('summary');
    expect(s.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    // a.txt, big.bin, b.txt, café, CACHEDIR.TAG
    expect(s.files_new).toBe(5);
    expect(s.total_bytes_processed).toBe(6 + 3 * 1024 * 1024 + 500 + 12 + 44);
    expect(s.data_added).toBeGreaterThan(3 * 1024 * 1024);

    const again = await runCli(['backup', src, '--json', '--host', 'h1', '--exclude', '*.tmp', '--exclude-caches'], env);
    expect(again.code).toBe(0);
    const s2 = lastJson(again.stdout);
    expect(s2.files_unmodified).toBe(5);
    expect(s2.files_new + s2.files_changed).toBe(0);
    expect(s2.files_read).toBe(0);
    // no file content; only the trees above the path may change (their mtimes move as /tmp does)
    expect(s2.data_blobs).toBe(0);
    expect(s2.data_added).toBeLessThan(4096);

    const human = await runCli(['backup', src, '--host', 'h1', '--exclude', '*.tmp', '--exclude-caches'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/using parent snapshot [0-9a-f]{8}/);
    expect(human.stdout).toMatch(/Files: +0 new, +0 changed, +5 unmodified/);
    expect(human.stdout).toMatch(/Added to the repository: /);
    expect(human.stdout).toMatch(/snapshot [0-9a-f]{8} saved/);
  });

  it('snapshots lists them (table and --json), filtered by host, tag, path, latest', async () => {
    const list = await runCli(['snapshots', '--json'], env);
    expect(list.code).toBe(0);
    const snaps = JSON.parse(list.stdout) as Array<{ id: string; short_id: string; hostname: string; tags: string[]; paths: string[]; tree: string }>;
    expect(snaps).toHaveLength(3);
    expect(snaps[0]!.short_id).toBe(snaps[0]!.id.slice(0, 8));
    expect(snaps[0]!.paths).toEqual([src]);
    expect(snaps[0]!.tags).toEqual(['first']);
    expect(JSON.parse((await runCli(['snapshots', '--json', '--tag', 'first'], env)).stdout)).toHaveLength(1);
    expect(JSON.parse((await runCli(['snapshots', '--json', '--host', 'other'], env)).stdout)).toHaveLength(0);
    expect(JSON.parse((await runCli(['snapshots', '--json', '--path', src], env)).stdout)).toHaveLength(3);
    const latest = JSON.parse((await runCli(['snapshots', '--json', '--latest', '1'], env)).stdout) as Array<{ id: string }>;
    expect(latest.map((x) => x.id)).toEqual([snaps[2]!.id]);
    const table = await runCli(['snapshots'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID +Time +Host +Tags +Paths +Size/);
    expect(table.stdout).toContain(snaps[0]!.short_id);
    expect(table.stdout).toMatch(/3 snapshots\n$/);
  });

  it('an unreadable file: reported on stderr, snapshot saved, exit 3', async () => {
    // tests run as root, which reads any file: /proc/<pid>/mem of another process fails for
    // root too (EIO when read from offset 0, an unmapped address)
    const mem = `/proc/${process.pid}/mem`;
    const r = await runCli(['backup', src, mem, '--json'], env);
    if (r.code !== 3) console.error(r.stderr);
    expect(r.code).toBe(3);
    const errs = r.stderr.trim().split('\n');
    expect(JSON.parse(errs[0]!)).toMatchObject({ message_type: 'error', item: mem });
    expect(errs.at(-1)).toMatch(/could not be read.*incomplete/);
    const s = lastJson(r.stdout);
    expect(s.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    const human = await runCli(['backup', src, mem], env);
    expect(human.code).toBe(3);
    expect(human.stderr.split('\n')[0]).toMatch(new RegExp(`^error: ${mem}: .*\\(EIO\\)$`));
  });

  it('--stdin-from-command: a failing command saves no snapshot; a good one stores its output', async () => {
    const before = (JSON.parse((await runCli(['snapshots', '--json'], env)).stdout) as unknown[]).length;
    const bad = await runCli(['backup', '--stdin-from-command', '--stdin-filename', 'dump.sql', '--', 'sh', '-c', 'echo partial; echo "line one" >&2; echo "fatal: disk on fire" >&2; exit 7'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^lifeboat: command sh exited with status 7: .*fatal: disk on fire$/m);
    const killed = await runCli(['backup', '--stdin-from-command', '--stdin-filename', 'dump.sql', '--', 'sh', '-c', 'echo x; kill -9 $$'], env);
    expect(killed.code).toBe(1);
    expect(killed.stderr).toMatch(/killed by SIGKILL/);
    expect((JSON.parse((await runCli(['snapshots', '--json'], env)).stdout) as unknown[]).length).toBe(before);

    const good = await runCli(['backup', '--json', '--stdin-from-command', '--stdin-filename', 'db/dump.sql', '--', 'sh', '-c', 'printf "create table t;\\n"'], env);
    expect(good.code).toBe(0);
    const s = lastJson(good.stdout);
    expect(s.total_bytes_processed).toBe(16);
    const snaps = JSON.parse((await runCli(['snapshots', '--json', '--path', '/db/dump.sql'], env)).stdout) as Array<{ source: unknown }>;
    expect(snaps).toHaveLength(1);
    expect(snaps[0]!.source).toEqual({ type: 'command', command: ['sh', '-c', 'printf "create table t;\\n"'] });

    const stdin = await runCli(['backup', '--json', '--stdin', '--stdin-filename', 'in.txt'], env, 'from stdin\n');
    expect(stdin.code).toBe(0);
    expect(lastJson(stdin.stdout).total_bytes_processed).toBe(11);
  });

  it('bad flags and a dry run', async () => {
    expect((await runCli(['backup'], env)).code).toBe(1);
    expect((await runCli(['backup', src, '--exclude-larger-than', 'huge'], env)).stderr).toMatch(/--exclude-larger-than: invalid size/);
    for (const bad of [['--upload-concurrency', '0'], ['--upload-concurrency', 'many']]) {
      const r = await runCli([...bad, 'backup', src], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^lifeboat: --upload-concurrency .*: must be an integer from 1 to 64\n$/);
    }
    const viaEnv = await runCli(['backup', src], { ...env, LIFEBOAT_UPLOAD_CONCURRENCY: '65' });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toMatch(/--upload-concurrency 65: must be an integer from 1 to 64/);
    fs.writeFileSync(path.join(src, 'new.txt'), 'new file');
    const before = (JSON.parse((await runCli(['snapshots', '--json'], env)).stdout) as unknown[]).length;
    const dry = await runCli(['backup', src, '--dry-run', '--json', '--host', 'h1', '--exclude', '*.tmp', '--exclude-caches'], env);
    expect(dry.code).toBe(0);
    const s = lastJson(dry.stdout);
    expect(s.files_new).toBe(1);
    expect(s.snapshot_id).toBeUndefined();
    expect((JSON.parse((await runCli(['snapshots', '--json'], env)).stdout) as unknown[]).length).toBe(before);
    fs.rmSync(path.join(src, 'new.txt'));
  });
});
