/**
 * Throughput of the whole write path — chunk (FastCDC) → id (HMAC-SHA-256) → zstd → XChaCha20-
 * Poly1305 → pack (~16 MiB, SHA-256 named) → storage — on generated data, one thread (inline)
 * against the worker_threads seal pool. MB = 10^6 bytes.
 *
 *   npm run bench:engine -- [--size MiB] [--datasets random,sql] [--modes inline,pool,pool-wh]
 *                           [--storage null,local] [--workers N] [--level N] [--runs N] [--in-flight N]
 *                           [--max-other-load L] [--prof DIR]
 *   --runs N            quiet runs per configuration, best kept (default 2)
 *   --in-flight N       the pool's maxInFlight (default 12 × workers)
 *   --max-other-load L  a run is quiet when other processes used at most L CPUs meanwhile (0.2)
 *   --prof DIR          node --cpu-prof for one run of each configuration, profiles into DIR
 *
 * Datasets (each ~--size MiB, default 1024, every chunk unique so dedup never kicks in):
 *   random  64 MiB of crypto random bytes, replayed with a running counter XOR-ed into every
 *           64 KiB block (incompressible, zstd stores it raw)
 *   sql     64 MiB of SQL-dump-like INSERT lines (zstd-3 ratio ≈ 5.5), replayed with a running
 *           counter written over the start of every 64 KiB block
 * Both are produced as 8 MiB pieces (like a file read with highWaterMark 8 MiB) into a ring of
 * reused buffers, so generating costs one memcpy per byte (the "source only" row measures it).
 * The ring is safe because storeStream copies or seals every chunk before it asks for the next
 * piece, and the chunker's pending bytes span at most two pieces.
 *
 * Modes:
 *   inline   pool of 0 workers: everything in the calling thread
 *   pool     seal pool (--workers, default os.availableParallelism()), storeStream's default
 *            policy for where ids are computed (hashFirst 'auto')
 *   pool-mh  ids always computed in the main thread first (hashFirst true: the dedup short-cut)
 *   pool-wh  ids always computed in the workers (hashFirst false)
 * Storage: null (puts discarded: CPU only) or local (a directory in the OS temp dir: real
 * writes with fsync, as LocalStorage does).
 *
 * Each run is a child process, so peak RSS (getrusage maxrss) and CPU time (user + system, all
 * threads) belong to that run alone. Prints a table; writes JSON to bench/results/engine-<date>.json.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Repository } from '../src/repo/repository.js';
import { SealPool } from '../src/repo/seal-pool.js';
import { storeStream } from '../src/repo/write-path.js';
import { LocalStorage } from '../src/storage/local.js';
import { StorageError } from '../src/storage/errors.js';
import type { ByteRange, ObjectInfo, PutOptions, Storage } from '../src/storage/types.js';

const MiB = 1024 * 1024;
const PIECE = 8 * MiB;
const BASE = 64 * MiB;
const BLOCK = 64 * 1024;
const RING = 4;

type Dataset = 'random' | 'sql';
type Mode = 'source' | 'inline' | 'pool' | 'pool-mh' | 'pool-wh';
const MODES: readonly Mode[] = ['source', 'inline', 'pool', 'pool-mh', 'pool-wh'];
type StorageKind = 'null' | 'local';

interface RunSpec {
  dataset: Dataset;
  mode: Mode;
  storage: StorageKind;
  sizeMiB: number;
  workers: number;
  level: number;
  /** Pool maxInFlight (chunks); 0 = the pool's default. */
  inFlight: number;
}

interface RunResult extends RunSpec {
  bytes: number;
  seconds: number;
  mbps: number;
  cpuSeconds: number;
  /** Of cpuSeconds, in the kernel (page faults, writes, fsync). */
  sysSeconds: number;
  /** Minor page faults during the run (fresh memory touched: allocation churn). */
  pageFaults: number;
  peakRssMiB: number;
  chunks: number;
  newBytes: number;
  storedBytes: number;
  uploadedBytes: number;
  poolWorkers: number;
  copies: number;
  /** The pool's counters (buffers allocated and reused). */
  poolStats?: Record<string, number>;
  /** CPUs' worth of work by other processes during the run (from /proc/stat): noise indicator. */
  otherLoad: number;
}

