/**
 * The software manifest saved with a pre-upgrade file backup: installed and manually installed
 * packages, package sources, enabled systemd units, and the transaction about to run. Read from
 * the package databases' files — never by running apt or dpkg (the hook runs while they hold the lock).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** dpkg's status file: installed packages as "name version arch". */
export function dpkgInstalled(statusText: string): string[] {
  const out: string[] = [];
  for (const para of statusText.split(/\n\n+/)) {
    const f: Record<string, string> = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z-]+):\s?(.*)$/.exec(line);
      if (m) f[m[1]!] = m[2]!;
    }
    if (f.Package && /\binstalled$/.test(f.Status ?? '')) out.push(`${f.Package}\t${f.Version ?? ''}\t${f.Architecture ?? ''}`);
  }
  return out.sort();
}

/** Manually installed = installed minus apt's Auto-Installed: 1 entries of extended_states. */
export function aptManual(installed: string[], extendedStates: string | null): string[] {
  const auto = new Set<string>();
  for (const para of (extendedStates ?? '').split(/\n\n+/)) {
    const pkg = /^Package:\s*(\S+)/m.exec(para)?.[1];
    const arch = /^Architecture:\s*(\S+)/m.exec(para)?.[1];
    if (pkg && /^Auto-Installed:\s*1/m.test(para)) {
      auto.add(pkg);
      if (arch) auto.add(`${pkg}:${arch}`);
    }
  }
  return installed.map((l) => l.split('\t')[0]!).filter((p) => !auto.has(p));
}

function aptSources(): string[] {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of fs.readdirSync('/etc/apt/sources.list.d')) files.push(path.join('/etc/apt/sources.list.d', f));
  } catch {
    // none
  }
  const out: string[] = [];
  for (const f of files) {
    const t = read(f);
    if (t === null) continue;
    const lines = t.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    if (lines.length) out.push(`# ${f}`, ...lines);
  }
  return out;
}

function yumRepos(): string[] {
  const out: string[] = [];
  for (const dir of ['/etc/yum.repos.d', '/etc/distro.repos.d']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.repo'));
    } catch {
      continue;
    }
    for (const n of names) {
      const t = read(path.join(dir, n)) ?? '';
      let section = '';
      for (const line of t.split('\n')) {
        const s = /^\s*\[(.+)\]\s*$/.exec(line);
        if (s) section = s[1]!;
        const e = /^\s*enabled\s*=\s*(\S+)/.exec(line);
        if (e && section) out.push(`${path.join(dir, n)} [${section}] enabled=${e[1]}`);
      }
    }
  }
  return out;
}

function enabledUnits(): string[] | null {
  try {
    const t = execFileSync('systemctl', ['list-unit-files', '--state=enabled', '--no-legend', '--no-pager'], { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return t.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
  } catch {
    return null;
  }
}

/** The paths an upgrade changes, for this system: /etc plus the package database (that exist). */
export function defaultUpgradePaths(): string[] {
  return ['/etc', '/var/lib/dpkg/status', '/var/lib/apt/extended_states', '/var/lib/rpm'].filter((p) => fs.existsSync(p));
}

/** Writes the manifest files into dir (replacing earlier ones); returns the files written. */
export function writeSoftwareManifest(dir: string, transaction: string[] = []): string[] {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Record<string, string[] | null> = {};
  const status = read('/var/lib/dpkg/status');
  if (status !== null) {
    const installed = dpkgInstalled(status);
    files['packages.txt'] = installed;
    files['packages-manual.txt'] = aptManual(installed, read('/var/lib/apt/extended_states'));
    files['apt-sources.txt'] = aptSources();
  }
  const repos = yumRepos();
  if (repos.length) files['yum-repos.txt'] = repos;
  files['systemd-enabled-units.txt'] = enabledUnits();
  files['transaction.txt'] = transaction;
  const written: string[] = [];
  for (const [name, lines] of Object.entries(files)) {
    if (lines === null) continue;
    const f = path.join(dir, name);
    fs.writeFileSync(f, lines.join('\n') + (lines.length ? '\n' : ''), { mode: 0o600 });
    written.push(f);
  }
  return written;
}
