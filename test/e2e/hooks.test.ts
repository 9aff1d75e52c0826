/**
 * The apt hook for real: a tiny .deb built with dpkg-deb, `apt-get install ./tiny.deb` with the hook
 * installed in /etc/apt/apt.conf.d (pointing at the built CLI and a test config), against the fake
 * cloud. /etc/apt and the dpkg database are restored afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { lifeboatEnv, preUpgradeImages, type LifeboatEnv } from '../fakes/openstack/lifeboat-env.js';

const APT_CONF = '/etc/apt/apt.conf.d/80lifeboat';
const PKG = 'lifeboat-tiny-test';
const PKG2 = 'lifeboat-tiny-two';
// never skipped: CI runs as root on Debian; a hook file left by a killed earlier run is set
// aside for the test and put back afterwards
const aptReady = process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get') && fs.existsSync('/usr/bin/dpkg-deb');
const leftover = fs.existsSync(APT_CONF) ? fs.readFileSync(APT_CONF) : null;
if (leftover) fs.rmSync(APT_CONF);
afterAll(() => {
  if (leftover && !fs.existsSync(APT_CONF)) fs.writeFileSync(APT_CONF, leftover);
});

function buildDeb(dir: string, name: string, version: string): string {
  const root = path.join(dir, `${name}-${version}`);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr', 'share', name), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr', 'share', name, 'hello'), `${name} ${version}\n`);
  fs.writeFileSync(
    path.join(root, 'DEBIAN', 'control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: lifeboat tests <tests@example.invalid>\nDescription: lifeboat apt hook test package\n`,
  );
  const deb = path.join(dir, `${name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', root, deb], { stdio: 'ignore' });
  return deb;
}

function apt(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const full: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env, DEBIAN_FRONTEND: 'noninteractive' })) if (v !== undefined) full[k] = v;
    const child = spawn('apt-get', ['-y', '-o', 'DPkg::Lock::Timeout=300', '--no-install-recommends', ...args], { env: full, cwd: '/tmp' });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ status: code ?? -1, stderr }));
  });
}

function installedVersion(pkg: string): string | null {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Status}|${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [status, version] = out.split('|');
    return /install ok installed/.test(status!) ? version! : null;
  } catch {
    return null;
  }
}

describe('apt hook (real apt-get)', () => {
  it('runs as root with apt-get and dpkg-deb (Debian; CI runs as root)', () => {
    expect(aptReady).toBe(true);
  });

  let t: LifeboatEnv;
  const debs: Record<string, string> = {};

  beforeAll(async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: both\n' });
    debs.v10 = buildDeb(t.dir, PKG, '1.0');
    debs.v11 = buildDeb(t.dir, PKG, '1.1');
    debs.v12 = buildDeb(t.dir, PKG, '1.2');
    debs.two = buildDeb(t.dir, PKG2, '1.0');
  });

  afterAll(async () => {
    // restore /etc/apt and the dpkg database whatever happened
    try {
      const text = fs.readFileSync(APT_CONF, 'utf8');
      if (text.includes('lifeboat-hook')) fs.rmSync(APT_CONF, { force: true });
    } catch {
      // not there
    }
    try {
      execFileSync('dpkg', ['--purge', PKG, PKG2], { stdio: 'ignore' });
    } catch {
      // not installed
    }
    await t?.cleanup();
  }, 300_000);

  it('hooks install apt writes 80lifeboat pointing at this CLI and the config', async () => {
    const r = await runCli(['hooks', 'install', 'apt'], t.env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const conf = fs.readFileSync(APT_CONF, 'utf8');
    expect(conf).toContain(`DPkg::Pre-Install-Pkgs { "${process.execPath} ${fs.realpathSync(CLI)} --config ${t.config} hooks run apt --fail open || true"; };`);
    expect(conf).toContain(`DPkg::Tools::Options::${process.execPath}::Version "3";`);
    const st = await runCli(['--json', 'hooks', 'status'], t.env);
    const j = JSON.parse(st.stdout) as { hooks: { kind: string; installed: boolean; settings: Record<string, string> }[] };
    expect(j.hooks.find((h) => h.kind === 'apt')).toMatchObject({ installed: true, settings: { mode: 'config', fail: 'open', wait: 'config' } });
  }, 300_000);

  it('apt-get install ./tiny.deb takes exactly one rollback point, with the package list', async () => {
    const r = await apt(['install', debs.v10!], t.env);
    expect(r.code, r.out).toBe(0);
    expect(installedVersion(PKG)).toBe('1.0');
    expect(r.out).toMatch(/lifeboat: taking a pre-upgrade rollback point \(apt: 1 package\)/);
    const imgs = preUpgradeImages(t.f);
    expect(imgs).toHaveLength(1);
    expect(imgs[0]!['lifeboat:packages']).toBe(`${PKG} (new) 1.0`);
    expect(imgs[0]!['lifeboat:trigger']).toBe('apt');
    expect(imgs[0]!.status).toBe('active');
    const snaps = JSON.parse((await runCli(['--json', 'snapshots', '--tag', 'pre-upgrade'], t.env)).stdout) as unknown[];
    expect(snaps).toHaveLength(1);
    const tx = await runCli(['dump', 'latest', path.join(t.dir, 'state', 'software-manifest', 'transaction.txt')], t.env);
    expect(tx.stdout).toBe(`${PKG} (new) 1.0\n`);
  }, 300_000);

  it('an upgrade of several packages in one apt run: still one snapshot', async () => {
    const r = await apt(['install', debs.v11!, debs.two!], t.env);
    expect(r.code, r.out).toBe(0);
    expect(installedVersion(PKG)).toBe('1.1');
    const imgs = preUpgradeImages(t.f);
    expect(imgs).toHaveLength(2);
    const newest = imgs.sort((a, b) => Number(b['lifeboat:time_ms']) - Number(a['lifeboat:time_ms']))[0]!;
    expect(String(newest['lifeboat:packages']).split(', ').sort()).toEqual([`${PKG} 1.0 -> 1.1`, `${PKG2} (new) 1.0`]);
    expect(newest['lifeboat:package_count']).toBe('2');
  }, 300_000);

  it('several hook calls under one frontend process (unattended-upgrades minimal steps): one snapshot', async () => {
    // a shell whose process name is apt-get stands in for the frontend
    const fakeFrontend = path.join(t.dir, 'apt-get');
    fs.copyFileSync('/bin/sh', fakeFrontend);
    fs.chmodSync(fakeFrontend, 0o755);
    const hook = `${process.execPath} ${CLI} --config ${t.config} hooks run apt --fail open`;
    const before = preUpgradeImages(t.f).length;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...t.env })) if (v !== undefined) env[k] = v;
    // asynchronously: the fake cloud answers from this process
    const r = await run(fakeFrontend, ['-c', `printf 'VERSION 3\\n\\nx 1 all same > 2 all same /tmp/x_2_all.deb\\n' | ${hook}; printf 'VERSION 3\\n\\ny - - none < 1 all none /tmp/y_1_all.deb\\n' | ${hook}`], env);
    expect(r.status, r.stderr).toBe(0);
    expect(preUpgradeImages(t.f).length, r.stderr).toBe(before + 1);
    expect(r.stderr).toMatch(/rollback point already taken in this apt run/);
  }, 300_000);

  it('fail closed: a failed snapshot stops the install; fail open: it proceeds with a loud warning', async () => {
    expect((await runCli(['hooks', 'install', 'apt', '--fail', 'closed'], t.env)).code).toBe(0);
    expect(fs.readFileSync(APT_CONF, 'utf8')).not.toContain('|| true');
    t.f.cloud.uploadOutcome = 'killed';
    const closed = await apt(['install', debs.v12!], t.env);
    expect(closed.code).not.toBe(0);
    expect(closed.out).toMatch(/lifeboat: the pre-upgrade rollback point failed, stopping the upgrade \(fail closed\): instance snapshot failed: openstack cloud "fake": image .* went to killed/);
    expect(closed.out).toMatch(/E: (Sub-process returned an error code|Failure running script)/);
    expect(installedVersion(PKG)).toBe('1.1');

    expect((await runCli(['hooks', 'install', 'apt', '--fail', 'open'], t.env)).code).toBe(0);
    const open = await apt(['install', debs.v12!], t.env);
    expect(open.code, open.out).toBe(0);
    expect(open.out).toMatch(/lifeboat: WARNING: the pre-upgrade rollback point FAILED/);
    expect(installedVersion(PKG)).toBe('1.2');
    const st = await runCli(['hooks', 'status'], t.env);
    expect(st.stdout).toMatch(/last hook run: .* \(apt\) FAILED/);
  }, 300_000);

  it('hooks uninstall removes the file', async () => {
    const r = await runCli(['hooks', 'uninstall', 'apt'], t.env);
    expect(r.code).toBe(0);
    expect(fs.existsSync(APT_CONF)).toBe(false);
  }, 300_000);
});
