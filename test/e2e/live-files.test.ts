/**
 * Live files (issue 3): a file appended to while `lifeboat backup` reads it is stat'ed before and
 * after the read and read again; if it still changed, it is reported ("file changed while being
 * read"), its bytes are kept, the snapshot is saved and the exit code is 3. A path that vanished
 * is reported and skipped, with the same outcome. (An unreadable file is covered by backup.test.ts.)
 *
 * Whether the writer touches the file during the reads depends on scheduling, so both outcomes
 * (0 and 3) are accepted; each is checked for what it implies, and the restored bytes must be a
 * consistent prefix of the file either way. No timing is asserted.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, initCliRepo } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import { pseudoRandom } from '../helpers/repo.js';

const LINE = 'a line appended while the backup reads this file\n';

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

interface ErrorLine {
  message_type: string;
  error: { message: string };
  item: string;
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe.each(['local', 's3'] as const)('live files (%s)', (kind) => {
  let dir: string;
  let src: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await makeTempDir();
    src = path.join(dir, 'data');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'still.bin'), pseudoRandom(2 * 1024 * 1024, 5));
    env = await initCliRepo(kind, dir, buckets);
  });

  it('a file appended to during the backup: re-read or reported (exit 3), snapshot saved, bytes consistent', async () => {
    const live = path.join(src, 'growing.log');
    // big enough that reading it takes a while: 32 MiB of lines
    fs.writeFileSync(live, LINE.repeat(Math.ceil((32 * 1024 * 1024) / LINE.length)));
    const initialSize = fs.statSync(live).size;
    // the writer: appends as fast as it can, bounded by `timeout` should the test die
    const writer = spawn('timeout', ['120', 'bash', '-c', `while :; do printf '%s' "$1" >> "$2"; done`, 'writer', LINE, live], {
      stdio: 'ignore',
    });
    const writerExited = new Promise<void>((r) => writer.on('exit', () => r()));
    let r;
    try {
      // wait until the writer is really appending
      for (let i = 0; i < 500 && fs.statSync(live).size === initialSize; i++) await new Promise((res) => setTimeout(res, 10));
      expect(fs.statSync(live).size).toBeGreaterThan(initialSize);
      r = await runCli(['backup', src, '--json'], env);
    } finally {
      writer.kill('SIGTERM');
      await writerExited;
    }
    const final = fs.readFileSync(live);

    const summary = lastJson(r.stdout);
    expect(summary.message_type).toBe('summary');
    expect(summary.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(summary.files_new).toBe(2);
    if (r.code === 3) {
      // reported: one error line naming the file, then the incomplete-snapshot line
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      const err = JSON.parse(lines[0]!) as ErrorLine;
      expect(err).toMatchObject({ message_type: 'error', item: live, error: { message: 'file changed while being read' } });
      expect(lines[1]).toMatch(/could not be read.*incomplete/);
      expect(summary).toMatchObject({ errors: 1, incomplete: true });
    } else {
      // the second read saw a stable file
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(summary).toMatchObject({ errors: 0, incomplete: false });
    }

    // whatever was kept is a consistent prefix of the file (appends only): whole lines, no holes
    const target = path.join(dir, 'restored');
    const restore = await runCli(['restore', 'latest', '--target', target, '--verify'], env);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const restored = fs.readFileSync(path.join(target, live));
    expect(restored.length).toBeGreaterThanOrEqual(initialSize);
    expect(restored.length).toBeLessThanOrEqual(final.length);
    expect(restored.equals(final.subarray(0, restored.length))).toBe(true);
    expect(fs.readFileSync(path.join(target, src, 'still.bin')).equals(pseudoRandom(2 * 1024 * 1024, 5))).toBe(true);
    fs.rmSync(target, { recursive: true, force: true });

    // the file standing still again: the next backup stores it cleanly, exit 0
    const again = await runCli(['backup', src, '--json'], env);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(lastJson(again.stdout)).toMatchObject({ errors: 0, incomplete: false });
    const t2 = path.join(dir, 'restored2');
    expect((await runCli(['restore', 'latest', '--target', t2], env)).code).toBe(0);
    expect(fs.readFileSync(path.join(t2, live)).equals(final)).toBe(true);
    fs.rmSync(t2, { recursive: true, force: true });
  });

  it('a vanished path: reported and skipped, the rest saved, exit 3', async () => {
    const gone = path.join(dir, 'was-here');
    fs.writeFileSync(gone, 'soon gone');
    fs.rmSync(gone);
    const r = await runCli(['backup', src, gone, '--json'], env);
    expect(r.code).toBe(3);
    const lines = r.stderr.trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ message_type: 'error', item: gone, error: { message: expect.stringMatching(/ENOENT/) } });
    expect(lines.at(-1)).toMatch(/could not be read; snapshot [0-9a-f]{8} is incomplete/);
    const summary = lastJson(r.stdout);
    expect(summary.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(summary).toMatchObject({ errors: 1, incomplete: true });

    const human = await runCli(['backup', src, gone], env);
    expect(human.code).toBe(3);
    expect(human.stderr.split('\n')[0]).toBe(`error: ${gone}: no such file or directory (ENOENT)`);
    const ls = await runCli(['ls', 'latest'], env);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(path.join(src, 'still.bin'));
    // (the header names the requested paths; no entry does)
    expect(ls.stdout.split('\n')).not.toContain(gone);
  });
});
