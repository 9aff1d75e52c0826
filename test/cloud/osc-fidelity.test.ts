/**
 * Fidelity of the fake cloud: Debian's real `openstack` client (python3-openstackclient, installed
 * here when missing) runs `server backup create`, `server image create` and `image list` against it.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCloud } from '../fakes/openstack/fake-cloud.js';

function ensureOsc(): boolean {
  try {
    execFileSync('openstack', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-openstackclient'], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: 600_000,
      });
      return true;
    } catch {
      return false;
    }
  }
}

function osc(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean: Record<string, string | undefined> = { ...process.env };
    for (const k of Object.keys(clean)) if (k.startsWith('OS_') || /_proxy$/i.test(k)) delete clean[k];
    const child = spawn('openstack', args, { env: { ...clean, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const haveOsc = ensureOsc();

describe('the real openstack client against the fake cloud', () => {
  it('has Debian\'s openstack client (python3-openstackclient, installed when missing)', () => {
    expect(haveOsc).toBe(true);
  });

  let f: Awaited<ReturnType<typeof startFakeCloud>>;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    f = await startFakeCloud({ stepMs: 50 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-osc-'));
    fs.writeFileSync(
      path.join(dir, 'clouds.yaml'),
      `clouds:
  fake:
    auth:
      auth_url: ${f.url}/identity
      username: demo
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  fakeapp:
    auth_type: v3applicationcredential
    auth:
      auth_url: ${f.url}/identity
      application_credential_id: ${f.appCred.id}
      application_credential_secret: ${f.appCred.secret}
    region_name: RegionOne
    interface: public
    identity_api_version: 3
`,
    );
    fs.writeFileSync(path.join(dir, 'secure.yaml'), `clouds:\n  fake:\n    auth:\n      password: ${f.demo.password}\n`);
    env = { OS_CLIENT_CONFIG_FILE: path.join(dir, 'clouds.yaml'), OS_CLIENT_SECURE_FILE: path.join(dir, 'secure.yaml'), OS_CLOUD: 'fake', HOME: dir };
  });

  afterAll(async () => {
    await f?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('server backup create: createBackup with type and rotation, rotation applied by the fake as Nova does', async () => {
    const r = await osc(['server', 'backup', 'create', '--name', 'bk1', '--type', 'daily', '--rotate', '2', 'web1'], env);
    expect(r.stderr).not.toMatch(/Traceback/);
    expect(r.code, r.stderr).toBe(0);
    const post = f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action'));
    expect(post.at(-1)!.body).toEqual({ createBackup: { name: 'bk1', backup_type: 'daily', rotation: 2 } });
    const img = [...f.cloud.images.values()].find((i) => i.name === 'bk1')!;
    expect(img.image_type).toBe('backup');
    expect(img.instance_uuid).toBe(f.web1.id);
  });

  it('server image create --wait (microversion 2.45, image_id body) and with an application credential', async () => {
    await new Promise((r) => setTimeout(r, 400)); // let the backup above finish (task_state null)
    const r = await osc(['server', 'image', 'create', '--name', 'snap1', '--property', 'purpose=test', '--wait', 'web1'], env);
    expect(r.code, r.stderr).toBe(0);
    const img = [...f.cloud.images.values()].find((i) => i.name === 'snap1')!;
    expect(img.status).toBe('active');
    expect(img.image_type).toBe('snapshot');
    expect(img.purpose).toBe('test');
    const r2 = await osc(['server', 'image', 'create', '--name', 'snap-vol', 'db1'], { ...env, OS_CLOUD: 'fakeapp' });
    expect(r2.code, r2.stderr).toBe(0);
    const vimg = [...f.cloud.images.values()].find((i) => i.name === 'snap-vol')!;
    expect(vimg.size).toBe(0);
    expect(JSON.parse(vimg.block_device_mapping as string)).toHaveLength(2);
  });

  it('image list follows Glance paging (relative next links)', async () => {
    for (let i = 0; i < 60; i++) f.cloud.addImage({ owner: f.projectId, name: `filler-${i}` });
    const r = await osc(['image', 'list', '-f', 'json'], env);
    expect(r.code, r.stderr).toBe(0);
    const names = (JSON.parse(r.stdout) as { Name: string }[]).map((x) => x.Name);
    expect(names).toContain('bk1');
    expect(names).toContain('snap1');
    expect(names.filter((n) => n.startsWith('filler-'))).toHaveLength(60);
    expect(f.cloud.requests((q) => q.path === '/image/v2/images' && q.query.includes('marker=')).length).toBeGreaterThanOrEqual(2);
  });

  it('server backup create on a boot-from-volume server: Nova\'s 400', async () => {
    const r = await osc(['server', 'backup', 'create', '--name', 'bkv', 'db1'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Backup is not supported for volume-backed instances/);
  });

  it('a busy server: 409 ConflictException, exit 1', async () => {
    // busy for longer than the client can take to start on a loaded machine
    f.cloud.busyFor(f.web1.id, 'image_uploading', 110_000);
    const r = await osc(['server', 'backup', 'create', '--name', 'bk2', '--type', 'daily', 'web1'], env);
    f.web1.taskState = null;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/409/);
    expect(r.stderr).toMatch(/task_state image_uploading/);
  });
});
