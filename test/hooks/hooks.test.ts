import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeChanges, parseAptHookInfo } from '../../src/hooks/apt-info.js';
import { aptConf, dnf5Actions, dnfPlugin, hookStatus, installHook, uninstallHook, type HookSettings } from '../../src/hooks/install.js';
import { findFrontend, RunStamps } from '../../src/hooks/dedupe.js';
import { aptManual, dpkgInstalled } from '../../src/jobs/software-manifest.js';

const S: HookSettings = { mode: 'both', fail: 'closed', wait: true, command: '/usr/bin/lifeboat', configFile: '/etc/lifeboat/lifeboat.yaml' };

describe('apt hook input (protocol version 3)', () => {
  it('parses config and package lines: new, upgrade, remove, configure', () => {
    const text = [
      'VERSION 3',
      'APT::Architecture=amd64',
      'DPkg::Tools::Options::/usr/bin/lifeboat::Version=3',
      '',
      'tiny - - none < 1.0 all none /var/cache/apt/archives/tiny_1.0_all.deb',
      'nginx 1.22.1-9 amd64 same < 1.22.1-9+deb12u1 amd64 same /var/cache/apt/archives/nginx_1.22.1-9+deb12u1_amd64.deb',
      'oldpkg 2.0 amd64 none > - - none **REMOVE**',
      'nginx 1.22.1-9 amd64 same < 1.22.1-9+deb12u1 amd64 same **CONFIGURE**',
      '',
    ].join('\n');
    const info = parseAptHookInfo(text);
    expect(info.version).toBe(3);
    expect(info.config['APT::Architecture']).toBe('amd64');
    expect(info.packages).toHaveLength(4);
    expect(describeChanges(info.packages)).toEqual(['tiny (new) 1.0', 'nginx 1.22.1-9 -> 1.22.1-9+deb12u1', 'oldpkg removed']);
  });

  it('version 1: .deb paths only', () => {
    const info = parseAptHookInfo('/var/cache/apt/archives/tiny_1%3a1.0_all.deb\n');
    expect(info.version).toBe(1);
    expect(describeChanges(info.packages)).toEqual(['tiny (new) 1:1.0']);
  });
});

describe('hook files', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-hooks-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('apt: Pre-Install-Pkgs with version 3 for the command\'s first word; fail open appends || true', () => {
    const closed = aptConf(S);
    expect(closed).toContain('DPkg::Pre-Install-Pkgs { "/usr/bin/lifeboat --config /etc/lifeboat/lifeboat.yaml hooks run apt --mode both --fail closed --wait"; };');
    expect(closed).toContain('DPkg::Tools::Options::/usr/bin/lifeboat::Version "3";');
    expect(aptConf({ ...S, fail: 'open', wait: false })).toContain('--fail open --no-wait || true"; };');
    expect(() => aptConf({ ...S, command: '/opt/"x"' })).toThrow();
  });

  it('apt.conf syntax is accepted by apt-config', () => {
    const f = path.join(root, 'apt.conf');
    fs.writeFileSync(f, aptConf(S));
    const out = execFileSync('apt-config', ['-c', f, 'dump', 'DPkg::Pre-Install-Pkgs'], { encoding: 'utf8' });
    expect(out).toContain('/usr/bin/lifeboat --config /etc/lifeboat/lifeboat.yaml hooks run apt');
  });

  it('dnf: a plugin that vetoes with dnf.exceptions.Error only when failing closed; valid Python', () => {
    const py = dnfPlugin(S);
    expect(py).toContain('FAIL_CLOSED = True');
    expect(py).toContain('COMMAND = ["/usr/bin/lifeboat", "--config", "/etc/lifeboat/lifeboat.yaml", "hooks", "run", "dnf", "--mode", "both", "--fail", "closed", "--wait"]');
    expect(py).toContain('raise dnf.exceptions.Error(');
    const f = path.join(root, 'lifeboat.py');
    fs.writeFileSync(f, py);
    execFileSync('python3', ['-c', `import ast,sys; ast.parse(open(sys.argv[1]).read())`, f]);
    expect(dnfPlugin({ ...S, fail: 'open' })).toContain('FAIL_CLOSED = False');
  });

  it('dnf5: an actions line, raise_error=1 only when failing closed', () => {
    expect(dnf5Actions(S)).toContain('pre_transaction:::enabled=host-only raise_error=1:/usr/bin/lifeboat --config /etc/lifeboat/lifeboat.yaml hooks run dnf5 --mode both --fail closed --wait');
    expect(dnf5Actions({ ...S, fail: 'open' })).toMatch(/^pre_transaction:::enabled=host-only:\/usr\/bin\/lifeboat /m);
  });

  it('install, status, uninstall under a root; never replaces a foreign file', () => {
    const files = installHook('dnf', S, root);
    expect(files.map((f) => path.relative(root, f))).toEqual(['etc/dnf/plugins/lifeboat.py', 'etc/dnf/plugins/lifeboat.conf']);
    expect(fs.readFileSync(files[1]!, 'utf8')).toContain('enabled=1');
    expect(hookStatus('dnf', root)).toMatchObject({ installed: true, settings: { mode: 'both', fail: 'closed', wait: 'true', config: '/etc/lifeboat/lifeboat.yaml' } });
    expect(uninstallHook('dnf', root)).toHaveLength(2);
    expect(hookStatus('dnf', root).installed).toBe(false);
    const apt = path.join(root, 'etc/apt/apt.conf.d/80lifeboat');
    fs.mkdirSync(path.dirname(apt), { recursive: true });
    fs.writeFileSync(apt, '// somebody else\n');
    expect(() => installHook('apt', S, root)).toThrow(/not written by lifeboat/);
    expect(uninstallHook('apt', root)).toEqual([]);
    expect(fs.existsSync(apt)).toBe(true);
  });
});

