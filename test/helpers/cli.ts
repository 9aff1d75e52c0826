import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { randomBucketName, s3Endpoint } from './storage-backends.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would, with a clean LIFEBOAT_* environment plus `env`. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<RunResult> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('LIFEBOAT_') && !k.startsWith('LIFEBOAT_TEST_')) delete base[k];
  return spawnCli(args, { env: { ...base, ...env }, ...(input !== undefined ? { input } : {}) });
}

export interface SpawnCliOptions {
  /** The whole environment of the process. */
  env: NodeJS.ProcessEnv;
  input?: string;
  uid?: number;
  gid?: number;
  /** Told the child's pid as soon as it runs. */
  onPid?: (pid: number) => void;
}

/** Runs the built CLI with exactly `o.env` (as another user with uid/gid); collects its output. */
export function spawnCli(args: string[], o: SpawnCliOptions): Promise<RunResult> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  return new Promise((resolve, reject) => {
    const ids = { ...(o.uid !== undefined ? { uid: o.uid } : {}), ...(o.gid !== undefined ? { gid: o.gid } : {}) };
    const child = spawn(process.execPath, [CLI, ...args], { env: o.env, ...ids, stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) o.onPid?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(o.input ?? '');
  });
}

/** Argon2id parameters for tests: fast key files (real ones take ~0.5 s per command). */
export const FAST_KDF = ['--kdf-memory', '8', '--kdf-iterations', '1'];

/**
 * A new repository for an e2e test — `dir/repo`, or a new bucket on the test S3 server (pushed on
 * `buckets` for cleanup) — with its password in `dir/pw`, created through `lifeboat init`.
 * Returns the environment that points the CLI at it.
 */
export async function initCliRepo(kind: 'local' | 's3', dir: string, buckets: string[]): Promise<Record<string, string>> {
  const repo = kind === 'local' ? path.join(dir, 'repo') : `s3:${s3Endpoint()}/${randomBucketName()}`;
  if (kind === 's3') buckets.push(repo.split('/').at(-1)!);
  fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  const env = { LIFEBOAT_REPOSITORY: repo, LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
  const init = await runCli(['init', ...FAST_KDF], env);
  expect(init.stderr).toBe('');
  expect(init.code).toBe(0);
  return env;
}

/** Runs the CLI and expects exit 0 (stderr in the failure message); returns stdout. */
export async function cliOk(args: string[], env: Record<string, string>): Promise<string> {
  const r = await runCli(args, env);
  expect(r.code, `lifeboat ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The CLI's stdout as bytes (`dump` of a file or a tar), with exactly `env`; stderr is dropped. */
export function cliStdoutBytes(args: string[], env: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    const parts: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => parts.push(d));
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(parts)));
  });
}
