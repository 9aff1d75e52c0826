/**
 * lifeboat vs restic vs borg, side by side, on the same generated dataset (issue 4).
 *
 *   npm run bench -- [--scale S] [--tools lifeboat,restic,borg] [--backends local,s3] [--data DIR]
 *                    [--work DIR] [--keep] [--no-install] [--single REL] [--s3-dir DIR] [--s3-endpoint URL]
 *                    [--s3-log FILE] [--cli PATH]
 *
 * --cli: the lifeboat CLI to measure (default: this checkout's dist/cli/main.js, which has whatever
 * uncommitted changes were in src/ when it was last built); `bench/build-cli.sh [REV]` builds a
 * commit into a directory of its own and prints the path to pass here.
 *
 * --scale 0.25 (default, the quick run) ≈ 0.53 GB; --scale 1 ≈ 2.1 GB (see bench/dataset.ts).
 * Backends (default both):
 *   local: each tool backs up to its own directory repository on the same disk as the data.
 *   s3:    lifeboat and restic (borg has no S3 backend) each to a fresh bucket of the test services'
 *          S3 server (OpenStack Swift + s3api on loopback, test/services/s3.sh with
 *          SWIFT_S3_COMPAT=1, data in --s3-dir, started when not running and stopped at the end
 *          if this run started it), through a byte-counting proxy (bench/counting-proxy.ts) that
 *          records request-body bytes uploaded and response-body bytes downloaded per step.
 *          Buckets are deleted at the end unless --keep. --s3-endpoint URL uses another server
 *          (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION).
 *          --s3-log FILE writes one tab-separated line per S3 request (step, tool, method, path,
 *          status, bytes up, bytes down, ms).
 * Each tool with its defaults:
 *   lifeboat: `init` with the user defaults (Argon2id 64 MiB, iterations calibrated to ≈ 0.5 s; every
 *             command pays that key derivation once), then `backup`, `restore latest`.
 *   restic:   repository v2 (0.14's default), compression auto.
 *   borg:     `init -e repokey-blake2`, default compression (lz4).
 * Steps (in this order; for a step, every backend and tool before the next step): init, initial
 * backup, no-change backup, [mutate to day 2], day-2 backup, full restore, single-file restore,
 * check --read-data (lifeboat `check --read-data`, restic `check --read-data`, borg `check --verify-data`).
 * Each step runs under `/usr/bin/time -v` (wall, user + sys CPU of the process tree, peak RSS of
 * the largest process, bytes read from / written to disk), after `sync; echo 3 >
 * /proc/sys/vm/drop_caches` (cold page cache, the S3 server's files included; skipped silently where
 * not permitted — the JSON says whether it worked). Bytes stored = `du -sb` of the repository, or
 * the sum of the bucket's object sizes, after each backup. Prints one markdown table per backend with
 * lifeboat/restic and lifeboat/borg ratios and writes all figures as JSON to
 * bench/results/compare-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startCountingProxy, trafficDelta, type CountingProxy, type Traffic } from './counting-proxy.js';
import { generate, layout, mutate, treeSize } from './dataset.js';
import { timed, type Measure } from './measure.js';
import { bucketUsage, cpuOf, deleteBucket, selfSignedCert, startS3, type S3Service } from './s3-service.js';

type Tool = 'lifeboat' | 'restic' | 'borg';
const TOOLS: Tool[] = ['lifeboat', 'restic', 'borg'];
type Backend = 'local' | 's3';
const BACKENDS: Backend[] = ['local', 's3'];
/** borg has no S3 backend */
const S3_TOOLS: Tool[] = ['lifeboat', 'restic'];
const PASSWORD = 'bench-password';

