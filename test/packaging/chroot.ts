/**
 * A throwaway Debian root for installing the .deb for real: debootstrap --variant=minbase (plus
 * systemd and procps, as on a VM; systemd is installed, not running) from deb.debian.org once, kept as a tarball (keyed by suite, variant and architecture), extracted
 * fresh for each run; /proc mounted inside; commands run with chroot(8).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const SUITE = 'bookworm';
export const VARIANT = 'minbase';
export const MIRROR = 'http://deb.debian.org/debian';
/** As on a VM: systemd (for systemd-analyze verify on its own units) and procps (/bin/kill, in the unit). */
export const INCLUDE = ['systemd', 'procps'];
const CACHE_DIR = process.env.LIFEBOAT_TEST_ROOTFS_CACHE ?? '/var/cache/lifeboat-test';

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) return { code: 127, stdout: '', stderr: r.error.message };
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

export function shOk(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`.trim());
  return r.stdout;
}

function has(cmd: string): boolean {
  return sh('sh', ['-c', `command -v ${cmd}`]).code === 0;
}

/** The command, installed from Debian's packages when missing; throws when that fails (tests never skip). */
export function ensureTool(cmd: string, pkg: string): void {
  if (has(cmd)) return;
  const r = sh('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.code !== 0 || !has(cmd)) throw new Error(`${cmd} is missing and apt-get install ${pkg} failed:\n${r.stderr.slice(-2000)}`);
}

/** The cached debootstrap tarball, made when missing (a few minutes, from deb.debian.org). */
export function baseTarball(): string {
  const tar = path.join(CACHE_DIR, `debootstrap-${SUITE}-${VARIANT}+${INCLUDE.join(',')}-amd64.tar`);
  if (fs.existsSync(tar)) return tar;
  ensureTool('debootstrap', 'debootstrap');
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const dir = fs.mkdtempSync('/var/tmp/lifeboat-debootstrap-');
  try {
    shOk('debootstrap', [`--variant=${VARIANT}`, `--include=${INCLUDE.join(',')}`, '--arch=amd64', SUITE, dir, MIRROR]);
    shOk('tar', ['--numeric-owner', '--xattrs', '-C', dir, '-cf', `${tar}.tmp`, '.']);
    fs.renameSync(`${tar}.tmp`, tar);
  } finally {
    unmountUnder(dir);
    sh('rm', ['-rf', '--one-file-system', dir]);
  }
  return tar;
}

function mountsUnder(root: string): string[] {
  const prefix = fs.realpathSync(root);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === prefix || m.startsWith(prefix + '/')))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything below root, deepest first. */
export function unmountUnder(root: string): void {
  if (!fs.existsSync(root)) return;
  for (const m of mountsUnder(root)) sh('umount', ['-l', m]);
}

export class Chroot {
  private constructor(readonly root: string) {}

  /** A fresh root from the cached tarball, with /proc mounted. */
  static create(): Chroot {
    const tar = baseTarball();
    const root = fs.mkdtempSync('/var/tmp/lifeboat-deb-test-');
    const c = new Chroot(root);
    try {
      shOk('tar', ['--numeric-owner', '--xattrs', '-C', root, '-xf', tar]);
      shOk('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]);
    } catch (e) {
      c.destroy();
      throw e;
    }
    return c;
  }

  /** A path inside the root, as seen from the host. */
  p(inside: string): string {
    return path.join(this.root, inside);
  }

  run(command: string, env: Record<string, string> = {}): Result {
    return sh('chroot', [this.root, '/bin/sh', '-c', command], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...env },
    });
  }

  ok(command: string, env: Record<string, string> = {}): string {
    const r = this.run(command, env);
    if (r.code !== 0) throw new Error(`in the chroot: ${command} exited ${r.code}:\n${r.stdout}\n${r.stderr}`.trim());
    return r.stdout;
  }

  /** Unmounts and deletes the root; never crosses into a mount that is still there. */
  destroy(): void {
    unmountUnder(this.root);
    if (mountsUnder(this.root).length === 0) sh('rm', ['-rf', '--one-file-system', this.root]);
  }
}
