/**
 * `lifeboat doctor`: one line per check, each problem with its fix. Checks the config, the secret
 * files' modes, the repository and password, the clock against the S3 server's, the database
 * tools, inotify limits against the watched trees, the cache's free space, the cloud (when instance
 * snapshots are configured), the package hooks, the native fast paths, and the agent itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import type { Repository } from '../repo/repository.js';
import { jobTable } from './jobs.js';
import { socketPath, stateDir } from './paths.js';
import { agentRequest } from './control-client.js';
import { hookStatus, HOOK_KINDS } from '../hooks/install.js';
import { openProvider } from '../cloud/open.js';
import { nativeStatus } from '../native/index.js';

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export interface Finding {
  check: string;
  verdict: Verdict;
  message: string;
  fix?: string;
}

export interface DoctorInput {
  config: LoadedConfig | null;
  /** Set when the config could not be loaded. */
  configError?: string;
  configFile: string | null;
  repositoryLocation: string | null;
  passwordFile: string | null;
  cacheDir: string;
  openRepository: () => Promise<Repository>;
  log?: (m: string) => void;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function secretMode(check: string, file: string): Finding {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return { check, verdict: 'fail', message: `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, fix: `create it (one line, mode 0600)` };
  }
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (st.mode & 0o004) return { check, verdict: 'fail', message: `${file} is world-readable (mode ${mode})`, fix: `chmod 600 ${file}` };
  if (st.mode & 0o040) return { check, verdict: 'warn', message: `${file} is group-readable (mode ${mode})`, fix: `chmod 600 ${file}` };
  return { check, verdict: 'ok', message: `${file} (mode ${mode})` };
}

/** Directories under the roots, counted up to `limit` (then it stops). */
function countDirs(roots: string[], limit: number): number {
  let n = 0;
  const stack = [...roots];
  while (stack.length && n <= limit) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    n++;
    for (const e of entries) if (e.isDirectory()) stack.push(path.join(d, e.name));
  }
  return n;
}

/**
 * The native fast paths: all in use is ok; any missing works (in TypeScript or WebAssembly, the
 * same format) but slower, a warning naming what to install.
 */
function nativeFinding(): Finding {
  const n = nativeStatus();
  if (!n.helper) {
    return { check: 'native code', verdict: 'warn', message: 'the native helper does not load: xattrs, nanosecond times and FIFOs cannot be restored, and everything runs slower', fix: 'reinstall lifeboat (npm ci builds build/Release/lifeboat_native.node)' };
  }
  const missing: string[] = [];
  const fixes: string[] = [];
  if (!n.chunker) missing.push('chunker in TypeScript (LIFEBOAT_NATIVE_CDC=0)');
  if (!n.blobs) {
    missing.push('blobs sealed in TypeScript (no libzstd.so.1 or OpenSSL, or LIFEBOAT_NATIVE_BLOB=0)');
    fixes.push('install libzstd1');
  }
  if (!n.argon2id) {
    missing.push('Argon2id in WebAssembly (no libsodium, or LIFEBOAT_NATIVE_KDF=0)');
    fixes.push('install libsodium23');
  }
  if (missing.length === 0) return { check: 'native code', verdict: 'ok', message: 'chunker, blob sealing (libzstd, OpenSSL) and Argon2id (libsodium) run natively' };
  return {
    check: 'native code', verdict: 'warn', message: `slower paths in use: ${missing.join('; ')}`,
    ...(fixes.length > 0 ? { fix: fixes.join(', ') } : {}),
  };
}

export async function runDoctor(o: DoctorInput): Promise<Finding[]> {
  const out: Finding[] = [];
  const c = o.config?.config;

  // the config
  if (o.configError) out.push({ check: 'config', verdict: 'fail', message: o.configError, fix: 'correct the line named above' });
  else if (!o.config) out.push({ check: 'config', verdict: 'warn', message: 'no config file (--config, LIFEBOAT_CONFIG or /etc/lifeboat/lifeboat.yaml)', fix: 'write /etc/lifeboat/lifeboat.yaml (docs/configuration.md)' });
  else {
    const jobs = jobTable(o.config.config);
    out.push({ check: 'config', verdict: 'ok', message: `${o.config.file} is valid (${jobs.length} job${jobs.length === 1 ? '' : 's'}, ${jobs.filter((j) => j.schedule).length} scheduled)` });
    if (jobs.length > 0 && !jobs.some((j) => j.schedule)) out.push({ check: 'schedules', verdict: 'warn', message: 'no job has a schedule: the agent would do nothing on its own', fix: 'add schedule: "30 2 * * *" to a backup' });
    if (jobs.some((j) => j.kind === 'backup') && !c!.restore_test) out.push({ check: 'restore test', verdict: 'warn', message: 'no restore_test: section: nothing proves the backups can be restored', fix: 'add restore_test: {schedule: "0 6 * * *"}' });
  }

  out.push(nativeFinding());

  // secrets
  if (o.passwordFile) out.push(secretMode('password file', o.passwordFile));
  for (const [name, e] of Object.entries(c?.databases ?? {})) {
    if ('password_file' in e && e.password_file) out.push(secretMode(`databases.${name} password`, e.password_file));
  }

  // the repository
  if (!o.repositoryLocation) out.push({ check: 'repository', verdict: 'fail', message: 'no repository configured', fix: 'set repository: in the config (or LIFEBOAT_REPOSITORY)' });
  else {
    try {
      const repo = await withTimeout(o.openRepository(), 60_000, 'opening the repository');
      try {
        const snaps = await repo.listSnapshots();
        out.push({ check: 'repository', verdict: 'ok', message: `${repo.storage.location} opens with the password (${snaps.length} snapshots)` });
      } finally {
        await repo.close();
        await repo.storage.close();
      }
    } catch (e) {
      const name = (e as Error).name;
      const fix = name === 'WrongPasswordError' ? 'check the password file (lifeboat key list with the right password)'
        : name === 'NoRepositoryError' ? 'lifeboat init (a new repository), or correct repository:'
        : 'check the address, the S3 credentials (AWS_ACCESS_KEY_ID/…, ~/.aws) and the network';
      out.push({ check: 'repository', verdict: 'fail', message: (e as Error).message.split('\n')[0]!, fix });
    }
    // the clock against the S3 server's (locks go stale and prune's grace is measured by clocks)
    const m = /^s3:(https?:\/\/[^/]+)/.exec(o.repositoryLocation);
    if (m) {
      try {
        const t0 = Date.now();
        const res = await withTimeout(fetch(m[1]!, { method: 'HEAD' }), 15_000, 'the S3 server');
        const t1 = Date.now();
        const date = res.headers.get('date');
        if (!date) out.push({ check: 'clock', verdict: 'skip', message: 'the S3 server sent no Date header' });
        else {
          const skew = Date.parse(date) - (t0 + t1) / 2;
          const s = Math.round(skew / 1000);
          out.push(Math.abs(skew) > 60_000
            ? { check: 'clock', verdict: 'fail', message: `this clock is ${Math.abs(s)} s ${s > 0 ? 'behind' : 'ahead of'} the S3 server's`, fix: 'enable time sync: timedatectl set-ntp true (systemd-timesyncd or chrony)' }
            : { check: 'clock', verdict: 'ok', message: `within ${Math.max(1, Math.abs(s))} s of the S3 server's` });
        }
      } catch (e) {
        out.push({ check: 'clock', verdict: 'skip', message: `cannot compare with the S3 server: ${(e as Error).message}` });
      }
    }
  }

  // database tools
  for (const [name, e] of Object.entries(c?.databases ?? {})) {
    const need = e.type === 'postgres' ? [['pg_dump'], ['psql']] : e.type === 'mysql' ? [['mariadb-dump', 'mysqldump'], ['mariadb', 'mysql']] : e.type === 'command' ? [[e.command[0]!]] : [];
    const missing = need.filter((alts) => !alts.some((t) => (t.includes('/') ? fs.existsSync(t) : onPath(t)))).map((alts) => alts.join(' or '));
    if (need.length === 0) continue;
    out.push(missing.length
      ? { check: `databases.${name}`, verdict: 'fail', message: `${missing.join(', ')} not found`, fix: e.type === 'postgres' ? 'apt install postgresql-client' : e.type === 'mysql' ? 'apt install mariadb-client' : 'install the command or correct its path' }
      : { check: `databases.${name}`, verdict: 'ok', message: 'client tools present' });
  }

  // inotify limits against the watched trees
  const watched = o.config ? jobTable(o.config.config).filter((j) => j.kind === 'backup' && j.watch) : [];
  if (watched.length) {
    let limit = 8192;
    try {
      limit = Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim());
    } catch {
      // not Linux
    }
    const dirs = countDirs(watched.flatMap((j) => j.paths ?? []), limit);
    out.push(dirs > limit * 0.8
      ? { check: 'inotify', verdict: 'warn', message: `the watched trees hold ${dirs > limit ? 'more than ' : ''}${dirs} directories; fs.inotify.max_user_watches is ${limit}: the agent will fall back to full scans`, fix: `echo fs.inotify.max_user_watches=${Math.max(1 << 20, dirs * 2)} > /etc/sysctl.d/60-lifeboat.conf && sysctl --system` }
      : { check: 'inotify', verdict: 'ok', message: `${dirs} directories watched, limit ${limit}` });
  }

  // the cache's free space
  try {
    let d = o.cacheDir;
    while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
    const st = fs.statfsSync(d);
    const free = st.bavail * st.bsize;
    const gib = (free / 2 ** 30).toFixed(1);
    out.push(free < 2 ** 30
      ? { check: 'cache space', verdict: 'warn', message: `${gib} GiB free for the cache (${o.cacheDir})`, fix: 'free space, or set cache_dir: to a larger file system' }
      : { check: 'cache space', verdict: 'ok', message: `${gib} GiB free for the cache (${o.cacheDir})` });
  } catch (e) {
    out.push({ check: 'cache space', verdict: 'skip', message: (e as Error).message });
  }

  // the cloud, when instance snapshots are configured
  if (c?.instance_snapshots && (Object.keys(c.instance_snapshots.rotations).length > 0 || c.instance_snapshots.pre_upgrade)) {
    try {
      const provider = openProvider(o.config);
      const list = await withTimeout(provider.list(), 60_000, 'the cloud');
      out.push({ check: 'cloud', verdict: 'ok', message: `this server found, credentials work (${list.length} instance snapshots)` });
    } catch (e) {
      out.push({ check: 'cloud', verdict: 'fail', message: (e as Error).message.split('\n')[0]!, fix: 'check cloud: in the config, clouds.yaml / OS_* variables, and that the metadata service (169.254.169.254) answers' });
    }
    // the package hooks
    if (c.instance_snapshots.pre_upgrade) {
      const present = HOOK_KINDS.map((k) => hookStatus(k)).filter((s) => s.managerPresent);
      const missing = present.filter((s) => !s.installed);
      out.push(missing.length
        ? { check: 'hooks', verdict: 'warn', message: `pre_upgrade is configured but the ${missing.map((s) => s.kind).join(', ')} hook is not installed`, fix: `lifeboat hooks install ${missing[0]!.kind}` }
        : { check: 'hooks', verdict: present.length ? 'ok' : 'skip', message: present.length ? `installed for ${present.map((s) => s.kind).join(', ')}` : 'no package manager with hooks found' });
    }
  }

  // the agent
  if (o.config) {
    const sock = socketPath(o.config.config);
    const live = await agentRequest(sock, 'GET', '/status?probe=0', 5000);
    if (live?.status === 200) out.push({ check: 'agent', verdict: 'ok', message: `running (socket ${sock})` });
    else {
      const dir = stateDir(o.config.config);
      out.push({ check: 'agent', verdict: 'warn', message: `not running (no answer on ${sock}; state in ${dir})`, fix: 'systemctl enable --now lifeboat' });
    }
  }
  return out;
}