/** Busy CPU seconds of the whole machine so far (Linux /proc/stat), or NaN elsewhere. */
async function machineBusySeconds(): Promise<number> {
  try {
    const line = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - idle) / 100; // USER_HZ
  } catch {
    return NaN;
  }
}

// ------------------------------------------------------------------ data

/** Deterministic SQL-dump-like text: INSERTs into a few tables, varied numbers and strings. */
function sqlBase(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  const words = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut ' +
    'labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ' +
    'ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur')
    .split(' ');
  const first = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'oscar',
    'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter'];
  const domains = ['example.org', 'example.com', 'mail.test', 'corp.example', 'shop.example.net'];
  const status = ['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];
  const cities = ['Berlin', 'Paris', 'Lisbon', 'Oslo', 'Riga', 'Porto', 'Turin', 'Lyon', 'Graz', 'Gdansk'];
  let x = 0x9e3779b9;
  const rnd = (n: number): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
  let pos = 0;
  let orderId = 1_000_000;
  let custId = 1;
  while (pos < bytes) {
    let line: string;
    const t = rnd(10);
    const ts = `2026-${pad2(1 + rnd(12))}-${pad2(1 + rnd(28))} ${pad2(rnd(24))}:${pad2(rnd(60))}:${pad2(rnd(60))}.${rnd(1000000)}+00`;
    if (t < 6) {
      orderId += 1 + rnd(3);
      line = `INSERT INTO public.orders (id, customer_id, status, amount, currency, created_at) VALUES (${orderId}, ${1 + rnd(250000)}, '${status[rnd(status.length)]}', ${rnd(100000)}.${pad2(rnd(100))}, '${rnd(4) === 0 ? 'USD' : 'EUR'}', '${ts}');\n`;
    } else if (t < 8) {
      const f = first[rnd(first.length)]!;
      custId += 1;
      line = `INSERT INTO public.customers (id, name, email, city, created_at) VALUES (${custId}, '${f} ${words[rnd(words.length)]}', '${f}.${rnd(100000)}@${domains[rnd(domains.length)]}', '${cities[rnd(cities.length)]}', '${ts}');\n`;
    } else {
      const n = 4 + rnd(12);
      const note: string[] = [];
      for (let i = 0; i < n; i++) note.push(words[rnd(words.length)]!);
      line = `INSERT INTO public.order_notes (order_id, author, note, created_at) VALUES (${orderId - rnd(50)}, ${rnd(500)}, '${note.join(' ')}', '${ts}');\n`;
    }
    pos += out.write(line, pos, 'latin1');
  }
  return out;
}

/** ~totalBytes of `dataset` in 8 MiB pieces, every 64 KiB block made unique by a running counter. */
async function* generate(dataset: Dataset, base: Buffer, totalBytes: number): AsyncGenerator<Buffer> {
  const ring = Array.from({ length: RING }, () => Buffer.allocUnsafe(PIECE));
  let counter = 0;
  let done = 0;
  for (let k = 0; done < totalBytes; k++) {
    const n = Math.min(PIECE, totalBytes - done);
    const out = ring[k % RING]!.subarray(0, n);
    const from = (k * PIECE) % base.length;
    base.copy(out, 0, from, from + n);
    for (let b = 0; b < n; b += BLOCK) {
      counter++;
      if (dataset === 'random') {
        out[b] = (out[b] ?? 0) ^ (counter & 0xff);
        if (b + 4 <= n) out.writeUInt32LE((out.readUInt32LE(b) ^ counter) >>> 0, b);
      } else if (b + 12 <= n) {
        out.write(`${counter}`.padStart(12, '0'), b, 'latin1');
      }
    }
    done += n;
    yield out;
  }
}

// ------------------------------------------------------------------ null storage

/** Keeps small objects (config, keys, index) in memory and throws pack data away. */
class NullStorage implements Storage {
  readonly location = 'null:';
  readonly supportsConditionalPut = true;
  private readonly objects = new Map<string, Buffer>();

