/** `lifeboat instance-snapshot` through the built CLI against the fake OpenStack. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startFakeCloud } from '../fakes/openstack/fake-cloud.js';
import { cloudEnv } from '../fakes/openstack/cli-env.js';

type Fake = Awaited<ReturnType<typeof startFakeCloud>>;

let f: Fake;
let dir: string;
let env: Record<string, string | undefined>;
const dirs: string[] = [];

beforeEach(async () => {
  f = await startFakeCloud({ stepMs: 40 });
  ({ dir, env } = cloudEnv(f.cloud));
  dirs.push(dir);
});

afterEach(async () => {
  await f.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const json = <T>(s: string) => JSON.parse(s) as T;
interface CreateJson {
  server_id: string;
  complete: boolean;
  snapshot: { id: string; status: string; kind: string; metadata: Record<string, string>; volume_snapshots: string[] };
  rotated: string[];
  kept: string[];
  warnings: string[];
}

const noSecrets = (r: { stdout: string; stderr: string }) => {
  for (const s of ['demo-pass-Secr3t', 'auditor-pass-Secr3t', 'rEaqvJka48mpvAppSecret', 'gAAAAA']) {
    expect(r.stdout + r.stderr).not.toContain(s);
  }
};

describe('image-backed server (createBackup)', () => {
  it('creates, waits, rotates as Nova does, and tags every snapshot', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'daily', '--rotation', '2', '--wait'], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = json<CreateJson>(r.stdout);
      expect(j.complete).toBe(true);
      expect(j.snapshot.status).toBe('active');
      expect(j.server_id).toBe(f.web1.id);
      ids.push(j.snapshot.id);
    }
    const img = f.cloud.images.get(ids[2]!)!;
    expect(img['lifeboat:instance']).toBe(f.web1.id);
    expect(img['lifeboat:type']).toBe('daily');
    expect(img['lifeboat:reason']).toBe('manual');
    expect(img['lifeboat:time_ms']).toMatch(/^\d{13}$/);
    expect(img['lifeboat:version']).toBeTruthy();
    expect(img['lifeboat:host']).toBeTruthy();
    expect(img.backup_type).toBe('daily');
    expect(img.image_type).toBe('backup');
    // Nova's rotation removed the oldest
    expect(f.cloud.images.has(ids[0]!)).toBe(false);
    expect(f.cloud.novaRotationLog).toEqual([ids[0]]);
    // the body Nova got, with microversion 2.45 negotiated
    const post = f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action')).at(-1)!;
    expect(post.microversion).toBe('compute 2.45');
    expect(Object.keys((post.body as { createBackup: object }).createBackup).sort()).toEqual(['backup_type', 'metadata', 'name', 'rotation']);

    const list = await runCli(['--json', 'instance-snapshot', 'list'], env);
    expect(list.code).toBe(0);
    const l = json<{ id: string; type: string }[]>(list.stdout);
    expect(l.map((s) => s.id)).toEqual([ids[2], ids[1]]);
    const human = await runCli(['instance-snapshot', 'list', '--type', 'daily'], env);
    expect(human.stdout).toContain(ids[2]!);
    expect(human.stdout).toMatch(/2 snapshots/);
  });

  it('rotation 0 deletes every backup of the type, the new one included (Nova semantics)', async () => {
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'weekly', '--rotation', '0', '--wait'], env);
    expect(r.code).toBe(0);
    const j = json<CreateJson>(r.stdout);
    expect(f.cloud.images.has(j.snapshot.id)).toBe(false);
    expect(j.snapshot.status).toBe('deleted');
  });

  it('protected images are skipped by rotation and still count', async () => {
    const first = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--type', 'monthly', '--rotation', '1', '--wait'], env)).stdout);
    const p = await runCli(['instance-snapshot', 'protect', first.snapshot.id], env);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('protected');
    expect(f.cloud.images.get(first.snapshot.id)!.protected).toBe(true);
    const second = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--type', 'monthly', '--rotation', '1', '--wait'], env)).stdout);
    // Nova: 2 images, rotation 1 ⇒ delete the oldest one, which is protected ⇒ skipped; both stay
    expect(f.cloud.images.has(first.snapshot.id)).toBe(true);
    expect(f.cloud.images.has(second.snapshot.id)).toBe(true);
    const del = await runCli(['instance-snapshot', 'delete', first.snapshot.id], env);
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/protected/);
    expect((await runCli(['instance-snapshot', 'unprotect', first.snapshot.id], env)).code).toBe(0);
    const del2 = await runCli(['instance-snapshot', 'delete', first.snapshot.id], env);
    expect(del2.code).toBe(0);
    expect(f.cloud.images.has(first.snapshot.id)).toBe(false);
  });

  it('a busy server (409) is waited for and retried', async () => {
    f.cloud.conflictNext = 2;
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'daily', '--wait'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action'))).toHaveLength(3);
  });

  it('a server in vm_state error is refused at once (waiting cannot help)', async () => {
    f.web1.vmState = 'error';
    const r = await runCli(['instance-snapshot', 'create', '--timeout', '10m'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is in vm_state error/);
    expect(f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action'))).toHaveLength(0);
  });

  it('a server busy past the timeout: one line, exit 1', async () => {
    f.cloud.busyFor(f.web1.id, 'image_uploading', 20_000);
    const r = await runCli(['instance-snapshot', 'create', '--timeout', '1s'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/openstack cloud "fake".*busy \(task_state image_uploading\)/);
  });

  it('an image that goes to killed fails the snapshot', async () => {
    f.cloud.uploadOutcome = 'killed';
    const r = await runCli(['instance-snapshot', 'create', '--wait'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/went to killed/);
    expect(r.stderr).toContain('openstack cloud "fake"');
  });

  it('an image Nova deletes on error fails the snapshot', async () => {
    f.cloud.uploadOutcome = 'deleted';
    const r = await runCli(['instance-snapshot', 'create', '--wait'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/deleted while uploading/);
  });

  it('an image left saving after Nova finished fails after a grace period', async () => {
    f.cloud.uploadOutcome = 'stalled';
    const r = await runCli(['instance-snapshot', 'create', '--wait'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is still saving but Nova finished with the server/);
  });

  it('--wait times out with a clear line', async () => {
    await f.close();
    f = await startFakeCloud({ stepMs: 5000 });
    ({ dir, env } = cloudEnv(f.cloud));
    dirs.push(dir);
    const r = await runCli(['instance-snapshot', 'create', '--wait', '--timeout', '1s'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not complete at the timeout/);
  });

  it('without --wait returns once Nova accepted (queued image)', async () => {
    const r = await runCli(['--json', 'instance-snapshot', 'create'], env);
    expect(r.code).toBe(0);
    const j = json<CreateJson>(r.stdout);
    expect(j.complete).toBe(false);
    expect(['queued', 'saving', 'active']).toContain(j.snapshot.status); // active only on a slow machine
  });

  it('an old cloud (max microversion 2.40): no header, image id from Location, or found by lifeboat:time_ms with rotation 0', async () => {
    await f.close();
    f = await startFakeCloud({ stepMs: 40, maxMicroversion: '2.40' });
    ({ dir, env } = cloudEnv(f.cloud));
    dirs.push(dir);
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--wait'], env);
    expect(r.code, r.stderr).toBe(0);
    const post = f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action')).at(-1)!;
    expect(post.microversion).toBeUndefined();
    expect(f.cloud.images.has(json<CreateJson>(r.stdout).snapshot.id)).toBe(true);
    const r0 = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'x', '--rotation', '0'], env);
    expect(r0.code, r0.stderr).toBe(0);
  });

  it('restore-help prints the rebuild and server create commands', async () => {
    const j = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--wait'], env)).stdout);
    const r = await runCli(['instance-snapshot', 'restore-help', j.snapshot.id], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`openstack server rebuild --image ${j.snapshot.id} ${f.web1.id}`);
    expect(r.stdout).toContain(`openstack server create --image ${j.snapshot.id} --flavor m1.small --network demo-net --key-name admin-key`);
    const other = f.cloud.addImage({ owner: f.projectId, name: 'not-mine' });
    const r2 = await runCli(['instance-snapshot', 'restore-help', other.id], env);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/not an instance snapshot of this server/);
  });

  it('lists across Glance pages', async () => {
    const base = Date.now() - 1_000_000;
    for (let i = 0; i < 130; i++) {
      f.cloud.addImage({ owner: f.projectId, name: `old-${i}`, 'lifeboat:instance': f.web1.id, 'lifeboat:type': 'daily', 'lifeboat:time_ms': String(base + i), _ms: base + i });
    }
    for (let i = 0; i < 40; i++) f.cloud.addImage({ owner: f.projectId, name: `other-${i}` });
    const r = await runCli(['--json', 'instance-snapshot', 'list'], env);
    expect(r.code).toBe(0);
    const l = json<{ name: string }[]>(r.stdout);
    expect(l).toHaveLength(130);
    expect(l[0]!.name).toBe('old-129');
    expect(f.cloud.requests((q) => q.path === '/image/v2/images' && q.query.includes('marker=')).length).toBeGreaterThan(0);
  });
});

describe('boot-from-volume server (createImage + lifeboat rotation)', () => {
  beforeEach(() => {
    f.cloud.selfServerId = f.db1.id;
  });

  it('snapshots every volume, waits for Cinder, rotates: volume snapshots first (confirmed gone), then the image', async () => {
    const out: CreateJson[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'daily', '--rotation', '2'], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      out.push(json<CreateJson>(r.stdout));
    }
    const [a, b, c] = out as [CreateJson, CreateJson, CreateJson];
    expect(c.snapshot.kind).toBe('volume');
    expect(c.complete).toBe(true);
    expect(c.snapshot.volume_snapshots).toHaveLength(2);
    for (const s of c.snapshot.volume_snapshots) expect(f.cloud.snapshots.get(s)!.status).toBe('available');
    expect(c.rotated).toEqual([a.snapshot.id]);
    expect(f.cloud.images.has(a.snapshot.id)).toBe(false);
    for (const s of a.snapshot.volume_snapshots) expect(f.cloud.snapshots.has(s)).toBe(false);
    expect(f.cloud.images.has(b.snapshot.id)).toBe(true);
    expect(f.cloud.snapshots.size).toBe(4);
    // the Cinder deletes came before the Glance delete
    const order = f.cloud.requests((q) => q.method === 'DELETE').map((q) => q.path);
    expect(order).toHaveLength(3);
    expect(order[2]).toBe(`/image/v2/images/${a.snapshot.id}`);
    expect(f.cloud.requests((q) => q.method === 'POST' && q.path.endsWith('/action')).every((q) => 'createImage' in (q.body as object))).toBe(true);
    // createBackup is never tried on a volume-backed server
    const img = f.cloud.images.get(c.snapshot.id)!;
    expect(img['lifeboat:instance']).toBe(f.db1.id);
    expect(img.size).toBe(0);
  });

  it('keeps an image whose volume snapshot is busy (and its snapshots)', async () => {
    const a = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--rotation', '1'], env)).stdout);
    f.cloud.busySnapshots.add(a.snapshot.volume_snapshots[0]!);
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--rotation', '1'], env);
    expect(r.code).toBe(0);
    const b = json<CreateJson>(r.stdout);
    expect(b.kept).toEqual([a.snapshot.id]);
    expect(f.cloud.images.has(a.snapshot.id)).toBe(true);
    expect(f.cloud.snapshots.get(a.snapshot.volume_snapshots[0]!)!.status).toBe('available');
  });

  it('rotation leaves alone images whose volume snapshots belong to another server (inherited lifeboat properties)', async () => {
    const a = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--rotation', '1'], env)).stdout);
    // a server booted from db1's snapshot inherits lifeboat:* image properties: its image names db1
    const other = f.cloud.addServer({ name: 'clone', projectId: f.projectId, userId: f.demo.id, volumeBacked: true });
    const snap = { id: 'c0ffee00-0000-4000-8000-000000000001', volumeId: other.volumes[0]!, projectId: f.projectId, status: 'available', name: 's', size: 20, createdAt: '2024-01-01T00:00:00.000000' };
    f.cloud.snapshots.set(snap.id, snap);
    const foreign = f.cloud.addImage({
      owner: f.projectId, name: 'clone-snap', size: 0, bdm_v2: 'True',
      block_device_mapping: JSON.stringify([{ source_type: 'snapshot', destination_type: 'volume', snapshot_id: snap.id, boot_index: 0 }]),
      'lifeboat:instance': f.db1.id, 'lifeboat:type': 'manual', 'lifeboat:time_ms': String(Date.now() - 5000), _ms: Date.now() - 5000,
    });
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--rotation', '1'], env);
    expect(r.code).toBe(0);
    const b = json<CreateJson>(r.stdout);
    expect(b.rotated).toEqual([a.snapshot.id]);
    expect(b.kept).toEqual([foreign.id]);
    expect(f.cloud.snapshots.has(snap.id)).toBe(true);
    expect(f.cloud.images.has(foreign.id)).toBe(true);
  });

  it('rotation 0 and protected images', async () => {
    const a = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--type', 'w', '--rotation', '3'], env)).stdout);
    await runCli(['instance-snapshot', 'protect', a.snapshot.id], env);
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--type', 'w', '--rotation', '0'], env);
    expect(r.code).toBe(0);
    const b = json<CreateJson>(r.stdout);
    expect(b.warnings.join(' ')).toMatch(/rotation 0/);
    expect(b.rotated).toEqual([b.snapshot.id]);
    expect(b.kept).toEqual([a.snapshot.id]);
    expect(f.cloud.images.has(a.snapshot.id)).toBe(true);
    expect(f.cloud.snapshots.size).toBe(2);
  });

  it('delete removes the volume snapshots, then the image; restore-help suggests server create', async () => {
    const a = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create'], env)).stdout);
    const h = await runCli(['instance-snapshot', 'restore-help', a.snapshot.id], env);
    expect(h.stdout).toContain(`openstack server create --image ${a.snapshot.id}`);
    expect(h.stdout).not.toContain('server rebuild');
    expect(h.stdout).toContain(`revert-to-snapshot ${a.snapshot.volume_snapshots[0]}`);
    const d = await runCli(['--json', 'instance-snapshot', 'delete', a.snapshot.id], env);
    expect(d.code).toBe(0);
    expect(json<{ volume_snapshots_deleted: string[] }>(d.stdout).volume_snapshots_deleted.sort()).toEqual([...a.snapshot.volume_snapshots].sort());
    expect(f.cloud.images.has(a.snapshot.id)).toBe(false);
    expect(f.cloud.snapshots.size).toBe(0);
  });

  it('over the Cinder snapshot quota: one line naming the quota, exit 1', async () => {
    f.cloud.snapshotQuota = 1;
    const r = await runCli(['instance-snapshot', 'create'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lifeboat: openstack cloud "fake": Nova: createImage .*403: Quota exceeded for snapshots/);
  });

  it('a volume snapshot in error fails the snapshot', async () => {
    f.cloud.snapshotCreateError = true;
    const r = await runCli(['instance-snapshot', 'create'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/went to error/);
  });
});

describe('credentials, permissions, reachability', () => {
  it('wrong password: one line naming the cloud, no secret printed', async () => {
    const { dir: d2, env: e2 } = cloudEnv(f.cloud, { password: 'wrong-password-xyz' });
    dirs.push(d2);
    const r = await runCli(['-v', 'instance-snapshot', 'list'], e2);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').find((l) => l.startsWith('lifeboat:'))).toMatch(/^lifeboat: openstack cloud "fake": authentication failed at http:\/\/127\.0\.0\.1:\d+: wrong or expired credentials/);
    expect(r.stderr + r.stdout).not.toContain('wrong-password-xyz');
  });

  it('a reader-only role: 403 with a hint, exit 1', async () => {
    const { dir: d2, env: e2 } = cloudEnv(f.cloud, { username: 'auditor', password: 'auditor-pass-Secr3t' });
    dirs.push(d2);
    const r = await runCli(['instance-snapshot', 'create'], e2);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/openstack cloud "fake": Nova: createBackup .*403: Policy doesn't allow .*member role/);
    noSecrets(r);
  });

  it('an unreachable Keystone: one line, exit 1', async () => {
    const { dir: d2, env: e2 } = cloudEnv(f.cloud, { authUrl: 'http://127.0.0.1:9/identity' });
    dirs.push(d2);
    const r = await runCli(['instance-snapshot', 'list'], e2);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^lifeboat: openstack cloud "fake": Keystone: cannot reach http:\/\/127\.0\.0\.1:9\/identity\/v3\/auth\/tokens: connection refused$/);
  });

  it('an unreachable internal endpoint is not silently replaced by the public one', async () => {
    const { dir: d2, env: e2 } = cloudEnv(f.cloud, { interface: 'internal' });
    dirs.push(d2);
    const r = await runCli(['instance-snapshot', 'list'], e2);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/openstack cloud "fake": Nova: cannot reach http:\/\/127\.0\.0\.1:9\/compute/);
  });

  it('application credential from OS_* variables (the envvars cloud)', async () => {
    const e2 = { ...env, OS_CLOUD: undefined, OS_CLIENT_CONFIG_FILE: path.join(dir, 'none.yaml'), OS_AUTH_TYPE: 'v3applicationcredential', OS_AUTH_URL: `${f.url}/identity`, OS_APPLICATION_CREDENTIAL_ID: f.appCred.id, OS_APPLICATION_CREDENTIAL_SECRET: f.appCred.secret, OS_REGION_NAME: 'RegionOne', OS_INTERFACE: 'public', OS_IDENTITY_API_VERSION: '3' };
    const r = await runCli(['--json', 'instance-snapshot', 'create', '--wait'], e2);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // -v shows requests and statuses, never the secret or the token
    const v = await runCli(['-v', '-v', 'instance-snapshot', 'list'], e2);
    expect(v.code).toBe(0);
    expect(v.stderr).toMatch(/POST http:\/\/127\.0\.0\.1:\d+\/identity\/v3\/auth\/tokens → 201/);
    noSecrets(v);
    const auth = f.cloud.requests((q) => q.path === '/identity/v3/auth/tokens');
    expect(auth.length).toBeGreaterThan(0);
  });

  it('a server id of another project (cloud.server_id in lifeboat config): 404 explained', async () => {
    const other = f.cloud.addServer({ name: 'x', projectId: f.cloud.addProject(), userId: 'u' });
    fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), `cloud:\n  name: fake\n  clouds_file: clouds.yaml\n  server_id: ${other.id}\n`);
    const r = await runCli(['--config', path.join(dir, 'lifeboat.yaml'), 'instance-snapshot', 'list'], { ...env, OS_CLOUD: undefined, OS_CLIENT_CONFIG_FILE: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/server .* is not in this project \(404\): the credentials belong to another project/);
  });

  it('no cloud configured at all', async () => {
    const r = await runCli(['instance-snapshot', 'list'], { ...env, OS_CLOUD: undefined, OS_CLIENT_CONFIG_FILE: path.join(dir, 'none.yaml'), HOME: path.join(dir, 'nohome') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no OpenStack cloud configured/);
  });

  it('no metadata service, config drive, DMI: says how to set the server id', async () => {
    f.cloud.metadataDown = true;
    const r = await runCli(['instance-snapshot', 'list'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot find this VM's server id .* set cloud.server_id/);
  });

  it('DMI product_uuid when the metadata service is down', async () => {
    f.cloud.metadataDown = true;
    const dmi = env.LIFEBOAT_OPENSTACK_DMI_DIR!;
    fs.writeFileSync(path.join(dmi, 'sys_vendor'), 'OpenStack Foundation\n');
    fs.writeFileSync(path.join(dmi, 'product_name'), 'OpenStack Nova\n');
    fs.writeFileSync(path.join(dmi, 'product_uuid'), f.web1.id.toUpperCase() + '\n');
    const r = await runCli(['instance-snapshot', 'list'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('named rotations from the config: rotation and wait for the type', async () => {
    fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), `instance_snapshots:\n  rotations:\n    daily: {rotation: 1, wait: true}\n`);
    const e2 = { ...env, LIFEBOAT_CONFIG: path.join(dir, 'lifeboat.yaml') };
    const a = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--type', 'daily'], e2)).stdout);
    expect(a.complete).toBe(true);
    const b = json<CreateJson>((await runCli(['--json', 'instance-snapshot', 'create', '--type', 'daily'], e2)).stdout);
    expect(b.complete).toBe(true);
    expect(f.cloud.images.has(a.snapshot.id)).toBe(false);
    const body = f.cloud.requests((q) => q.method === 'POST').at(-1)!.body as { createBackup: { rotation: number } };
    expect(body.createBackup.rotation).toBe(1);
  });
});
