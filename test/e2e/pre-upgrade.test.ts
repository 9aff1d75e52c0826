/** `lifeboat pre-upgrade`: instance snapshot and/or file backup with the software manifest. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { lifeboatEnv, preUpgradeImages, type LifeboatEnv } from '../fakes/openstack/lifeboat-env.js';

let t: LifeboatEnv;
afterEach(async () => t?.cleanup());

interface PreJson {
  ok: boolean;
  instance_snapshot: { snapshot: { id: string }; complete: boolean } | null;
  instance_snapshot_error: string | null;
  files: { snapshot_id: string; paths: string[] } | null;
  skipped: string[];
}

describe('pre-upgrade', () => {
  it('both: a waited-for instance snapshot of type pre-upgrade (rotation 3 by default) and a tagged file backup with the manifest', async () => {
    t = await lifeboatEnv();
    for (let i = 0; i < 4; i++) {
      const r = await runCli(['--json', 'pre-upgrade', '--reason', `upgrade ${i}`], t.env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout) as PreJson;
      expect(j.ok).toBe(true);
      expect(j.instance_snapshot!.complete).toBe(true);
    }
    const imgs = preUpgradeImages(t.f);
    expect(imgs).toHaveLength(3);
    expect(imgs.map((i) => i['lifeboat:reason']).sort()).toEqual(['upgrade 1', 'upgrade 2', 'upgrade 3']);
    expect(imgs[0]!.backup_type).toBe('pre-upgrade');
    const snaps = await runCli(['--json', 'snapshots', '--tag', 'pre-upgrade'], t.env);
    const list = JSON.parse(snaps.stdout) as { paths: string[] }[];
    expect(list).toHaveLength(4);
    expect(list[0]!.paths).toContain(t.sample);
    const ls = await runCli(['ls', 'latest', path.join(t.dir, 'state', 'software-manifest')], t.env);
    expect(ls.stdout).toContain('packages.txt');
    expect(ls.stdout).toContain('systemd-enabled-units.txt');
  });

  it('files only works with no cloud at all; the default mode skips a missing cloud', async () => {
    t = await lifeboatEnv();
    fs.writeFileSync(t.config, fs.readFileSync(t.config, 'utf8').replace(/cloud:\n  name: fake\n  clouds_file: .*\n/, ''));
    const env = { ...t.env, HOME: path.join(t.dir, 'nohome'), OS_CLOUD: undefined };
    const r = await runCli(['--json', 'pre-upgrade'], env);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as PreJson;
    expect(j.files!.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(j.instance_snapshot).toBeNull();
    expect(j.skipped.join(' ')).toMatch(/no OpenStack cloud configured/);
    const explicit = await runCli(['pre-upgrade', '--mode', 'snapshot'], env);
    expect(explicit.code).toBe(1);
    expect(explicit.stderr).toMatch(/^lifeboat: instance snapshot failed: no OpenStack cloud configured/);
  });

  it('a failing snapshot fails the command (exit 1) but the file backup is still made', async () => {
    t = await lifeboatEnv();
    t.f.cloud.uploadOutcome = 'killed';
    const r = await runCli(['--json', 'pre-upgrade'], t.env);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as PreJson;
    expect(j.ok).toBe(false);
    expect(j.instance_snapshot_error).toMatch(/went to killed/);
    expect(j.files).not.toBeNull();
    expect(r.stderr).toMatch(/^lifeboat: instance snapshot failed: openstack cloud "fake": image .* went to killed/);
  });

  it('mode snapshot from the config, --no-wait', async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: snapshot\n    rotation: 1\n' });
    const r = await runCli(['--json', 'pre-upgrade', '--no-wait'], t.env);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as PreJson;
    expect(j.files).toBeNull();
    expect(j.instance_snapshot!.complete).toBe(false);
    const post = t.f.cloud.requests((q) => q.method === 'POST').at(-1)!.body as { createBackup: { rotation: number; backup_type: string } };
    expect(post.createBackup).toMatchObject({ rotation: 1, backup_type: 'pre-upgrade' });
  });
});
