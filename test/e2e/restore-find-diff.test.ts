import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, FAST_KDF } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';


describe('find and diff (e2e, local)', () => {
  it('finds files by name and path, and diffs two snapshots', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a/b/report.txt'), 'one');
    fs.writeFileSync(path.join(src, 'a/keep.log'), 'same');
    fs.writeFileSync(path.join(src, 'gone.txt'), 'bye');
    const env = { LIFEBOAT_REPOSITORY: path.join(dir, 'repo'), LIFEBOAT_PASSWORD: 'pw', LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
    expect((await runCli(['init', ...FAST_KDF], env)).code).toBe(0);
    expect((await runCli(['backup', src], env)).code).toBe(0);
    const first = (JSON.parse((await runCli(['snapshots', '--json'], env)).stdout) as Array<{ id: string }>)[0]!.id;

    const f = await runCli(['find', '*.txt', '--json'], env);
    expect(f.code).toBe(0);
    const found = JSON.parse(f.stdout) as Array<{ hits: number; snapshot: string; matches: Array<{ path: string }> }>;
    expect(found[0]!.snapshot).toBe(first);
    expect(found[0]!.matches.map((m) => m.path).sort()).toEqual([`${src}/a/b/report.txt`, `${src}/gone.txt`]);
    const byPath = await runCli(['find', `${src}/a/**/*.txt`], env);
    expect(byPath.stdout).toContain(`${src}/a/b/report.txt`);
    expect(byPath.stdout).not.toContain('gone.txt');

    fs.writeFileSync(path.join(src, 'a/b/report.txt'), 'two, longer');
    fs.rmSync(path.join(src, 'gone.txt'));
    fs.writeFileSync(path.join(src, 'new.txt'), 'hello');
    expect((await runCli(['backup', src], env)).code).toBe(0);
    const d = await runCli(['diff', first.slice(0, 8), 'latest', '--json'], env);
    expect(d.code).toBe(0);
    const lines = d.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message_type: string; path?: string; modifier?: string; changed_files?: number; added?: { files: number }; removed?: { files: number } });
    const changes = lines.filter((l) => l.message_type === 'change').map((l) => `${l.modifier} ${l.path}`);
    expect(changes).toContain(`M ${src}/a/b/report.txt`);
    expect(changes).toContain(`- ${src}/gone.txt`);
    expect(changes).toContain(`+ ${src}/new.txt`);
    expect(changes.some((c) => c.includes('keep.log'))).toBe(false);
    const stats = lines.at(-1)!;
    expect(stats.message_type).toBe('statistics');
    expect([stats.added!.files, stats.removed!.files, stats.changed_files]).toEqual([1, 1, 1]);
    const human = await runCli(['diff', first, 'latest'], env);
    expect(human.stdout).toMatch(/^M +\S+report\.txt$/m);
    expect(human.stdout).toMatch(/Files: +1 new, +1 removed, +1 changed/);
  });
});