interface Args {
  scale: number;
  tools: Tool[];
  backends: Backend[];
  data: string;
  work: string;
  keep: boolean;
  install: boolean;
  single: string;
  s3Dir: string;
  s3Endpoint: string;
  s3Log: string;
  cli: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    scale: 0.25,
    tools: TOOLS,
    backends: BACKENDS,
    data: '',
    work: '',
    keep: false,
    install: true,
    single: 'medium/m001-log.log',
    s3Dir: path.join(os.tmpdir(), 'lifeboat-bench-s3'),
    s3Endpoint: '',
    s3Log: '',
    cli: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--scale') a.scale = Number(v());
    else if (k === '--tools') a.tools = v().split(',').filter(Boolean) as Tool[];
    else if (k === '--backends') a.backends = v().split(',').filter(Boolean) as Backend[];
    else if (k === '--s3-dir') a.s3Dir = path.resolve(v());
    else if (k === '--s3-endpoint') a.s3Endpoint = v();
    else if (k === '--s3-log') a.s3Log = path.resolve(v());
    else if (k === '--cli') a.cli = path.resolve(v());
    else if (k === '--data') a.data = path.resolve(v());
    else if (k === '--work') a.work = path.resolve(v());
    else if (k === '--keep') a.keep = true;
    else if (k === '--no-install') a.install = false;
    else if (k === '--single') a.single = v();
    else throw new Error(`unknown option ${k}`);
  }
  if (!(a.scale > 0)) throw new Error('--scale must be > 0');
  for (const t of a.tools) if (!TOOLS.includes(t)) throw new Error(`unknown tool ${t}`);
  for (const b of a.backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend ${b}`);
  if (a.tools.length === 0 || a.backends.length === 0) throw new Error('--tools and --backends need at least one entry');
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

/** Where an S3 run's tool sends its requests. */
interface S3Target {
  /** the counting proxy in front of the server (https) */
  url: string;
  /** its self-signed certificate, for --cacert / LIFEBOAT_CACERT */
  certFile: string;
  bucket: string;
  env: Record<string, string>;
}

/** How each tool does each step on one backend. `data` is the absolute dataset path. */
class Runner {
  /** a directory (local) or `s3:<proxy>/<bucket>` */
  readonly repo: string;
  readonly env: NodeJS.ProcessEnv;
  readonly name: string;
  constructor(
    readonly tool: Tool,
    readonly backend: Backend,
    readonly work: string,
    readonly data: string,
    readonly cli: string,
    readonly s3?: S3Target,
  ) {
    this.name = `${backend}/${tool}`;
    this.repo = s3 ? `s3:${s3.url}/${s3.bucket}` : path.join(work, `repo-${tool}`);
    const base = { ...process.env, ...(s3?.env ?? {}) };
    const cache = path.join(work, `cache-${backend}-${tool}`);
    if (tool === 'lifeboat') {
      this.env = { ...base, LIFEBOAT_REPOSITORY: this.repo, LIFEBOAT_PASSWORD: PASSWORD, LIFEBOAT_CACHE_DIR: cache };
      if (s3) {
        this.env.LIFEBOAT_CACERT = s3.certFile;
        // LIFEBOAT_CACERT alone is not enough (lifeboat ffb2b3b..0ea5533): for PUTs > 1 MB the AWS SDK
        // sends `Expect: 100-continue` and then uses a fresh https.Agent of its own, without the
        // `ca` lifeboat gave its agent options -> DEPTH_ZERO_SELF_SIGNED_CERT on every pack upload.
        // Node's process-wide extra CAs reach that agent too.
        this.env.NODE_EXTRA_CA_CERTS = s3.certFile;
      }
    } else if (tool === 'restic') this.env = { ...base, RESTIC_REPOSITORY: this.repo, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: cache };
    else {
      if (s3) throw new Error('borg has no S3 backend');
      this.env = { ...base, BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: path.join(work, 'borg-base'), BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
    }
  }

  /** restic's global flags: --quiet, and the proxy's certificate on S3 */
  private get r(): string[] {
    return this.s3 ? ['--quiet', '--cacert', this.s3.certFile] : ['--quiet'];
  }

  init(): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'init'], this.env);
    if (this.tool === 'restic') return timed('restic', [...this.r, 'init'], this.env);
    return timed('borg', ['init', '-e', 'repokey-blake2', this.repo], this.env);
  }

  backup(name: string): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'backup', this.data], this.env);
    if (this.tool === 'restic') return timed('restic', [...this.r, 'backup', this.data], this.env);
    return timed('borg', ['create', `${this.repo}::${name}`, this.data], this.env);
  }

  /** Full verification: every pack read, every blob decrypted and checked. */
  checkData(): Promise<Measure> {
    if (this.tool === 'lifeboat') return timed(process.execPath, [this.cli, '--quiet', 'check', '--read-data'], this.env);
    if (this.tool === 'restic') return timed('restic', [...this.r, 'check', '--read-data'], this.env);
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
      return timed('restic', [...this.r, 'restore', 'latest', '--target', target, ...inc], this.env);
    }
    const sel = single ? [path.join(this.data, single).slice(1)] : [];
    return timed('borg', ['extract', `${this.repo}::${name}`, ...sel], this.env, target);
  }
}

type StepName = 'init' | 'initial backup' | 'no-change backup' | 'day-2 backup' | 'full restore' | 'single-file restore' | 'check --read-data';

interface StepResult extends Measure {
  /** repository bytes after the step: `du -sb` (local) or the bucket's object sizes (s3) */
  storedBytes?: number;
  storedObjects?: number;
  check?: string;
  /** s3: what went through the counting proxy during the step */
  traffic?: Traffic;
  /** s3: CPU seconds of the Swift server processes during the step */
  serverCpuS?: number;
  /** s3: CPU seconds of the benchmark process (the counting proxy) during the step */
  proxyCpuS?: number;
  /** 1-minute load average when the step ended */
  load1: number;
}

type Results = Record<string, Record<string, Partial<Record<StepName, StepResult>>>>;

function gitInfo(root: string): { commit: string; dirty: string[]; source: string } {
  // a tree exported by bench/build-cli.sh: exactly that commit
  const exported = path.join(root, 'COMMIT');
  if (fs.existsSync(exported) && !fs.existsSync(path.join(root, '.git'))) {
    return { commit: fs.readFileSync(exported, 'utf8').trim(), dirty: [], source: `bench/build-cli.sh export ${root}` };
  }
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    // lifeboat's own code only (the benchmark's files do not change what is measured)
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'native', 'package.json', 'package-lock.json'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    return { commit, dirty, source: `checkout ${root}` };
  } catch {
    return { commit: 'unknown', dirty: [], source: root };
  }
}

const MB = 1e6;
const STEPS: StepName[] = ['initial backup', 'no-change backup', 'day-2 backup', 'full restore', 'single-file restore', 'check --read-data'];

/** One markdown table for one backend: a column per tool, then lifeboat/<other> ratios. */
function table(backend: Backend, cols: Tool[], res: Record<string, Partial<Record<StepName, StepResult>>>, day1Bytes: number, day2Bytes: number): string {
  const ratioCols = cols.includes('lifeboat') ? cols.filter((t) => t !== 'lifeboat') : [];
  const fmt = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
  const lines: string[] = [];
  lines.push(`| step | metric | ${cols.join(' | ')} |${ratioCols.map((t) => ` lifeboat/${t} |`).join('')}`);
  lines.push(`|---|---|${cols.map(() => '---:').join('|')}|${ratioCols.map(() => '---:|').join('')}`);
  const row = (stepName: string, metric: string, val: (t: Tool) => number | undefined, d = 2) => {
    const lb = val('lifeboat');
    lines.push(
      `| ${stepName} | ${metric} | ${cols.map((t) => fmt(val(t), d)).join(' | ')} |` +
        ratioCols.map((t) => {
          // no ratio of figures that print as 0 (a ratio of 0.004 to 0.001 MB says nothing)
          const o = val(t);
          const shown = (x: number | undefined) => x !== undefined && Number.isFinite(x) && Math.abs(x) >= 0.5 * 10 ** -d;
          return ` ${fmt(shown(lb) && shown(o) ? lb! / o! : undefined)} |`;
        }).join(''),
    );
  };
  for (const s of STEPS) {
    const g = (t: Tool) => res[t]?.[s];
    const repoMB = s === 'check --read-data' ? 'repo MB/s' : 'MB/s';
    row(s, 'wall s', (t) => g(t)?.wallS);
    if (s === 'initial backup') row(s, repoMB, (t) => (g(t) ? day1Bytes / MB / g(t)!.wallS : undefined), 0);
    if (s === 'full restore') row(s, repoMB, (t) => (g(t) ? day2Bytes / MB / g(t)!.wallS : undefined), 0);
    if (s === 'check --read-data') row(s, repoMB, (t) => (g(t) ? (res[t]?.['day-2 backup']?.storedBytes ?? NaN) / MB / g(t)!.wallS : undefined), 0);
    row(s, 'CPU s', (t) => g(t)?.cpuS);
    row(s, 'peak RSS MiB', (t) => g(t)?.rssMiB, 0);
    if (s === 'initial backup') row(s, 'repo MB', (t) => (g(t)?.storedBytes ?? NaN) / MB, 1);
    if (s === 'no-change backup') row(s, 'repo +MB', (t) => ((g(t)?.storedBytes ?? NaN) - (res[t]?.['initial backup']?.storedBytes ?? NaN)) / MB, 2);
    if (s === 'day-2 backup') row(s, 'repo +MB', (t) => ((g(t)?.storedBytes ?? NaN) - (res[t]?.['no-change backup']?.storedBytes ?? NaN)) / MB, 2);
    if (backend === 's3') {
      row(s, 'MB uploaded', (t) => (g(t)?.traffic ? g(t)!.traffic!.upBytes / MB : undefined), 2);
      row(s, 'MB downloaded', (t) => (g(t)?.traffic ? g(t)!.traffic!.downBytes / MB : undefined), 2);
      row(s, 'requests', (t) => g(t)?.traffic?.requests, 0);
      row(s, 'server CPU s', (t) => g(t)?.serverCpuS, 2);
    } else {
      row(s, 'disk write MB', (t) => (g(t)?.diskWriteBytes ?? NaN) / MB, 1);
      row(s, 'disk read MB', (t) => (g(t)?.diskReadBytes ?? NaN) / MB, 1);
    }
  }
  row('init', 'wall s', (t) => res[t]?.init?.wallS);
  if (backend === 's3') row('init', 'requests', (t) => res[t]?.init?.traffic?.requests, 0);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const here = path.dirname(fileURLToPath(import.meta.url));
  let root = here;
  while (!fs.existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
  const cli = args.cli || path.join(root, 'dist', 'cli', 'main.js');
  if (args.tools.includes('lifeboat') && !fs.existsSync(cli)) throw new Error(`${cli} missing: npm run build first`);
  ensureInstalled(args.tools, args.install);
  let cliRoot = path.dirname(cli);
  while (cliRoot !== path.dirname(cliRoot) && !fs.existsSync(path.join(cliRoot, 'package.json'))) cliRoot = path.dirname(cliRoot);
  const git = gitInfo(cliRoot);
  const loadStart = os.loadavg();

  const log = (s: string) => process.stderr.write(s);
  const tGen = Date.now();
  generate(args.data, args.scale, false, log);
  const day1 = treeSize(args.data);
  log(`dataset ${args.data}: ${day1.files} files, ${(day1.bytes / MB).toFixed(1)} MB (${((Date.now() - tGen) / 1000).toFixed(1)} s)\n`);
  const singleSrc = path.join(args.data, args.single);
  if (!fs.existsSync(singleSrc)) throw new Error(`--single ${args.single} not in the dataset`);

  fs.rmSync(args.work, { recursive: true, force: true });
  fs.mkdirSync(args.work, { recursive: true });
  // Room for: the local repositories (≈ 0.45 × the data each, borg's 0.55), the buckets (Swift
  // stores them in --s3-dir, ≈ 0.45 each) and one full restore at a time (1 ×), plus 10 %.
  {
    const nLocal = args.backends.includes('local') ? args.tools.length : 0;
    const nS3 = args.backends.includes('s3') ? args.tools.filter((t) => S3_TOOLS.includes(t)).length : 0;
    const need = day1.bytes * (1 + 0.55 * (nLocal + nS3)) * 1.1;
    const st = fs.statfsSync(args.work);
    const free = st.bavail * st.bsize;
    log(`disk: ${(free / 1e9).toFixed(1)} GB free at ${args.work}, this run needs ≈ ${(need / 1e9).toFixed(1)} GB\n`);
    if (free < need) throw new Error(`not enough free space at ${args.work}: ${(free / 1e9).toFixed(1)} GB free, ≈ ${(need / 1e9).toFixed(1)} GB needed (use --work elsewhere)`);
  }
  // Ctrl-C: the tool being measured (same process group) gets SIGINT and fails, and the cleanup
  // below (buckets, server, work dir) still runs instead of node exiting at once.
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\ninterrupted: cleaning up (Ctrl-C again to exit at once)\n');
  });

  // ---- S3: the server, the counting proxy, one fresh bucket per tool
  const s3Tools = args.backends.includes('s3') ? args.tools.filter((t) => S3_TOOLS.includes(t)) : [];
  let s3: S3Service | null = null;
  let proxy: CountingProxy | null = null;
  const buckets: Partial<Record<Tool, string>> = {};
  const runners: Runner[] = [];
  if (args.backends.includes('local')) for (const t of args.tools) runners.push(new Runner(t, 'local', args.work, args.data, cli));
  if (s3Tools.length > 0) {
    const t0 = Date.now();
    s3 = await startS3(root, args.s3Dir, args.s3Endpoint || undefined);
    const tls = selfSignedCert(path.join(args.work, 'tls'));
    proxy = await startCountingProxy(s3.endpoint, tls);
    log(`S3 server ${s3.endpoint} (${s3.startedHere ? `started, ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'already running'}), counting proxy ${proxy.url}\n`);
    const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    for (const t of s3Tools) {
      const bucket = `lb-bench-${t}-${stamp}`;
      buckets[t] = bucket;
      runners.push(new Runner(t, 's3', args.work, args.data, cli, { url: proxy.url, certFile: tls.certFile, bucket, env: s3.env }));
    }
  }
  const s3Log = args.s3Log && proxy ? fs.openSync(args.s3Log, 'w') : null;
  if (s3Log !== null) fs.writeSync(s3Log, 'step\ttool\tmethod\tpath\tstatus\tup\tdown\tms\n');
  const results: Results = {};
  for (const r of runners) (results[r.backend] ??= {})[r.tool] = {};

  const stored = async (r: Runner): Promise<{ storedBytes: number; storedObjects?: number }> => {
    if (r.backend === 'local') return { storedBytes: duBytes(r.repo) };
    const u = await bucketUsage(s3!.endpoint, r.s3!.bucket, s3!.env);
    return { storedBytes: u.bytes, storedObjects: u.objects };
  };

  const step = async (name: StepName, fn: (r: Runner) => Promise<Omit<StepResult, 'load1'>>) => {
    for (const r of runners) {
      if (interrupted) throw new Error('interrupted');
      dropCaches();
      const before = r.backend === 's3' ? { traffic: proxy!.snapshot(), server: cpuOf(s3!.pids), self: process.cpuUsage() } : null;
      if (proxy && s3Log !== null && r.backend === 's3') {
        proxy.onRequest = (q) =>
          fs.writeSync(s3Log!, `${name}\t${r.tool}\t${q.method}\t${q.url}\t${q.status}\t${q.upBytes}\t${q.downBytes}\t${q.ms.toFixed(1)}\n`);
      }
      const m = await fn(r);
      const res: StepResult = { ...m, load1: os.loadavg()[0]! };
      if (before) {
        res.traffic = trafficDelta(before.traffic, proxy!.snapshot());
        if (s3!.pids.length > 0) res.serverCpuS = cpuOf(s3!.pids) - before.server;
        const self = process.cpuUsage(before.self);
        res.proxyCpuS = (self.user + self.system) / 1e6;
      }
      results[r.backend]![r.tool]![name] = res;
      log(
        `  ${r.name.padEnd(15)} ${name.padEnd(20)} ${res.wallS.toFixed(2).padStart(7)} s wall ${res.cpuS.toFixed(2).padStart(7)} s CPU ` +
          `${res.rssMiB.toFixed(0).padStart(5)} MiB` +
          (res.storedBytes !== undefined ? `  repo ${(res.storedBytes / MB).toFixed(1)} MB` : '') +
          (res.traffic ? `  up ${(res.traffic.upBytes / MB).toFixed(1)} MB down ${(res.traffic.downBytes / MB).toFixed(1)} MB ${res.traffic.requests} req` : '') +
          (res.serverCpuS !== undefined ? `  server ${res.serverCpuS.toFixed(2)} s CPU` : '') +
          (res.check ? `  ${res.check}` : '') +
          `  load ${res.load1.toFixed(1)}\n`,
      );
    }
  };
  const withStored = async (r: Runner, m: Measure): Promise<Omit<StepResult, 'load1'>> => ({ ...m, ...(await stored(r)) });

  let mutation: ReturnType<typeof mutate> | null = null;
  let day2 = day1;
  try {
    await step('init', async (r) => withStored(r, await r.init()));
    await step('initial backup', async (r) => withStored(r, await r.backup('day1')));
    await step('no-change backup', async (r) => withStored(r, await r.backup('day1-again')));
    mutation = mutate(args.data);
    day2 = treeSize(args.data);
    log(`mutated to day 2: ${JSON.stringify(mutation)}; ${(day2.bytes / MB).toFixed(1)} MB\n`);
    await step('day-2 backup', async (r) => withStored(r, await r.backup('day2')));
    const singleHash = sha(singleSrc);
    const expect = dirBytes(args.data); // includes the dataset's stamp file, which every tool backs up too
    await step('full restore', async (r) => {
      const target = path.join(args.work, `restore-${r.backend}-${r.tool}`);
      const m = await r.restore(target, 'day2');
      const got = dirBytes(target);
      const check = got.files === expect.files && got.bytes === expect.bytes ? 'ok' : `MISMATCH: ${got.files} files, ${got.bytes} bytes`;
      fs.rmSync(target, { recursive: true, force: true });
      return { ...m, check };
    });
    await step('single-file restore', async (r) => {
      const target = path.join(args.work, `restore1-${r.backend}-${r.tool}`);
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
        log(`  ${r.name} check --read-data failed: ${(e as Error).message.split('\n').slice(0, 3).join(' / ')}\n`);
        const wallS = (Date.now() - t0) / 1000;
        return { wallS, userS: NaN, sysS: NaN, cpuS: NaN, rssMiB: NaN, check: 'FAILED' };
      }
    });
  } finally {
    await proxy?.close();
    if (s3Log !== null) fs.closeSync(s3Log);
    if (!args.keep) {
      fs.rmSync(args.work, { recursive: true, force: true });
      if (s3) {
        for (const b of Object.values(buckets)) await deleteBucket(s3.endpoint, b, s3.env).catch((e: unknown) => log(`could not delete bucket ${b}: ${String(e)}\n`));
        await s3.stop().catch((e: unknown) => log(`could not stop the S3 server: ${String(e)}\n`));
      }
    } else {
      log(`kept ${args.work}\n`);
      if (s3) log(`kept buckets ${Object.values(buckets).join(', ')} on ${s3.endpoint}${s3.startedHere ? ` (server still running; stop: SWIFT_S3_DIR=${s3.dir} test/services/s3.sh clean)` : ''}\n`);
    }
  }

  // ---- report
  const tables: Partial<Record<Backend, string>> = {};
  for (const b of args.backends) {
    const cols = b === 's3' ? s3Tools : args.tools;
    if (cols.length > 0) tables[b] = table(b, cols, results[b] ?? {}, day1.bytes, day2.bytes);
  }
  const checks = runners.flatMap((r) =>
    (['full restore', 'single-file restore', 'check --read-data'] as StepName[]).map((s) => `${r.name} ${s}: ${results[r.backend]![r.tool]![s]?.check ?? '–'}`),
  );
  const loadEnd = os.loadavg();
  const header =
    `scale ${args.scale}: day 1 ${day1.files} files, ${(day1.bytes / MB).toFixed(1)} MB; day 2 ${(day2.bytes / MB).toFixed(1)} MB; ` +
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), page cache dropped before each step: ${dropWorks ? 'yes' : 'no'}; ` +
    `lifeboat at ${git.commit.slice(0, 7)}${git.dirty.length ? ' (+ uncommitted changes)' : ''}; ` +
    `loadavg at start ${loadStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}`;
  console.log(header);
  for (const [b, t] of Object.entries(tables)) console.log(`\n${b === 's3' ? `S3 (Swift s3api on loopback, https through the counting proxy)` : 'local directory repositories'}:\n\n${t}`);
  console.log(`\nrestore checks: ${checks.join('; ')}`);

  const out = {
    when: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    scale: args.scale,
    backends: args.backends,
    layout: layout(args.scale),
    dataset: { day1, day2, mutation, single: args.single },
    git,
    /** when dist/cli/main.js was built: uncommitted changes (git.dirty) are in it only if built after they were made */
    cliBuilt: fs.existsSync(cli) ? fs.statSync(cli).mtime.toISOString() : null,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memBytes: os.totalmem(), node: process.version, loadavgStart: loadStart, loadavg: loadEnd },
    dropCaches: dropWorks,
    versions: Object.fromEntries(args.tools.map((t) => [t, toolVersion(t, cli)])),
    s3: s3 ? { endpoint: s3.endpoint, startedHere: s3.startedHere, dir: s3.dir, buckets, kept: args.keep } : null,
    notes: [
      'lifeboat init with default KDF (Argon2id 64 MiB, ≈0.5 s); each command pays one key derivation',
      'restic: repository v2, compression auto; borg: repokey-blake2, lz4',
      's3: OpenStack Swift 2.30 s3api (test/services/s3.sh, plain flavour) on loopback; tools talk https to bench/counting-proxy.ts (self-signed cert), which talks http to Swift',
      's3 traffic: upBytes = request bodies (PUT/POST), downBytes = response bodies (GET objects, listings, error documents); headers and TLS overhead not counted; proxyCpuS = CPU of the benchmark process (the proxy, TLS included) during the step',
      'local diskWriteBytes/diskReadBytes: rusage block I/O of the tool process tree × 512 (repository, cache and restore target together)',
      'results[backend][tool][step]',
    ],
    results,
    tables,
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
