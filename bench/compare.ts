/**
 * lifeboat vs restic vs borg, side by side, on the same generated dataset (issue 4).
 *
 *   npm run bench -- [--scale S] [--tools lifeboat,restic,borg] [--data DIR] [--work DIR] [--keep]
 *                    [--no-install] [--single REL]
 *
 * --scale 0.25 (default, the quick run) ≈ 0.53 GB; --scale 1 ≈ 2.1 GB (see bench/dataset.ts).
 * Each tool backs up to its own local repository (S3 is not covered yet) with its defaults:
 *   lifeboat: `init` with the user defaults (Argon2id 64 MiB, iterations calibrated to ≈ 0.5 s; every
 *             command pays that key derivation once), then `backup`, `restore latest`.
 *   restic:   repository v2 (0.14's default), compression auto.
 *   borg:     `init -e repokey-blake2`, default compression (lz4).
 * Steps (in this order, all tools for a step before the next step): init, initial backup, no-change
 * backup, [mutate to day 2], day-2 backup, full restore, single-file restore, check --read-data
 * (lifeboat `check --read-data`, restic `check --read-data`, borg `check --verify-data`).
 * Each step runs under `/usr/bin/time -v` (wall, user + sys CPU of the process tree, peak RSS of
 * the largest process), after `sync; echo 3 > /proc/sys/vm/drop_caches` (cold page cache; skipped
 * silently where not permitted — the JSON says whether it worked). Bytes stored = `du -sb` of the
 * repository after each backup. Prints a markdown table with lifeboat/restic and lifeboat/borg
 * ratios and writes all figures as JSON to bench/results/compare-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { generate, layout, mutate, treeSize } from './dataset.js';
import { timed, type Measure } from './measure.js';

type Tool = 'lifeboat' | 'restic' | 'borg';
const TOOLS: Tool[] = ['lifeboat', 'restic', 'borg'];
const PASSWORD = 'bench-password';

interface Args {
  scale: number;
  tools: Tool[];
  data: string;
  work: string;
  keep: boolean;
  install: boolean;
  single: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { scale: 0.25, tools: TOOLS, data: '', work: '', keep: false, install: true, single: 'medium/m001-log.log' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--scale') a.scale = Number(v());
    else if (k === '--tools') a.tools = v().split(',').filter(Boolean) as Tool[];
    else if (k === '--data') a.data = path.resolve(v());
    else if (k === '--work') a.work = path.resolve(v());
    else if (k === '--keep') a.keep = true;
    else if (k === '--no-install') a.install = false;
    else if (k === '--single') a.single = v();
    else throw new Error(`unknown option ${k}`);
  }
  if (!(a.scale > 0)) throw new Error('--scale must be > 0');
  for (const t of a.tools) if (!TOOLS.includes(t)) throw new Error(`unknown tool ${t}`);
  if (!a.data) a.data = path.join(os.tmpdir(), `lifeboat-compare-data-${a.scale}`);
  if (!a.work) a.work = path.join(os.tmpdir(), `lifeboat-compare-work`);
  return a;
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureInstalled(tools: Tool[], install: boolean): void {
  const missing = tools.filter((t) => t !== 'lifeboat' && !have(t)).map((t) => (t === 'borg' ? 'borgbackup' : t));
  if (missing.length === 0) return;
  if (!install) throw new Error(`missing: ${missing.join(' ')} (run without --no-install, or apt-get install them)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  process.stderr.write(`installing ${missing.join(' ')} with apt-get…\n`);
  try {
    execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env });
  }
}

function toolVersion(t: Tool, cli: string): string {
  try {
    if (t === 'lifeboat') return `lifeboat ${execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' }).trim()} (node ${process.version})`;
    if (t === 'restic') return execFileSync('restic', ['version'], { encoding: 'utf8' }).trim();
    return execFileSync('borg', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return `${t} (version unknown)`;
  }
}

let dropWorks: boolean | null = null;
function dropCaches(): void {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    dropWorks = dropWorks ?? true;
  } catch {
    dropWorks = false;
  }
}

function duBytes(p: string): number {
  return Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
}

function findFile(root: string, name: string): string | null {
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    if (e.isDirectory()) {
      const r = findFile(p, name);
      if (r) return r;
    } else if (e.isFile() && p.endsWith(name)) return p;
  }
  return null;
}

function sha(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

function dirBytes(root: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        files++;
        bytes += fs.statSync(p).size;
      }
    }
  };
  walk(root);
  return { files, bytes };
}

/** How each tool does each step. `data` is the absolute dataset path. */
class Runner {
  readonly repo: string;
  readonly env: NodeJS.ProcessEnv;
  constructor(
    readonly tool: Tool,
    readonly work: string,
    readonly data: string,
    readonly cli: string,
  ) {
    this.repo = path.join(work, `repo-${tool}`);
    const base = { ...process.env };
    if (tool === 'lifeboat') this.env = { ...base, LIFEBOAT_REPOSITORY: this.repo, LIFEBOAT_PASSWORD: PASSWORD, LIFEBOAT_CACHE_DIR: path.join(work, 'cache-lifeboat') };
    else if (tool === 'restic') this.env = { ...base, RESTIC_REPOSITORY: this.repo, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: path.join(work, 'cache-restic') };
    else this.env = { ...base, BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: path.join(work, 'borg-base'), BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  }

  init(): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'init'], this.env);
    if (this.tool === 'restic') return timed('restic', ['--quiet', 'init'], this.env);
    return timed('borg', ['init', '-e', 'repokey-blake2', this.repo], this.env);
  }

  backup(name: string): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'backup', this.data], this.env);
    if (this.tool === 'restic') return timed('restic', ['--quiet', 'backup', this.data], this.env);
    return timed('borg', ['create', `${this.repo}::${name}`, this.data], this.env);
  }

  /** Full verification: every pack read, every blob decrypted and checked. */
  checkData(): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'check', '--read-data'], this.env);
    if (this.tool === 'restic') return timed('restic', ['--quiet', 'check', '--read-data'], this.env);
    return timed('borg', ['check', '--verify-data', this.repo], this.env);
  }

  restore(target: string, name: string, single?: string): Promise<Measure> {
    fs.mkdirSync(target, { recursive: true });
    if (this.tool === 'lifeboat') {
      const inc = single ? ['--include', path.join(this.data, single)] : [];
      return timed(process.execPath, [this.cli, '--quiet', 'restore', 'latest', '--target', target, ...inc], this.env);
    }
    if (this.tool === 'restic') {
      const inc = single ? ['--include', path.join(this.data, single)] : [];
      return timed('restic', ['--quiet', 'restore', 'latest', '--target', target, ...inc], this.env);
    }
    const sel = single ? [path.join(this.data, single).slice(1)] : [];
    return timed('borg', ['extract', `${this.repo}::${name}`, ...sel], this.env, target);
  }
}

