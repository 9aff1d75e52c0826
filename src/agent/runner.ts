/**
 * Runs one job once: its `before` commands, the lifeboat command line as a child process (under
 * nice/ionice, with the config text the agent validated), then `after` or `on_failure`. The child's
 * JSON output gives the result (bytes added, snapshots, files scanned...); its stderr goes to the log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { JobSpec } from './jobs.js';
import type { RunResult } from './state-db.js';

export interface ChildGlobals {
  /** The config file and the text validated from it (children parse the same text). */
  configFile?: string;
  configText?: string;
  repo?: string;
  passwordFile?: string;
  cacheDir?: string;
}

export interface JobOutcome {
  result: Exclude<RunResult, 'running' | 'skipped'>;
  exitCode: number | null;
  bytesAdded: number | null;
  snapshots: string[];
  error: string | null;
  details: Record<string, unknown>;
  /** The last lines of output (for healthchecks' fail pings and status). */
  logTail: string[];
  /** Exit codes that retrying will not fix (no repository, wrong password, bad usage). */
  permanent: boolean;
}

export interface RunOptions {
  globals: ChildGlobals;
  /** Each stderr line of the child and the hooks. */
  log: (line: string) => void;
  timeoutMs: number;
  /** Aborting sends SIGTERM (the job releases its lock and exits), then SIGKILL after killAfterMs. */
  signal?: AbortSignal;
  killAfterMs?: number;
  /** Extra environment for the hooks and the child (e.g. LIFEBOAT_BACKUP_CHANGED). */
  env?: Record<string, string>;
}

const TAIL = 40;
const EXIT_NO_REPO = 10;
const EXIT_WRONG_PASSWORD = 12;

/** The argv that runs `lifeboat ARGS` under the job's nice/ionice. */
export function childCommand(job: JobSpec, globals: ChildGlobals): { file: string; args: string[] } {
  const lifeboat = [process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--inspect')), process.argv[1]!];
  const g: string[] = [];
  if (globals.configFile) g.push('--config', globals.configFile);
  if (globals.repo) g.push('--repo', globals.repo);
  if (globals.passwordFile) g.push('--password-file', globals.passwordFile);
  if (globals.cacheDir) g.push('--cache-dir', globals.cacheDir);
  let argv = [...lifeboat, ...g, ...job.args];
  if (job.nice !== 0 && fs.existsSync('/usr/bin/nice')) argv = ['/usr/bin/nice', '-n', String(job.nice), ...argv];
  const io = ioniceArgs(job.ionice);
  if (io && fs.existsSync('/usr/bin/ionice')) argv = ['/usr/bin/ionice', ...io, ...argv];
  return { file: argv[0]!, args: argv.slice(1) };
}

function ioniceArgs(spec: string): string[] | null {
  const [cls, level] = spec.split(':');
  if (cls === 'idle') return ['-c', '3'];
  const c = cls === 'realtime' ? '1' : '2';
  if (c === '2' && level === '4') return null; // the kernel's default
  return ['-c', c, ...(level !== undefined ? ['-n', level] : [])];
}

function childEnv(globals: ChildGlobals, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.LIFEBOAT_AGENT_CONFIG_TEXT;
  if (globals.configFile && globals.configText !== undefined) {
    env.LIFEBOAT_CONFIG = globals.configFile;
    env.LIFEBOAT_AGENT_CONFIG_TEXT = globals.configText;
  }
  return env;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  tail: string[];
  timedOut: boolean;
  spawnError?: Error;
}

function runChild(file: string, args: string[], o: RunOptions, env: NodeJS.ProcessEnv, label: string): Promise<Exit> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    const tail: string[] = [];
    let stdout = '';
    let timedOut = false;
    try {
      child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: null, signal: null, stdout, tail, timedOut, spawnError: e as Error });
      return;
    }
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 25_000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      o.log(`${label}: still running after ${Math.round(o.timeoutMs / 1000)} s: stopping it`);
      stop();
    }, o.timeoutMs);
    const onAbort = () => stop();
    o.signal?.addEventListener('abort', onAbort);
    if (o.signal?.aborted) stop();
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (!l.trim()) continue;
        tail.push(l);
        if (tail.length > TAIL) tail.shift();
        o.log(`${label}: ${l}`);
      }
    });
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      // only the last JSON lines matter; keep memory flat for chatty commands
      if (stdout.length > 4 << 20) stdout = stdout.slice(-(1 << 20));
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, tail, timedOut, spawnError: e });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', onAbort);
      if (partial.trim()) tail.push(partial);
      resolve({ code, signal, stdout, tail, timedOut });
    });
  });
}

