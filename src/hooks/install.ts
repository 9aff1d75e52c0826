/**
 * Installing the package-manager hooks:
 * - apt: /etc/apt/apt.conf.d/80lifeboat, `DPkg::Pre-Install-Pkgs` with the version-3 info on stdin
 *   (so the package list is recorded with the snapshot);
 * - dnf (4): a small dnf plugin whose pre_transaction() raises dnf.exceptions.Error to veto (the
 *   pre-transaction-actions plugin ignores exit codes);
 * - dnf5: an `actions` plugin file, `pre_transaction` with raise_error=1 when failing closed.
 * Files carry a marker line so uninstall/status only touch lifeboat's own.
 */
import fs from 'node:fs';
import path from 'node:path';

export type HookKind = 'apt' | 'dnf' | 'dnf5';
export const HOOK_KINDS: HookKind[] = ['apt', 'dnf', 'dnf5'];

export interface HookSettings {
  /** unset: the config's pre_upgrade.mode at run time (default both, skipping what cannot run here) */
  mode?: 'snapshot' | 'files' | 'both';
  fail: 'open' | 'closed';
  /** unset: the config's pre_upgrade.wait at run time (default: wait) */
  wait?: boolean;
  /** the lifeboat command, e.g. /usr/bin/lifeboat or "/usr/bin/node /opt/lifeboat/dist/cli/main.js" */
  command: string;
  /** lifeboat's config file, passed as --config */
  configFile?: string;
}

const MARKER = 'lifeboat-hook';

/** The root for hook files (tests point it elsewhere with LIFEBOAT_HOOKS_ROOT). */
export function hooksRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIFEBOAT_HOOKS_ROOT || '/';
}

export function hookFiles(kind: HookKind, root = hooksRoot()): string[] {
  const r = (p: string) => path.join(root, p);
  switch (kind) {
    case 'apt':
      return [r('etc/apt/apt.conf.d/80lifeboat')];
    case 'dnf':
      return [r('etc/dnf/plugins/lifeboat.py'), r('etc/dnf/plugins/lifeboat.conf')];
    case 'dnf5':
      return [r('etc/dnf/libdnf5-plugins/actions.d/lifeboat.actions')];
  }
}

function runArgs(kind: HookKind, s: HookSettings): string[] {
  return [
    ...(s.configFile ? ['--config', s.configFile] : []),
    'hooks',
    'run',
    kind,
    ...(s.mode ? ['--mode', s.mode] : []),
    '--fail',
    s.fail,
    ...(s.wait === undefined ? [] : [s.wait ? '--wait' : '--no-wait']),
  ];
}

function markerLine(kind: HookKind, s: HookSettings, comment: string): string {
  return `${comment} ${MARKER} kind=${kind} mode=${s.mode ?? 'config'} fail=${s.fail} wait=${s.wait ?? 'config'}${s.configFile ? ` config=${s.configFile}` : ''}`;
}

