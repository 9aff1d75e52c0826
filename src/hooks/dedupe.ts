/**
 * Once per package-manager run: apt runs Pre-Install-Pkgs once per dpkg batch, and
 * unattended-upgrades (MinimalSteps) commits many times in one process. The hook walks its
 * ancestors to the frontend (apt, apt-get, aptitude, unattended-upgrade, packagekitd, dnf) and
 * stamps (pid, start time) under the run directory; a second call in the same run finds the stamp.
 * Without a frontend, a 45-minute window is the fallback.
 */
import fs from 'node:fs';
import path from 'node:path';

const FRONTENDS = new Set(['apt', 'apt-get', 'aptitude', 'unattended-upgr', 'unattended-upgrade', 'packagekitd', 'synaptic', 'dnf', 'dnf5', 'yum', 'dnf-automatic']);
export const WINDOW_MS = 45 * 60_000;

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  starttime: string;
}

function procStat(pid: number, proc = '/proc'): ProcStat | null {
  try {
    const t = fs.readFileSync(path.join(proc, String(pid), 'stat'), 'utf8');
    // comm is in parentheses and may contain spaces/parentheses: split after the last ')'
    const open = t.indexOf('(');
    const close = t.lastIndexOf(')');
    const comm = t.slice(open + 1, close);
    const rest = t.slice(close + 2).split(' ');
    // rest[0] = state (field 3), rest[1] = ppid (field 4), starttime = field 22 ⇒ rest[19]
    return { pid, comm, ppid: Number(rest[1]), starttime: rest[19] ?? '0' };
  } catch {
    return null;
  }
}

function cmdline(pid: number, proc = '/proc'): string[] {
  try {
    return fs.readFileSync(path.join(proc, String(pid), 'cmdline'), 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** The package-manager frontend this process runs under, if any. */
export function findFrontend(startPid = process.ppid, proc = '/proc'): ProcStat | null {
  let pid = startPid;
  for (let depth = 0; pid > 1 && depth < 32; depth++) {
    const st = procStat(pid, proc);
    if (!st) return null;
    const argv0 = path.basename(cmdline(pid, proc)[0] ?? '');
    const script = path.basename(cmdline(pid, proc)[1] ?? '');
    if (FRONTENDS.has(st.comm) || FRONTENDS.has(argv0) || (/^python/.test(argv0) && FRONTENDS.has(script))) return st;
    pid = st.ppid;
  }
  return null;
}

export interface Stamp {
  key: string;
  ok: boolean;
  message: string;
  at: number;
}

export class RunStamps {
  constructor(readonly dir: string) {}

  /** The key for this run: frontend pid + start time, or the time window. */
  key(frontend: ProcStat | null): string {
    return frontend ? `${frontend.comm.replace(/[^A-Za-z0-9_-]/g, '_')}-${frontend.pid}-${frontend.starttime}` : 'window';
  }

  /** The stamp of an earlier call in this run (for 'window': within WINDOW_MS). */
  find(key: string, kind: string, now = Date.now()): Stamp | null {
    try {
      const s = JSON.parse(fs.readFileSync(path.join(this.dir, `${kind}-${key}.json`), 'utf8')) as Stamp;
      if (key === 'window' && now - s.at > WINDOW_MS) return null;
      return s;
    } catch {
      return null;
    }
  }

  write(key: string, kind: string, ok: boolean, message: string): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const s: Stamp = { key, ok, message, at: Date.now() };
    fs.writeFileSync(path.join(this.dir, `${kind}-${key}.json`), JSON.stringify(s));
    // prune stamps older than a day
    try {
      for (const f of fs.readdirSync(this.dir)) {
        const p = path.join(this.dir, f);
        if (Date.now() - fs.statSync(p).mtimeMs > 86_400_000) fs.rmSync(p, { force: true });
      }
    } catch {
      // best effort
    }
  }
}