describe('once per run', () => {
  it('finds the frontend among the ancestors by /proc stat (comm with spaces and parentheses)', () => {
    const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-proc-'));
    const mk = (pid: number, comm: string, ppid: number, argv: string[]) => {
      fs.mkdirSync(path.join(proc, String(pid)));
      const fields = ['S', String(ppid), ...Array.from({ length: 17 }, () => '0'), `${pid}777`, '0'];
      fs.writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (${comm}) ${fields.join(' ')}`);
      fs.writeFileSync(path.join(proc, String(pid), 'cmdline'), argv.join('\0') + '\0');
    };
    mk(300, 'sh', 200, ['/bin/sh', '-c', 'x']);
    mk(200, 'my (odd) name', 100, ['/usr/bin/python3', '/usr/bin/unattended-upgrade']);
    mk(100, 'systemd', 1, ['/sbin/init']);
    const fe = findFrontend(300, proc);
    expect(fe).toMatchObject({ pid: 200, starttime: '200777' });
    expect(findFrontend(100, proc)).toBeNull();
    fs.rmSync(proc, { recursive: true, force: true });
  });

  it('stamps per run key; the window fallback expires', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-stamps-'));
    const s = new RunStamps(dir);
    expect(s.find('apt-get-5-9', 'apt')).toBeNull();
    s.write('apt-get-5-9', 'apt', true, 'ok');
    expect(s.find('apt-get-5-9', 'apt')).toMatchObject({ ok: true });
    expect(s.find('apt-get-5-9', 'dnf')).toBeNull();
    s.write('window', 'apt', false, 'x');
    expect(s.find('window', 'apt')).not.toBeNull();
    expect(s.find('window', 'apt', Date.now() + 46 * 60_000)).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('software manifest', () => {
  it('reads installed and manually installed packages from dpkg/apt files', () => {
    const status = 'Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nStatus: install ok installed\nVersion: 3\nArchitecture: all\n';
    const installed = dpkgInstalled(status);
    expect(installed).toEqual(['a\t1\tamd64', 'c\t3\tall']);
    expect(aptManual(installed, 'Package: c\nArchitecture: all\nAuto-Installed: 1\n')).toEqual(['a']);
  });
});