export function aptConf(s: HookSettings): string {
  if (/["\\]/.test(s.command + (s.configFile ?? ''))) throw new Error('the hook command and config path must not contain " or \\');
  const cmd = [s.command, ...runArgs('apt', s)].join(' ') + (s.fail === 'open' ? ' || true' : '');
  const first = s.command.trim().split(/\s+/)[0]!;
  return [
    markerLine('apt', s, '//'),
    '// Installed by "lifeboat hooks install apt"; remove with "lifeboat hooks uninstall apt".',
    '// Runs once per apt run, before dpkg, with the package list on stdin (protocol version 3);',
    `// ${s.fail === 'open' ? 'fail open: a failed rollback point is logged and the upgrade proceeds' : 'fail closed: a failed rollback point stops the upgrade'}.`,
    `DPkg::Pre-Install-Pkgs { "${cmd}"; };`,
    `DPkg::Tools::Options::${first}::Version "3";`,
    '',
  ].join('\n');
}

function pyList(items: string[]): string {
  return '[' + items.map((i) => JSON.stringify(i)).join(', ') + ']';
}

export function dnfPlugin(s: HookSettings): string {
  const argv = [...s.command.trim().split(/\s+/), ...runArgs('dnf', s)];
  return `${markerLine('dnf', s, '#')}
# Installed by "lifeboat hooks install dnf"; remove with "lifeboat hooks uninstall dnf".
# A dnf plugin (not pre-transaction-actions, whose exit codes are ignored) so that failing closed
# can stop the transaction: only dnf.exceptions.Error vetoes it.
import subprocess

import dnf
import dnf.exceptions

COMMAND = ${pyList(argv)}
FAIL_CLOSED = ${s.fail === 'closed' ? 'True' : 'False'}


class Lifeboat(dnf.Plugin):
    name = 'lifeboat'

    def pre_transaction(self):
        lines = []
        try:
            lines += ['install %s' % p for p in self.base.transaction.install_set]
            lines += ['remove %s' % p for p in self.base.transaction.remove_set]
        except Exception:
            pass
        try:
            rc = subprocess.run(COMMAND, input='\\n'.join(lines) + '\\n', universal_newlines=True).returncode
        except OSError as e:
            rc = 127
            print('lifeboat: cannot run %s: %s' % (COMMAND[0], e))
        if rc != 0 and FAIL_CLOSED:
            raise dnf.exceptions.Error('lifeboat: the pre-upgrade rollback point failed; transaction stopped (fail closed)')
`;
}

export function dnfPluginConf(s: HookSettings): string {
  return `${markerLine('dnf', s, '#')}\n[main]\nenabled=1\n`;
}

export function dnf5Actions(s: HookSettings): string {
  const cmd = [s.command, ...runArgs('dnf5', s)].join(' ');
  return [
    markerLine('dnf5', s, '#'),
    '# Installed by "lifeboat hooks install dnf5"; needs the libdnf5 actions plugin (libdnf5-plugin-actions).',
    '# callback:package_filter:direction:options:command — empty filter: once per transaction.',
    `pre_transaction:::enabled=host-only${s.fail === 'closed' ? ' raise_error=1' : ''}:${cmd}`,
    '',
  ].join('\n');
}

export function installHook(kind: HookKind, s: HookSettings, root = hooksRoot()): string[] {
  const files = hookFiles(kind, root);
  const contents = kind === 'apt' ? [aptConf(s)] : kind === 'dnf' ? [dnfPlugin(s), dnfPluginConf(s)] : [dnf5Actions(s)];
  files.forEach((f, i) => {
    const existing = readMaybe(f);
    if (existing !== null && !existing.includes(MARKER)) throw new Error(`${f} exists and was not written by lifeboat: not replacing it`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    const tmp = `${f}.lifeboat-tmp`;
    fs.writeFileSync(tmp, contents[i]!, { mode: 0o644 });
    fs.renameSync(tmp, f);
  });
  return files;
}

/** Removes lifeboat's hook files of that kind; returns those removed. */
export function uninstallHook(kind: HookKind, root = hooksRoot()): string[] {
  const removed: string[] = [];
  for (const f of hookFiles(kind, root)) {
    const t = readMaybe(f);
    if (t !== null && t.includes(MARKER)) {
      fs.rmSync(f, { force: true });
      removed.push(f);
    }
  }
  return removed;
}

export interface HookStatus {
  kind: HookKind;
  installed: boolean;
  files: string[];
  settings: Record<string, string>;
  /** is the package manager (or its plugin host) present here? */
  managerPresent: boolean;
}

export function hookStatus(kind: HookKind, root = hooksRoot()): HookStatus {
  const files = hookFiles(kind, root);
  const first = readMaybe(files[0]!);
  const settings: Record<string, string> = {};
  const m = first ? new RegExp(`${MARKER} (.*)`).exec(first) : null;
  if (m) for (const kv of m[1]!.split(' ')) {
    const i = kv.indexOf('=');
    if (i > 0) settings[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const present = (p: string) => fs.existsSync(path.join(root, p));
  const managerPresent = kind === 'apt' ? present('usr/bin/apt-get') : kind === 'dnf' ? present('usr/bin/dnf-3') || present('usr/lib/python3/dist-packages/dnf') : present('usr/bin/dnf5');
  return { kind, installed: !!m, files, settings, managerPresent };
}

function readMaybe(f: string): string | null {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return null;
  }
}
