/**
 * apt's Pre-Install-Pkgs hook input, protocol version 3 (apt.conf(5), apt-pkg/deb/dpkgpm.cc):
 * "VERSION 3", the whole apt configuration as key=value lines, a blank line, then one line per
 * package: `name oldver oldarch oldMA <|>|= newver newarch newMA action` (version "-" when none;
 * action: a .deb path, **CONFIGURE** or **REMOVE**). Version 1 sends only .deb paths.
 */
export interface AptPackageChange {
  name: string;
  oldVersion: string | null;
  newVersion: string | null;
  arch: string;
  action: 'install' | 'configure' | 'remove';
}

export interface AptHookInfo {
  version: number;
  config: Record<string, string>;
  packages: AptPackageChange[];
}

export function parseAptHookInfo(text: string): AptHookInfo {
  const lines = text.split('\n');
  const first = lines[0]?.trim() ?? '';
  const m = /^VERSION (\d+)$/.exec(first);
  if (!m) {
    // version 1: .deb paths
    const packages = lines
      .map((l) => l.trim())
      .filter(Boolean)
      .map((p) => {
        const base = p.split('/').pop()!.replace(/\.deb$/, '');
        const [name, ver, arch] = base.split('_');
        return { name: name ?? base, oldVersion: null, newVersion: ver ? decodeURIComponent(ver).replace(/%3a/gi, ':') : null, arch: arch ?? '', action: 'install' as const };
      });
    return { version: 1, config: {}, packages };
  }
  const version = Number(m[1]);
  const config: Record<string, string> = {};
  let i = 1;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '') break;
    const eq = l.indexOf('=');
    if (eq > 0) config[l.slice(0, eq)] = l.slice(eq + 1);
  }
  const packages: AptPackageChange[] = [];
  for (i++; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 2 || !f[0]) continue;
    const v3 = version >= 3;
    // v2: name oldver op newver action; v3 adds arch and multi-arch after each version
    const [name, oldv, newv, arch, action] = v3 ? [f[0], f[1], f[5], f[6] !== '-' ? f[6] : f[2], f[8]] : [f[0], f[1], f[3], '', f[4]];
    packages.push({
      name: name!,
      oldVersion: oldv && oldv !== '-' ? oldv : null,
      newVersion: newv && newv !== '-' ? newv : null,
      arch: arch ?? '',
      action: action === '**REMOVE**' ? 'remove' : action === '**CONFIGURE**' ? 'configure' : 'install',
    });
  }
  return { version, config, packages };
}

/** "nginx 1.22.1-9 -> 1.22.1-9+deb12u1", "tiny (new) 1.0", "old-pkg removed" — configure-only lines left out. */
export function describeChanges(pkgs: AptPackageChange[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of pkgs) {
    if (p.action === 'configure' || seen.has(p.name)) continue;
    seen.add(p.name);
    if (p.action === 'remove') out.push(`${p.name} removed`);
    else if (p.oldVersion) out.push(`${p.name} ${p.oldVersion} -> ${p.newVersion ?? '?'}`);
    else out.push(`${p.name} (new) ${p.newVersion ?? ''}`.trim());
  }
  return out;
}