/** Runs the job's hook commands in order; the first failure stops them and is returned. */
async function runHooks(kind: string, hooks: Array<string | string[]>, job: JobSpec, o: RunOptions, env: NodeJS.ProcessEnv): Promise<string | null> {
  for (const h of hooks) {
    const [file, args] = typeof h === 'string' ? ['/bin/sh', ['-c', h]] : [h[0]!, h.slice(1)];
    const text = typeof h === 'string' ? h : h.join(' ');
    const r = await runChild(file, args, o, env, `${job.name} ${kind}`);
    if (r.spawnError) return `${kind} command "${text}" could not start: ${r.spawnError.message}`;
    if (r.code !== 0) return `${kind} command "${text}" ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`}${r.tail.length ? `: ${r.tail.at(-1)}` : ''}`;
  }
  return null;
}

function jsonLines(stdout: string): unknown[] {
  const out: unknown[] = [];
  for (const l of stdout.split('\n')) {
    const t = l.trim();
    if (!t.startsWith('{') && !t.startsWith('[')) continue;
    try {
      out.push(JSON.parse(t));
    } catch {
      // a pretty-printed document: try the whole output below
    }
  }
  if (out.length === 0 && stdout.trim()) {
    try {
      out.push(JSON.parse(stdout));
    } catch {
      // not JSON
    }
  }
  return out;
}

type Json = Record<string, unknown>;

/** What the job's JSON output says: bytes added, snapshots written, job-specific details. */
export function interpret(job: JobSpec, stdout: string): { bytesAdded: number | null; snapshots: string[]; details: Json } {
  const docs = jsonLines(stdout);
  const last = docs.at(-1);
  switch (job.kind) {
    case 'backup': {
      const s = docs.filter((d): d is Json => !!d && (d as Json).message_type === 'summary').at(-1);
      if (!s) return { bytesAdded: null, snapshots: [], details: {} };
      return {
        bytesAdded: Number(s.data_added ?? 0),
        snapshots: s.snapshot_id ? [String(s.snapshot_id)] : [],
        details: {
          files_processed: s.total_files_processed, files_read: s.files_read, files_new: s.files_new, files_changed: s.files_changed,
          bytes_processed: s.total_bytes_processed, data_added_packed: s.data_added_packed, errors: s.errors,
        },
      };
    }
    case 'db': {
      const list = Array.isArray(last) ? (last as Json[]) : [];
      return {
        bytesAdded: list.reduce((n, r) => n + Number(r.data_added ?? 0), 0),
        snapshots: list.filter((r) => r.snapshot_id).map((r) => String(r.snapshot_id)),
        details: { dumps: list.map((r) => ({ database: r.database, bytes: r.bytes, error: r.error })) },
      };
    }
    case 'retention': {
      const groups = docs.find((d): d is Json[] => Array.isArray(d)) ?? [];
      const count = (k: string) => groups.reduce((n, g) => n + (Array.isArray(g[k]) ? (g[k] as unknown[]).length : 0), 0);
      const pruned = docs.filter((d): d is Json => !!d && typeof d === 'object' && !Array.isArray(d)).at(-1);
      return { bytesAdded: null, snapshots: [], details: { groups: groups.length, kept: count('keep'), removed: count('remove'), ...(pruned ? { prune: summarize(pruned) } : {}) } };
    }
    default:
      return { bytesAdded: null, snapshots: [], details: last && typeof last === 'object' && !Array.isArray(last) ? summarize(last as Json) : {} };
  }
}

/** Keeps a command's JSON small enough for the state database (stats, not whole lists). */
function summarize(d: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(d)) {
    if (Array.isArray(v)) out[k] = v.length <= 20 ? v : `${v.length} items`;
    else out[k] = v;
  }
  return out;
}

export async function runJob(job: JobSpec, o: RunOptions): Promise<JobOutcome> {
  const env = childEnv(o.globals, { LIFEBOAT_JOB: job.name, ...o.env });
  const fail = (error: string, tail: string[] = [], permanent = false, exitCode: number | null = null, details: Json = {}): JobOutcome => ({
    result: 'failure', exitCode, bytesAdded: null, snapshots: [], error, details, logTail: tail, permanent,
  });
  const before = await runHooks('before', job.before, job, o, env);
  if (before && o.signal?.aborted) return { ...fail(`stopped during the before command (the agent is stopping)`), result: 'interrupted' };
  if (before) {
    await runHooks('on_failure', job.onFailure, job, o, { ...env, LIFEBOAT_JOB_RESULT: 'failure', LIFEBOAT_JOB_ERROR: before });
    return fail(before);
  }
  if (o.signal?.aborted) return { ...fail('stopped before it started'), result: 'interrupted' };
  const { file, args } = childCommand(job, o.globals);
  const r = await runChild(file, args, o, env, job.name);
  const parsed = interpret(job, r.stdout);
  let outcome: JobOutcome;
  if (r.spawnError) outcome = fail(`could not start: ${r.spawnError.message}`);
  else if (r.code === 0 || r.code === 3) {
    outcome = { result: r.code === 0 ? 'success' : 'incomplete', exitCode: r.code, ...parsed, error: r.code === 3 ? lastError(r.tail) : null, logTail: r.tail, permanent: false };
  } else {
    const why = r.timedOut ? 'timed out' : o.signal?.aborted ? 'stopped (the agent is stopping)' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
    outcome = {
      ...fail(`${why}${lastError(r.tail) ? `: ${lastError(r.tail)}` : ''}`, r.tail, r.code === EXIT_NO_REPO || r.code === EXIT_WRONG_PASSWORD || r.code === 2, r.code, parsed.details),
      snapshots: parsed.snapshots,
      bytesAdded: parsed.bytesAdded,
      result: o.signal?.aborted ? 'interrupted' : 'failure',
    };
  }
  if (outcome.result === 'success' || outcome.result === 'incomplete') {
    const after = await runHooks('after', job.after, job, o, { ...env, LIFEBOAT_JOB_RESULT: outcome.result });
    if (after) return { ...outcome, result: 'failure', error: after };
  } else if (outcome.result === 'failure') {
    await runHooks('on_failure', job.onFailure, job, o, { ...env, LIFEBOAT_JOB_RESULT: 'failure', LIFEBOAT_JOB_ERROR: outcome.error ?? '' });
  }
  return outcome;
}

/** The line that says what went wrong: lifeboat's own error line, else a crash's `...Error: ...` line, else the last line. */
function lastError(tail: string[]): string {
  for (let i = tail.length - 1; i >= 0; i--) {
    const l = tail[i]!;
    if (/^lifeboat: /.test(l)) return l.slice('lifeboat: '.length);
  }
  for (let i = tail.length - 1; i >= 0; i--) {
    const l = tail[i]!.trim();
    if (/^(\w+)?Error\b.*:/.test(l) || /^\[?\w*Error\]?:/.test(l)) return l;
  }
  return (tail.filter((l) => !/^Node\.js v\d/.test(l.trim())).at(-1) ?? '').trim();
}
