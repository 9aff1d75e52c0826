/**
 * The dnf (4) hook for real: Debian's dnf installs a tiny rpm (built with rpmbuild) into a scratch
 * installroot, with lifeboat's plugin loaded from a scratch plugin directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { lifeboatEnv, preUpgradeImages, type LifeboatEnv } from '../fakes/openstack/lifeboat-env.js';

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureDnf(): boolean {
  if (have('dnf') && have('rpmbuild')) return true;
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'dnf', 'rpm'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
  } catch {
    return false;
  }
  return have('dnf') && have('rpmbuild');
}

const haveDnf = ensureDnf();

function run(cmd: string, args: string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const full: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) full[k] = v;
    const child = spawn(cmd, args, { env: full });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('dnf hook (real dnf, scratch installroot)', () => {
  it('has dnf and rpmbuild (Debian\'s dnf and rpm, installed when missing)', () => {
    expect(haveDnf).toBe(true);
  });

  let t: LifeboatEnv;
  let env: Record<string, string | undefined>;
  const rpms: Record<string, string> = {};
  let dnfConf: string;
  let installroot: string;

  function buildRpm(version: string): string {
    const top = path.join(t.dir, 'rpmbuild');
    fs.mkdirSync(path.join(top, 'SPECS'), { recursive: true });
    const spec = path.join(top, 'SPECS', `tiny-${version}.spec`);
    fs.writeFileSync(spec, `Name: lifeboat-tiny\nVersion: ${version}\nRelease: 1\nSummary: lifeboat test\nLicense: MIT\nBuildArch: noarch\n%description\nlifeboat dnf hook test\n%files\n`);
    execFileSync('rpmbuild', ['-bb', '--define', `_topdir ${top}`, spec], { stdio: 'ignore' });
    return path.join(top, 'RPMS', 'noarch', `lifeboat-tiny-${version}-1.noarch.rpm`);
  }

  const dnf = (rpm: string) => run('dnf', ['-y', '-c', dnfConf, `--installroot=${installroot}`, '--releasever=1', 'install', rpm], env);
  const installed = () => {
    try {
      // Debian's rpm keeps its database under $HOME (%_dbpath ~/.rpmdb): query with dnf's HOME
      return execFileSync('rpm', ['--root', installroot, '-q', 'lifeboat-tiny'], { encoding: 'utf8', env: { ...process.env, HOME: t.dir } }).trim();
    } catch {
      return null;
    }
  };

  beforeAll(async () => {
    t = await lifeboatEnv({ preUpgrade: '    mode: snapshot\n' });
    env = { ...t.env, LIFEBOAT_HOOKS_ROOT: path.join(t.dir, 'hooksroot') };
    rpms.v1 = buildRpm('1.0');
    rpms.v2 = buildRpm('2.0');
    installroot = path.join(t.dir, 'installroot');
    fs.mkdirSync(path.join(t.dir, 'norepos'));
    dnfConf = path.join(t.dir, 'dnf.conf');
    const plugins = path.join(t.dir, 'hooksroot', 'etc', 'dnf', 'plugins');
    fs.writeFileSync(dnfConf, `[main]\npluginpath=${plugins}\npluginconfpath=${plugins}\nreposdir=${path.join(t.dir, 'norepos')}\ngpgcheck=0\n`);
  });

  afterAll(async () => t?.cleanup());

  it('one snapshot per transaction, with the packages; fail closed stops the transaction', async () => {
    const inst = await runCli(['hooks', 'install', 'dnf'], env);
    expect(inst.code, inst.stderr).toBe(0);
    const r = await dnf(rpms.v1!);
    expect(r.code, r.out).toBe(0);
    expect(installed()).toBe('lifeboat-tiny-1.0-1.noarch');
    const imgs = preUpgradeImages(t.f);
    expect(imgs).toHaveLength(1);
    expect(imgs[0]!['lifeboat:trigger']).toBe('dnf');
    expect(imgs[0]!['lifeboat:packages']).toBe('install lifeboat-tiny-1.0-1.noarch');

    expect((await runCli(['hooks', 'install', 'dnf', '--fail', 'closed'], env)).code).toBe(0);
    t.f.cloud.uploadOutcome = 'killed';
    const closed = await dnf(rpms.v2!);
    expect(closed.code).not.toBe(0);
    expect(closed.out).toMatch(/lifeboat: the pre-upgrade rollback point failed; transaction stopped \(fail closed\)/);
    expect(installed()).toBe('lifeboat-tiny-1.0-1.noarch');

    expect((await runCli(['hooks', 'install', 'dnf', '--fail', 'open'], env)).code).toBe(0);
    const open = await dnf(rpms.v2!);
    expect(open.code, open.out).toBe(0);
    expect(open.out).toMatch(/WARNING: the pre-upgrade rollback point FAILED/);
    expect(installed()).toBe('lifeboat-tiny-2.0-1.noarch');
    expect((await runCli(['hooks', 'uninstall', 'dnf'], env)).stdout).toMatch(/removed/);
  }, 300_000);
});