type StepName = 'init' | 'initial backup' | 'no-change backup' | 'day-2 backup' | 'full restore' | 'single-file restore' | 'check --read-data';

interface StepResult extends Measure {
  storedBytes?: number;
  check?: string;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const here = path.dirname(fileURLToPath(import.meta.url));
  let root = here;
  while (!fs.existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  if (args.tools.includes('lifeboat') && !fs.existsSync(cli)) throw new Error(`${cli} missing: npm run build first`);
  ensureInstalled(args.tools, args.install);

  const log = (s: string) => process.stderr.write(s);
  const tGen = Date.now();
  generate(args.data, args.scale, false, log);
  const day1 = treeSize(args.data);
  log(`dataset ${args.data}: ${day1.files} files, ${(day1.bytes / 1e6).toFixed(1)} MB (${((Date.now() - tGen) / 1000).toFixed(1)} s)\n`);
  const singleSrc = path.join(args.data, args.single);
  if (!fs.existsSync(singleSrc)) throw new Error(`--single ${args.single} not in the dataset`);

  fs.rmSync(args.work, { recursive: true, force: true });
  fs.mkdirSync(args.work, { recursive: true });
  const runners = args.tools.map((t) => new Runner(t, args.work, args.data, cli));
  const results: Record<string, Partial<Record<StepName, StepResult>>> = {};
  for (const t of args.tools) results[t] = {};

  const step = async (name: StepName, fn: (r: Runner) => Promise<StepResult>) => {
    for (const r of runners) {
      dropCaches();
      const res = await fn(r);
      results[r.tool]![name] = res;
      log(
        `  ${r.tool.padEnd(8)} ${name.padEnd(20)} ${res.wallS.toFixed(2).padStart(7)} s wall ${res.cpuS.toFixed(2).padStart(7)} s CPU ` +
          `${res.rssMiB.toFixed(0).padStart(5)} MiB` +
          (res.storedBytes !== undefined ? `  repo ${(res.storedBytes / 1e6).toFixed(1)} MB` : '') +
          (res.check ? `  ${res.check}` : '') +
          '\n',
      );
    }
  };
  const withStored = (r: Runner, m: Measure): StepResult => ({ ...m, storedBytes: duBytes(r.repo) });

  let mutation: ReturnType<typeof mutate> | null = null;
  let day2 = day1;
  try {
    await step('init', async (r) => withStored(r, await r.init()));
    await step('initial backup', async (r) => withStored(r, await r.backup('day1')));
    await step('no-change backup', async (r) => withStored(r, await r.backup('day1-again')));
    mutation = mutate(args.data);
    day2 = treeSize(args.data);
    log(`mutated to day 2: ${JSON.stringify(mutation)}; ${(day2.bytes / 1e6).toFixed(1)} MB\n`);
    await step('day-2 backup', async (r) => withStored(r, await r.backup('day2')));
    const singleHash = sha(singleSrc);
    const expect = dirBytes(args.data); // includes the dataset's stamp file, which every tool backs up too
    await step('full restore', async (r) => {
      const target = path.join(args.work, `restore-${r.tool}`);
      const m = await r.restore(target, 'day2');
      const got = dirBytes(target);
      const check = got.files === expect.files && got.bytes === expect.bytes ? 'ok' : `MISMATCH: ${got.files} files, ${got.bytes} bytes`;
      fs.rmSync(target, { recursive: true, force: true });
      return { ...m, check };
    });
    await step('single-file restore', async (r) => {
      const target = path.join(args.work, `restore1-${r.tool}`);
      const m = await r.restore(target, 'day2', args.single);
      const f = findFile(target, args.single);
      const n = dirBytes(target).files;
      const check = f && sha(f) === singleHash && n === 1 ? 'ok' : `MISMATCH: ${f ? 'wrong content' : 'file missing'}, ${n} files restored`;
      fs.rmSync(target, { recursive: true, force: true });
      return { ...m, check };
    });
    await step('check --read-data', async (r) => {
      const t0 = Date.now();
      try {
        return { ...(await r.checkData()), check: 'ok' };
      } catch (e) {
        // a failed check is reported, not fatal to the rest of the run
        log(`  ${r.tool} check --read-data failed: ${(e as Error).message.split('\n').slice(0, 3).join(' / ')}\n`);
        const wallS = (Date.now() - t0) / 1000;
        return { wallS, userS: NaN, sysS: NaN, cpuS: NaN, rssMiB: NaN, check: 'FAILED' };
      }
    });
  } finally {
    if (!args.keep) fs.rmSync(args.work, { recursive: true, force: true });
    else log(`kept ${args.work}\n`);
  }

  // ---- report
  const steps: StepName[] = ['initial backup', 'no-change backup', 'day-2 backup', 'full restore', 'single-file restore', 'check --read-data'];
  const cols = args.tools;
  const ratioCols = cols.includes('lifeboat') ? cols.filter((t) => t !== 'lifeboat') : [];
  const fmt = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
  const lines: string[] = [];
  lines.push(`| step | metric | ${cols.join(' | ')} | ${ratioCols.map((t) => `lifeboat/${t}`).join(' | ')} |`);
  lines.push(`|---|---|${cols.map(() => '---:').join('|')}|${ratioCols.map(() => '---:').join('|')}|`);
  const row = (stepName: string, metric: string, val: (t: Tool) => number | undefined, d = 2) => {
    const lb = val('lifeboat');
    lines.push(
      `| ${stepName} | ${metric} | ${cols.map((t) => fmt(val(t), d)).join(' | ')} | ${ratioCols.map((t) => fmt(lb !== undefined && val(t) ? lb / val(t)! : undefined)).join(' | ')} |`,
    );
  };
  for (const s of steps) {
    const g = (t: Tool) => results[t]![s];
    row(s, 'wall s', (t) => g(t)?.wallS);
    if (s === 'initial backup') row(s, 'MB/s', (t) => (g(t) ? day1.bytes / 1e6 / g(t)!.wallS : undefined), 0);
    if (s === 'full restore') row(s, 'MB/s', (t) => (g(t) ? day2.bytes / 1e6 / g(t)!.wallS : undefined), 0);
    if (s === 'check --read-data') row(s, 'repo MB/s', (t) => (g(t) ? (results[t]!['day-2 backup']?.storedBytes ?? NaN) / 1e6 / g(t)!.wallS : undefined), 0);
    row(s, 'CPU s', (t) => g(t)?.cpuS);
    row(s, 'peak RSS MiB', (t) => g(t)?.rssMiB, 0);
    if (s === 'initial backup') row(s, 'repo MB', (t) => (g(t)?.storedBytes ?? NaN) / 1e6, 1);
    if (s === 'no-change backup') row(s, 'repo +MB', (t) => ((g(t)?.storedBytes ?? NaN) - (results[t]!['initial backup']?.storedBytes ?? NaN)) / 1e6, 2);
    if (s === 'day-2 backup') row(s, 'repo +MB', (t) => ((g(t)?.storedBytes ?? NaN) - (results[t]!['no-change backup']?.storedBytes ?? NaN)) / 1e6, 2);
  }
  row('init', 'wall s', (t) => results[t]!.init?.wallS);
  const checks = cols.flatMap((t) => (['full restore', 'single-file restore', 'check --read-data'] as StepName[]).map((s) => `${t} ${s}: ${results[t]![s]?.check ?? '–'}`));
  const header =
    `scale ${args.scale}: day 1 ${day1.files} files, ${(day1.bytes / 1e6).toFixed(1)} MB; day 2 ${(day2.bytes / 1e6).toFixed(1)} MB; ` +
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), page cache dropped before each step: ${dropWorks ? 'yes' : 'no'}; ` +
    `loadavg at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  console.log(header);
  console.log(lines.join('\n'));
  console.log(`restore checks: ${checks.join('; ')}`);

  const out = {
    when: new Date().toISOString(),
    scale: args.scale,
    layout: layout(args.scale),
    dataset: { day1, day2, mutation, single: args.single },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memBytes: os.totalmem(), node: process.version, loadavg: os.loadavg() },
    dropCaches: dropWorks,
    versions: Object.fromEntries(args.tools.map((t) => [t, toolVersion(t, cli)])),
    notes: [
      'local repositories only (no S3 yet)',
      'lifeboat init with default KDF (Argon2id 64 MiB, ≈0.5 s); each command pays one key derivation',
      'restic: repository v2, compression auto; borg: repokey-blake2, lz4',
    ],
    results,
    table: lines.join('\n'),
  };
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `compare-${out.when.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${path.relative(process.cwd(), file)}\n`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
