/** `lifeboat guard -- CMD`: rollback point first, then the command, its exit status passed through. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { lifeboatEnv, preUpgradeImages, type LifeboatEnv } from '../fakes/openstack/lifeboat-env.js';

let t: LifeboatEnv;
afterEach(async () => t?.cleanup());

describe('guard', () => {
  it('snapshots, records the command line, runs it and passes its exit status through', async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: snapshot\n' });
    const marker = path.join(t.dir, 'ran');
    const r = await runCli(['guard', '--', 'sh', '-c', `touch ${marker}; exit 7`], t.env);
    expect(r.code).toBe(7);
    expect(fs.existsSync(marker)).toBe(true);
    const imgs = preUpgradeImages(t.f);
    expect(imgs).toHaveLength(1);
    expect(imgs[0]!['lifeboat:command']).toBe(`sh -c touch ${marker}; exit 7`);
    expect(imgs[0]!['lifeboat:trigger']).toBe('guard');
    expect(imgs[0]!.status).toBe('active'); // waited before running the command
    const ok = await runCli(['guard', '--', 'true'], t.env);
    expect(ok.code).toBe(0);
  });

  it('fail closed (default): the command does not run when the rollback point fails', async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: snapshot\n' });
    t.f.cloud.uploadOutcome = 'killed';
    const marker = path.join(t.dir, 'ran');
    const r = await runCli(['guard', '--', 'touch', marker], t.env);
    expect(r.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
    expect(r.stderr).toMatch(/the rollback point failed, not running "touch .*went to killed/);
    const open = await runCli(['guard', '--fail', 'open', '--', 'touch', marker], t.env);
    expect(open.code).toBe(0);
    expect(fs.existsSync(marker)).toBe(true);
    expect(open.stderr).toMatch(/WARNING: the rollback point FAILED/);
  });

  it('a missing command: 127', async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: files\n' });
    const r = await runCli(['guard', '--', 'no-such-command-xyz'], t.env);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/command not found/);
  });
});
