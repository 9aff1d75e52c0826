/**
 * Running database client tools: finding them on PATH (with the Debian package to install when they
 * are missing), running one for its output, and feeding one a stream on stdin. Errors carry the
 * last lines of the tool's stderr; arguments never carry secrets (callers pass those in files).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';

export class ToolMissingError extends Error {
  constructor(tools: string[], pkg: string) {
    super(`${tools.join(' or ')} not found in PATH: install the Debian package ${pkg} (apt-get install ${pkg})`);
    this.name = 'ToolMissingError';
  }
}

/**
 * Variables of lifeboat's own environment that a database client tool has no use for: the
 * repository password, object-store and cloud credentials, the agent's copy of the config. A tool's
 * environment is readable by its user (and root) through /proc, and a tool may log or pass it on.
 */
const NOT_FOR_TOOLS = [
  'LIFEBOAT_PASSWORD', 'LIFEBOAT_AGENT_CONFIG_TEXT',
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'OS_PASSWORD', 'OS_APPLICATION_CREDENTIAL_SECRET', 'OS_TOKEN', 'OS_AUTH_TOKEN',
];

/** `env` without lifeboat's own secrets, nor the variable (password_env) a database password came from. */
export function toolEnv(env: NodeJS.ProcessEnv, passwordEnv?: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const k of NOT_FOR_TOOLS) delete out[k];
  if (passwordEnv) delete out[passwordEnv];
  return out;
}

/** The first of `names` found on PATH (as a full path). */
export function findTool(names: string[], pkg: string, env: NodeJS.ProcessEnv = process.env): string {
  const dirs = (env.PATH ?? '').split(':').filter(Boolean);
  for (const n of names) {
    for (const d of dirs) {
      const p = path.join(d, n);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        // not here
      }
    }
  }
  throw new ToolMissingError(names, pkg);
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** How errors name the tool. */
  label?: string;
  /** Writes the tool's stdin; the tool's stdin is closed when it resolves. */
  feed?: (stdin: Writable) => Promise<void>;
  /** Keep stdout (default true); false discards it. */
  captureStdout?: boolean;
  /** Run as this user and group (needs root), in this directory. */
  uid?: number;
  gid?: number;
  cwd?: string;
}

function tailLines(text: string, n = 5): string {
  const lines = text.trimEnd().split('\n').slice(-n).join(' | ');
  return lines ? `: ${lines}` : '';
}

/** Runs argv to completion; resolves with its stdout, rejects with its stderr's tail. */
export function runTool(argv: string[], opts: RunOptions = {}): Promise<string> {
  const label = opts.label ?? path.basename(argv[0]!);
  return new Promise<string>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [opts.feed ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, uid: opts.uid, gid: opts.gid, cwd: opts.cwd });
    let out = '';
    let err = '';
    let timedOut = false;
    let feedError: Error | undefined;
    const capture = opts.captureStdout !== false;
    child.stdout!.on('data', (d: Buffer) => {
      if (capture) out += d.toString('utf8');
    });
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-8192);
    });
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, opts.timeoutMs);
    timer?.unref();
    if (opts.feed) {
      const stdin = child.stdin!;
      stdin.on('error', () => undefined); // EPIPE when the tool stops reading: its exit status says why
      opts.feed(stdin).then(
        () => stdin.end(),
        (e: Error) => {
          feedError = e;
          child.kill('SIGTERM');
        },
      );
    }
    child.on('error', (e) => reject(new Error(`${label} could not be started: ${e.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (feedError) reject(feedError);
      else if (timedOut) reject(new Error(`${label} timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s${tailLines(err)}`));
      else if (signal) reject(new Error(`${label} was killed by ${signal}${tailLines(err)}`));
      else if (code !== 0) reject(new Error(`${label} exited with status ${code}${tailLines(err)}`));
      else resolve(out);
    });
  });
}

export interface RunAs {
  user: string;
  uid: number;
  gid: number;
  home: string;
}

/** The system user `name` (getent passwd), for running client tools as e.g. postgres (peer authentication). */
export function lookupUser(name: string): RunAs {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`run_as: no system user "${name}"`);
  }
  const f = line.split(':');
  if (process.getuid?.() !== 0 && Number(f[2]) !== process.getuid?.()) throw new Error(`run_as: ${name}: lifeboat must run as root to run tools as another user`);
  return { user: name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
}

/** Spawn options and environment for running as `who` (nothing when undefined). */
export function runAsOptions(who: RunAs | undefined, env: NodeJS.ProcessEnv): SpawnAs {
  if (!who) return { env };
  // cwd /: our working directory (e.g. /root) may be closed to that user
  return { env: { ...env, HOME: who.home, USER: who.user, LOGNAME: who.user }, uid: who.uid, gid: who.gid, cwd: '/' };
}

export interface SpawnAs {
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  cwd?: string;
}

/** A timestamp for names: YYYYMMDDHHMMSS (UTC). */
export function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
