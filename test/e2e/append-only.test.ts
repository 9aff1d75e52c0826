/**
 * Issue 9, append-only operation: a client started with --append-only, LIFEBOAT_APPEND_ONLY=1 or
 * `append_only: true` in its config backs up and restores, but forget, prune, repair and key
 * removal refuse with one line and exit 1, and no object other than locks is ever deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCliRepo, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';
import { expectRestoresTo, snapshotIds, treeState } from '../helpers/tree-state.js';

function objects(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.filter((n) => !n.startsWith('locks/')).sort();
}

describe('append-only clients', () => {
  it('back up and restore, but never delete: forget, prune, repair and key removal refuse', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.txt'), 'one\n');
    const env = await initCliRepo('local', dir, []);
    const repoDir = env.LIFEBOAT_REPOSITORY!;
    fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), 'append_only: true\n');
    const variants: Array<{ name: string; args: string[]; env: Record<string, string> }> = [
      { name: 'flag', args: ['--append-only'], env },
      { name: 'environment', args: [], env: { ...env, LIFEBOAT_APPEND_ONLY: '1' } },
      { name: 'config', args: ['--config', path.join(dir, 'lifeboat.yaml')], env },
    ];
    for (const v of variants) {
      fs.writeFileSync(path.join(src, `${v.name}.txt`), `${v.name}\n`);
      const b = await runCli([...v.args, 'backup', src], v.env);
      expect(b.code, `${v.name}: ${b.stderr}`).toBe(0);
    }
    const ids = await snapshotIds(env);
    expect(ids).toHaveLength(3);
    await expectRestoresTo(env, ids[2]!, src, treeState(src), path.join(dir, 'restore'));
    const before = objects(repoDir);

    for (const v of variants) {
      for (const cmd of [['forget', ids[0]!], ['forget', '--keep-last', '1'], ['prune', '--grace', '0s'], ['repair', 'index'], ['repair', 'snapshots', '--forget'], ['key', 'remove', 'ffff']]) {
        const r = await runCli([...v.args, ...cmd], v.env);
        expect(r.code, `${v.name} ${cmd.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stderr.trim().split('\n'), `${v.name} ${cmd.join(' ')}`).toEqual([expect.stringMatching(/^lifeboat: this client is append-only and may not .+/)]);
      }
      // looking is allowed
      const dry = await runCli([...v.args, 'prune', '--dry-run', '--grace', '0s'], v.env);
      expect(dry.code, dry.stderr).toBe(0);
      const dryForget = await runCli([...v.args, 'forget', '--keep-last', '1', '--dry-run'], v.env);
      expect(dryForget.code, dryForget.stderr).toBe(0);
    }
    expect(objects(repoDir)).toEqual(before);
    expect(await snapshotIds(env)).toEqual(ids);
    // the trusted host (no append-only) does the maintenance
    const f = await runCli(['forget', '--keep-last', '1', '--prune', '--grace', '0s'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(await snapshotIds(env)).toEqual([ids[2]!]);
  }, 300_000);
});
