/** Runs `lifeboat agent` for the agent's e2e tests: start, wait for outcomes by polling, signal, collect the log. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CLI, runCli, FAST_KDF, type RunResult } from '../helpers/cli.js';

export interface AgentProc {
  child: ChildProcess;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('LIFEBOAT_') && !k.startsWith('LIFEBOAT_TEST_')) delete base[k];
  return { ...base, ...extra };
}

export function startAgent(config: string, env: Record<string, string> = {}): AgentProc {
  const child = spawn(process.execPath, [CLI, '--config', config, 'agent'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, log: () => out, exited };
}

/** Polls `check` (every intervalMs) until it returns a value (not undefined), or throws after timeoutMs with `what` and the agent's log. */
export async function waitFor<T>(
  what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000, agent?: AgentProc, intervalMs = 400,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${agent ? `\n--- agent log ---\n${agent.log()}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface JobStatusJson {
  name: string;
  kind: string;
  state: string;
  next_run: string | null;
  last_run: { result: string; trigger: string; attempt: number; bytes_added: number | null; snapshots: string[]; error: string | null; details: Record<string, unknown>; started: string; finished: string | null } | null;
  last_success: string | null;
  runs_total: number;
  failures_total: number;
  consecutive_failures: number;
  skipped_total: number;
  pending_changes?: number;
}

export interface StatusJson {
  agent: { running: boolean; pid?: number; metrics?: string | null; state_dir: string };
  jobs: JobStatusJson[];
  repository?: { location: string; reachable: boolean; error?: string; snapshots?: number };
}

export async function status(config: string, extra: string[] = ['--no-probe']): Promise<StatusJson> {
  const r = await runCli(['--config', config, 'status', '--json', ...extra]);
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

export function job(s: StatusJson, name: string): JobStatusJson {
  const j = s.jobs.find((x) => x.name === name);
  if (!j) throw new Error(`no job ${name} in status: ${JSON.stringify(s)}`);
  return j;
}

export function cli(config: string, args: string[]): Promise<RunResult> {
  return runCli(['--config', config, ...args]);
}

/** A directory with a password file and an initialised local repository; the config's head lines. */
export async function setupRepo(dir: string): Promise<string> {
  fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  const head = `repository: ${path.join(dir, 'repo')}\npassword_file: pw\ncache_dir: cache\n`;
  fs.writeFileSync(path.join(dir, 'init.yaml'), head);
  const r = await runCli(['--config', path.join(dir, 'init.yaml'), 'init', ...FAST_KDF]);
  if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
  return head;
}

/** A local HTTP server recording requests (healthchecks). */
export async function recorder(): Promise<{ url: string; hits: Array<{ path: string; body: string }>; close: () => Promise<void> }> {
  const hits: Array<{ path: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', body });
      res.end('OK');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address() as { port: number };
  return { url: `http://127.0.0.1:${a.port}`, hits, close: () => new Promise((r) => server.close(() => r())) };
}

export async function stopAgent(a: AgentProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t = Date.now();
  a.child.kill(signal);
  const timer = setTimeout(() => a.child.kill('SIGKILL'), 60_000);
  const r = await a.exited;
  clearTimeout(timer);
  return { code: r.code, ms: Date.now() - t };
}
