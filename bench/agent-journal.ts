/**
 * Issue 8's benchmark: an incremental backup through the watcher journal against a full scan, on a
 * tree of many small files (default 100 000; `--files 1000000` for the issue's figure), with
 * `--changed` files changed (default 100) — lifeboat's full-scan backup (every directory read,
 * every file's metadata compared with the parent), lifeboat's journal-driven backup
 * (`backup --changed-from`, what the agent runs), and restic's backup of the same change. Then the
 * agent at idle: CPU and RSS over 30 s, without and with the watcher on the tree.
 *
 *   npm run bench:agent [-- --files 1000000] [--changed 100] [--dir /var/tmp/x]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { timed, type Measure } from './measure.js';

const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../dist/cli/main.js');
const PER_DIR = 100;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

function fileOf(root: string, i: number): string {
  const d = Math.floor(i / PER_DIR);
  return path.join(root, `g${String(Math.floor(d / 100)).padStart(3, '0')}`, `d${String(d).padStart(5, '0')}`, `f${String(i % PER_DIR).padStart(4, '0')}`);
}

function makeTree(root: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const f = fileOf(root, i);
    if (i % PER_DIR === 0) fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `${i}:${randomBytes(24).toString('hex')}\n`);
  }
}

function change(root: string, n: number, count: number, round: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const i = Math.floor(((k + 0.5) / count) * n + round * 7) % n;
    const f = fileOf(root, i);
    fs.writeFileSync(f, `changed in round ${round}: ${randomBytes(16).toString('hex')}\n`);
    out.push(f);
  }
  return out;
}

function summaryOf(json: string): Record<string, number> {
  const line = json.trim().split('\n').reverse().find((l) => l.includes('"summary"'));
  return line ? (JSON.parse(line) as Record<string, number>) : {};
}

async function backupTimed(env: NodeJS.ProcessEnv, args: string[]): Promise<{ m: Measure; s: Record<string, number> }> {
  const out = path.join(os.tmpdir(), `lifeboat-bench-${process.pid}.json`);
  const m = await timed('/bin/sh', ['-c', `"$0" "$@" > ${out}`, process.execPath, CLI, 'backup', '--json', ...args], env);
  const s = summaryOf(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  return { m, s };
}

/** CPU seconds and RSS of a process over `ms` (from /proc). */
async function idle(pid: number, ms: number): Promise<{ cpuS: number; rssMiB: number }> {
  const ticks = () => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const t0 = ticks();
  await new Promise((r) => setTimeout(r, ms));
  const cpuS = (ticks() - t0) / hz;
  const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return { cpuS, rssMiB: Number(rss) / 1024 };
}

async function agentIdle(dir: string, env: NodeJS.ProcessEnv, tree: string, watch: boolean): Promise<{ cpuS: number; rssMiB: number; readyS: number }> {
  const config = path.join(dir, `agent-${watch ? 'watch' : 'plain'}.yaml`);
  fs.writeFileSync(config, `repository: ${env.LIFEBOAT_REPOSITORY}\npassword_file: ${env.LIFEBOAT_PASSWORD_FILE}\ncache_dir: ${env.LIFEBOAT_CACHE_DIR}\nagent: {state_dir: ${path.join(dir, `state-${watch}`)}}\nmetrics: {enabled: false}\nwatch: {enabled: ${watch}, full_scan_interval: 30d}\nbackups:\n  tree: {paths: [${tree}], schedule: "0 3 1 1 *"}\n`);
  const child = spawn(process.execPath, [CLI, '--config', config, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const t0 = Date.now();
  // with the watcher: wait for its initial scan and the full scan it triggers
  while (watch && !/job tree: (success|failure)/.test(log)) await new Promise((r) => setTimeout(r, 500));
  const readyS = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  const r = await idle(child.pid!, 30_000);
  child.kill('SIGTERM');
  await new Promise((r2) => child.on('exit', r2));
  return { ...r, readyS };
}

async function main(): Promise<void> {
  const n = Number(arg('files', '100000'));
  const count = Number(arg('changed', '100'));
  const dir = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'lifeboat-agent-bench-'));
  const tree = path.join(dir, 'tree');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LIFEBOAT_REPOSITORY: path.join(dir, 'repo'),
    LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'),
    LIFEBOAT_CACHE_DIR: path.join(dir, 'cache'),
    RESTIC_REPOSITORY: path.join(dir, 'restic'),
    RESTIC_PASSWORD_FILE: path.join(dir, 'pw'),
    RESTIC_CACHE_DIR: path.join(dir, 'restic-cache'),
  };
  fs.writeFileSync(path.join(dir, 'pw'), 'bench\n', { mode: 0o600 });
  try {
    process.stderr.write(`making ${n} files in ${tree}\n`);
    makeTree(tree, n);
    execFileSync(process.execPath, [CLI, 'init', '--kdf-memory', '8', '--kdf-iterations', '1'], { env, stdio: 'ignore' });
    process.stderr.write('initial backups\n');
    const first = await backupTimed(env, [tree]);
    const hasRestic = fs.existsSync('/usr/bin/restic');
    if (hasRestic) {
      execFileSync('restic', ['init'], { env, stdio: 'ignore' });
      await timed('restic', ['backup', '--quiet', tree], env);
    }
    // round 1: the same change for lifeboat's full scan and for restic
    const changed1 = change(tree, n, count, 1);
    const full = await backupTimed(env, [tree]);
    let restic: Measure | null = null;
    if (hasRestic) restic = await timed('restic', ['backup', '--quiet', tree], env);
    // round 2: an equal change through the journal
    const changed2 = change(tree, n, count, 2);
    const journal = path.join(dir, 'journal');
    fs.writeFileSync(journal, changed2.join('\0'));
    const viaJournal = await backupTimed(env, ['--changed-from', journal, tree]);
    void changed1;
    process.stderr.write('agent idle (30 s each)\n');
    const idlePlain = await agentIdle(dir, env, tree, false);
    const idleWatch = await agentIdle(dir, env, tree, true);
    const row = (name: string, m: Measure, s?: Record<string, number>) =>
      `| ${name} | ${m.wallS.toFixed(2)} s | ${m.cpuS.toFixed(2)} s | ${m.rssMiB.toFixed(0)} MiB | ${s?.total_files_processed ?? '-'} | ${s?.files_read ?? '-'} |`;
    const lines = [
      `${n} files in ${Math.ceil(n / PER_DIR)} directories, ${count} changed; ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
      '',
      '| backup | wall | CPU | peak RSS | files scanned | files read |',
      '|---|---|---|---|---|---|',
      row('lifeboat, initial', first.m, first.s),
      row('lifeboat, full scan', full.m, full.s),
      row('lifeboat, watcher journal', viaJournal.m, viaJournal.s),
      ...(restic ? [row('restic 0.14 (full scan)', restic)] : []),
      '',
      `agent idle, 30 s: CPU ${idlePlain.cpuS.toFixed(2)} s, RSS ${idlePlain.rssMiB.toFixed(0)} MiB; with the watcher on the tree: CPU ${idleWatch.cpuS.toFixed(2)} s, RSS ${idleWatch.rssMiB.toFixed(0)} MiB (watcher ready and full scan done after ${idleWatch.readyS.toFixed(0)} s)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    fs.mkdirSync(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bench/results'), { recursive: true });
    fs.writeFileSync(path.resolve(path.dirname(new URL(import.meta.url).pathname), `../../bench/results/agent-journal-${n}.json`), JSON.stringify({ n, count, first, full, viaJournal, restic, idlePlain, idleWatch }, null, 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