  async get(name: string, _range?: ByteRange): Promise<Buffer> {
    const b = this.objects.get(name);
    if (!b) throw new StorageError('not-found', `null: ${name} not found`, false);
    return b;
  }

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    if (opts.ifNoneMatch && this.objects.has(name)) throw new StorageError('already-exists', `null: ${name} exists`, false);
    if (!name.startsWith('data/')) this.objects.set(name, Buffer.from(data));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const [name, b] of this.objects) if (name.startsWith(prefix)) yield { name, size: b.length, mtimeMs: 0 };
  }

  async delete(name: string): Promise<void> {
    this.objects.delete(name);
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const b = this.objects.get(name);
    return b ? { name, size: b.length, mtimeMs: 0 } : null;
  }

  async exists(): Promise<boolean> {
    return true;
  }

  async create(): Promise<void> {}
  async close(): Promise<void> {}
}

// ------------------------------------------------------------------ one run (child process)

async function runOne(spec: RunSpec): Promise<RunResult> {
  const totalBytes = spec.sizeMiB * MiB;
  const base = spec.dataset === 'random' ? randomBytes(BASE) : sqlBase(BASE);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-bench-'));
  const storage: Storage = spec.storage === 'null' ? new NullStorage() : new LocalStorage(path.join(tmp, 'repo'));
  const repo = await Repository.init(storage, 'bench', {
    kdf: { opslimit: 1, memlimit: 8 * MiB, salt: randomBytes(16) },
    cacheDir: path.join(tmp, 'cache'),
  });
  const workers = spec.mode.startsWith('pool') ? spec.workers : 0;
  const pool = await SealPool.create(repo.keys, {
    workers, level: spec.level, ...(spec.inFlight > 0 ? { maxInFlight: spec.inFlight } : {}),
  });
  const result: RunResult = {
    ...spec, bytes: 0, seconds: 0, mbps: 0, cpuSeconds: 0, sysSeconds: 0, pageFaults: 0, peakRssMiB: 0, chunks: 0, newBytes: 0, storedBytes: 0,
    uploadedBytes: 0, poolWorkers: pool.size, copies: 0, otherLoad: 0,
  };
  try {
    const busy0 = await machineBusySeconds();
    const faults0 = process.resourceUsage().minorPageFault;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    if (spec.mode === 'source') {
      for await (const piece of generate(spec.dataset, base, totalBytes)) result.bytes += piece.length;
    } else {
      const r = await storeStream(repo, pool, generate(spec.dataset, base, totalBytes), {
        hashFirst: spec.mode === 'pool-mh' ? true : spec.mode === 'pool-wh' ? false : 'auto',
      });
      await repo.flush();
      result.bytes = r.size;
      result.chunks = r.ids.length;
      result.newBytes = r.newBytes;
      result.storedBytes = r.storedBytes;
      if (r.newBytes !== r.size) console.error(`warning: ${r.size - r.newBytes} bytes deduplicated; the data should be unique`);
    }
    result.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    result.cpuSeconds = (cpu.user + cpu.system) / 1e6;
    result.sysSeconds = cpu.system / 1e6;
    result.pageFaults = process.resourceUsage().minorPageFault - faults0;
    result.otherLoad = Math.max(0, ((await machineBusySeconds()) - busy0 - result.cpuSeconds) / result.seconds);
    result.mbps = result.bytes / result.seconds / 1e6;
    result.uploadedBytes = repo.uploadedBytes;
    result.copies = pool.stats.copied;
    result.poolStats = { ...pool.stats };
  } finally {
    await pool.close();
    await repo.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
  result.peakRssMiB = process.resourceUsage().maxRSS / 1024;
  return result;
}

// ------------------------------------------------------------------ driver

function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1));
    else m.set(a.slice(2), argv[++i] ?? '');
  }
  return m;
}

function list<T extends string>(v: string | undefined, dflt: T[], allowed: readonly T[]): T[] {
  if (v === undefined) return dflt;
  const items = v.split(',').filter(Boolean) as T[];
  for (const it of items) if (!allowed.includes(it)) throw new Error(`unknown value ${it}; allowed: ${allowed.join(', ')}`);
  return items;
}

const run = promisify(execFile);

async function child(spec: RunSpec, profDir: string | undefined): Promise<RunResult> {
  const self = fileURLToPath(import.meta.url);
  // one directory per run: every thread (main and workers) writes its own profile there
  const nodeArgs = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, `${spec.dataset}-${spec.storage}-${spec.mode}`)] : [];
  const { stdout, stderr } = await run(process.execPath, [...nodeArgs, self, '--child', JSON.stringify(spec)], {
    maxBuffer: 16 * MiB,
  });
  if (stderr.trim()) process.stderr.write(stderr);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as RunResult;
}

