/**
 * End-to-end backup timing on a generated mixed dataset: the CLI (`node dist/cli/main.js`)
 * inits a fresh local repository and backs the data up under `/usr/bin/time -v`, once per set.
 *
 *   npm run bench:backup -- [--scale S] [--sets small,big,mixed] [--runs N] [--data DIR] [--keep]
 *                           [--prof DIR] [--node-args "..."] [--regen]
 *
 * Dataset at scale 1 (≈ 506 MB, deterministic: the same bytes for the same scale every time):
 *   big/    8 files × 25 MiB of AES-CTR keystream (incompressible)
 *   logs/   40 files × 5 MiB of log-like text lines (zstd-3 ratio ≈ 4)
 *   small/  10,000 files of 1–20 KiB (text-like, each unique) in 100 directories
 * --scale multiplies the file counts (small: files per directory stays 100).
 *
 * Sets: small (small/), big (big/ + logs/), mixed (all three). Before each run the set is read
 * once (warm page cache), the repository is new (so every blob is new) and the cache dir is
 * fresh. Prints wall time, CPU (user + system, all threads), CPU/wall, MB/s (10^6 bytes of
 * file data per wall second), files/s and peak RSS; the best (lowest wall) of --runs is kept.
 * --prof DIR adds `--cpu-prof --cpu-prof-dir DIR` to the backup's node (one profile per run).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { keystream, textBytes, treeSize } from './dataset.js';
import { parseTime, type Measure } from './measure.js';

const KiB = 1024;
const MiB = 1024 * 1024;

interface Args {
  scale: number;
  sets: string[];
  runs: number;
  data: string;
  keep: boolean;
  prof: string | null;
  nodeArgs: string[];
  regen: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { scale: 1, sets: ['small', 'big', 'mixed'], runs: 1, data: '', keep: false, prof: null, nodeArgs: [], regen: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--scale') a.scale = Number(v());
    else if (k === '--sets') a.sets = v().split(',').filter(Boolean);
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--data') a.data = v();
    else if (k === '--keep') a.keep = true;
    else if (k === '--prof') a.prof = path.resolve(v());
    else if (k === '--node-args') a.nodeArgs = v().split(' ').filter(Boolean);
    else if (k === '--regen') a.regen = true;
    else throw new Error(`unknown option ${k}`);
  }
  if (!(a.scale > 0)) throw new Error('--scale must be > 0');
  if (!a.data) a.data = path.join(os.tmpdir(), `lifeboat-bench-data-${a.scale}`);
  return a;
}

interface Layout {
  bigFiles: number;
  logFiles: number;
  smallFiles: number;
  smallDirs: number;
}

function layout(scale: number): Layout {
  const smallFiles = Math.max(1, Math.round(10_000 * scale));
  return {
    bigFiles: Math.max(1, Math.round(8 * scale)),
    logFiles: Math.max(1, Math.round(40 * scale)),
    smallFiles,
    smallDirs: Math.max(1, Math.ceil(smallFiles / 100)),
  };
}

function generate(dir: string, scale: number, regen: boolean): void {
  const stamp = path.join(dir, '.complete');
  const want = JSON.stringify(layout(scale));
  if (!regen && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return;
  fs.rmSync(dir, { recursive: true, force: true });
  const l = layout(scale);
  process.stderr.write(`generating ${dir} (${want})…\n`);
  fs.mkdirSync(path.join(dir, 'big'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  for (let i = 0; i < l.bigFiles; i++) fs.writeFileSync(path.join(dir, 'big', `blob-${i}.bin`), keystream(`big-${i}`, 25 * MiB));
  for (let i = 0; i < l.logFiles; i++) fs.writeFileSync(path.join(dir, 'logs', `app-${i}.log`), textBytes(`log-${i}`, 5 * MiB));
  const sizes = keystream('small-sizes', l.smallFiles * 4);
  // one text pool; each small file is a slice of it with its own header line, so all differ
  const pool = textBytes('small-pool', 4 * MiB);
  for (let d = 0; d < l.smallDirs; d++) fs.mkdirSync(path.join(dir, 'small', `d${String(d).padStart(3, '0')}`), { recursive: true });
  for (let i = 0; i < l.smallFiles; i++) {
    const size = 1 * KiB + (sizes.readUInt32LE(i * 4) % (19 * KiB + 1));
    const header = Buffer.from(`# file ${i} ${createHash('sha256').update(`s${i}`).digest('hex')}\n`);
    const off = (sizes.readUInt32LE(i * 4) >>> 3) % (pool.length - size);
    const body = Buffer.concat([header, pool.subarray(off, off + size - header.length)]);
    fs.writeFileSync(path.join(dir, 'small', `d${String(i % l.smallDirs).padStart(3, '0')}`, `f${i}.txt`), body);
  }
  fs.writeFileSync(stamp, want);
}

function warm(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isFile()) {
    fs.readFileSync(p);
    return;
  }
  if (st.isDirectory()) for (const n of fs.readdirSync(p)) warm(path.join(p, n));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const here = path.dirname(fileURLToPath(import.meta.url));
  let root = here;
  while (!fs.existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} missing: npm run build first`);
  generate(args.data, args.scale, args.regen);
  const setPaths: Record<string, string[]> = {
    small: ['small'],
    big: ['big', 'logs'],
    mixed: ['big', 'logs', 'small'],
  };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-backup-'));
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const set of args.sets) {
      const rel = setPaths[set];
      if (!rel) throw new Error(`unknown set ${set}`);
      const paths = rel.map((r) => path.join(args.data, r));
      let files = 0;
      let bytes = 0;
      for (const p of paths) {
        const s = treeSize(p);
        files += s.files;
        bytes += s.bytes;
      }
      let best: Measure | null = null;
      for (let r = 0; r < args.runs; r++) {
        const repo = path.join(work, `repo-${set}-${r}`);
        const env = {
          ...process.env,
          LIFEBOAT_REPOSITORY: repo,
          LIFEBOAT_PASSWORD: 'bench',
          LIFEBOAT_CACHE_DIR: path.join(work, `cache-${set}-${r}`),
        };
        await run(process.execPath, [cli, 'init', '--kdf-memory', '8', '--kdf-iterations', '1'], env);
        for (const p of paths) warm(p);
        const nodeArgs = [...args.nodeArgs];
        if (args.prof) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', args.prof);
        const { stderr } = await run('/usr/bin/time', ['-v', process.execPath, ...nodeArgs, cli, '--quiet', 'backup', ...paths], env);
        const res = parseTime(stderr);
        process.stderr.write(`  ${set} run ${r + 1}: ${res.wallS.toFixed(2)} s wall, ${(res.userS + res.sysS).toFixed(2)} s CPU, ${res.rssMiB.toFixed(0)} MiB\n`);
        if (!best || res.wallS < best.wallS) best = res;
        if (!args.keep) fs.rmSync(repo, { recursive: true, force: true });
      }
      const b = best!;
      const cpu = b.userS + b.sysS;
      rows.push({
        set,
        files,
        MB: (bytes / 1e6).toFixed(1),
        'wall s': b.wallS.toFixed(2),
        'CPU s': cpu.toFixed(2),
        'CPU/wall': (cpu / b.wallS).toFixed(2),
        'MB/s': (bytes / 1e6 / b.wallS).toFixed(1),
        'files/s': Math.round(files / b.wallS),
        'RSS MiB': b.rssMiB.toFixed(0),
      });
    }
  } finally {
    if (!args.keep) fs.rmSync(work, { recursive: true, force: true });
    else process.stderr.write(`kept ${work}\n`);
  }
  console.log(`scale ${args.scale}, ${os.cpus().length} CPUs, node ${process.version}, loadavg before end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.table(rows);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