function fmt(n: number, digits = 0): string {
  return n.toFixed(digits);
}

function table(results: RunResult[]): string {
  const head = ['dataset', 'storage', 'mode', 'threads', 'MB/s', 'wall s', 'CPU s', 'sys s', 'CPU/wall', 'faults/MB',
    'peak RSS MiB', 'ratio', 'other load'];
  const rows = results.map((r) => [
    r.dataset, r.storage, r.mode,
    r.mode === 'source' ? '-' : r.poolWorkers === 0 ? '1 (inline)' : `main + ${r.poolWorkers}`,
    fmt(r.mbps), fmt(r.seconds, 2), fmt(r.cpuSeconds, 2), fmt(r.sysSeconds, 2), fmt(r.cpuSeconds / r.seconds, 2),
    fmt(r.pageFaults / (r.bytes / 1e6), 1), fmt(r.peakRssMiB),
    r.storedBytes > 0 ? fmt(r.newBytes / r.storedBytes, 2) : '-', fmt(r.otherLoad, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i < 4 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const a = args(process.argv.slice(2));
  const childSpec = a.get('child');
  if (childSpec !== undefined) {
    const r = await runOne(JSON.parse(childSpec) as RunSpec);
    console.log(JSON.stringify(r));
    return;
  }
  const sizeMiB = Number(a.get('size') ?? 1024);
  const workers = Number(a.get('workers') ?? os.availableParallelism());
  const level = Number(a.get('level') ?? 3);
  const inFlight = Number(a.get('in-flight') ?? 0);
  const runs = Number(a.get('runs') ?? 2);
  const maxOtherLoad = Number(a.get('max-other-load') ?? 0.2);
  const datasets = list<Dataset>(a.get('datasets'), ['random', 'sql'], ['random', 'sql']);
  const modes = list<Mode>(a.get('modes'), [...MODES], MODES);
  const storages = list<StorageKind>(a.get('storage'), ['null', 'local'], ['null', 'local']);
  const profDir = a.get('prof');
  if (profDir) await fs.mkdir(profDir, { recursive: true });
  if (!(sizeMiB > 0) || !(workers >= 0) || !(runs >= 1)) throw new Error('bad --size, --workers or --runs');

  console.log(`write path: ${sizeMiB} MiB per run, ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? '?'}), ` +
    `node ${process.version}, zstd level ${level}, pool ${workers} workers`);
  const results: RunResult[] = [];
  for (const dataset of datasets) {
    for (const storage of storages) {
      for (const mode of modes) {
        if (mode === 'source' && storage !== storages[0]) continue;
        // the machines are shared: runs during which other processes kept a CPU busy are
        // retried (up to 3 × --runs attempts) and the best quiet run is kept
        let best: RunResult | null = null;
        let quiet = 0;
        for (let i = 0; i < 3 * runs && quiet < runs; i++) {
          const r = await child({ dataset, mode, storage, sizeMiB, workers, level, inFlight }, profDir);
          const isQuiet = !(r.otherLoad > maxOtherLoad);
          if (isQuiet) quiet++;
          const bestQuiet = best !== null && !(best.otherLoad > maxOtherLoad);
          if (best === null || (isQuiet && !bestQuiet) || (isQuiet === bestQuiet && r.mbps > best.mbps)) best = r;
          if (profDir) break;
        }
        results.push(best!);
        const b = best!;
        console.log(`  ${dataset.padEnd(6)} ${storage.padEnd(5)} ${mode.padEnd(8)} ${fmt(b.mbps).padStart(6)} MB/s  ` +
          `cpu ${fmt(b.cpuSeconds, 2)} s  rss ${fmt(b.peakRssMiB)} MiB  other load ${fmt(b.otherLoad, 2)}`);
      }
    }
  }
  console.log();
  console.log(table(results));
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = path.join(root, 'bench', 'results');
  await fs.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `engine-${stamp}.json`);
  await fs.writeFile(file, JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpus: os.availableParallelism(),
    cpu: os.cpus()[0]?.model, sizeMiB, workers, level, runs, results,
  }, null, 2));
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
}

await main();
