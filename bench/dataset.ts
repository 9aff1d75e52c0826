/**
 * Deterministic benchmark dataset (issue 4) and its "next day" mutation.
 *
 *   node dist-bench/bench/dataset.js gen DIR [--scale S]     # day 1 (skipped when DIR already holds it)
 *   node dist-bench/bench/dataset.js mutate DIR              # day 1 → day 2, in place
 *
 * At --scale 1 (≈ 2.0 GB; --scale 0.25 ≈ 0.5 GB, the quick run). Same bytes for the same scale,
 * every time (AES-CTR keystreams and a PRNG, both keyed by fixed labels):
 *   src/     20,000 source-like text files of 1–50 KiB in directories of 100
 *   medium/  48 files of 2–16 MiB, cycling text / log / random / zeros, plus one copy of
 *            medium/m002 with 1,000 bytes inserted at the front (a shifted duplicate)
 *   large/   4 × 200 MiB, alternating 1 MiB blocks of random bytes and log text ("half random")
 *   db/dump.sql  300 MB SQL dump (CREATE TABLE + one INSERT per line)
 * Counts (and the dump's size) scale with --scale; the large files stay 200 MiB each (≥ 1 file).
 *
 * mutate (day 2): about 1 % of the other files changed (text files: a line rewritten in the middle
 * and one appended; binary files: 4 KiB overwritten in place), 2 % of the dump's lines edited and
 * 5 % more lines appended to it. The stamp file records the day so a re-run regenerates.
 */
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const KiB = 1024;
const MiB = 1024 * 1024;

/** Deterministic bytes: AES-128-CTR keystream under a key derived from `label`. */
export function keystream(label: string, n: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(n));
}

/** Small deterministic PRNG (mulberry32) seeded from a label. */
export function prng(label: string): () => number {
  let s = createHash('sha256').update(label).digest().readUInt32LE(0);
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const WORDS = ('GET POST PUT DELETE /api/v1/users /api/v1/orders /static/app.js /healthz 200 201 204 301 404 500 ' +
  'INFO WARN ERROR DEBUG request completed failed retrying upstream timeout cache hit miss session user ' +
  'checkout payment accepted rejected worker queue job started finished latency_ms bytes client').split(' ');

/** Log-like text of exactly `n` bytes, deterministic in `label` (also used by bench/backup.ts). */
export function textBytes(label: string, n: number): Buffer {
  const rnd = keystream(label, Math.ceil(n / 4) + 64);
  let r = 0;
  const next = () => {
    if (r + 4 > rnd.length) r = 0;
    const x = rnd.readUInt32LE(r);
    r += 4;
    return x;
  };
  const out = Buffer.allocUnsafe(n + 256);
  let o = 0;
  let t = 1_700_000_000 + (next() % 1_000_000);
  while (o < n) {
    t += next() % 3;
    const ip = `10.${next() & 255}.${next() & 255}.${next() & 255}`;
    let line = `${new Date(t * 1000).toISOString()} ${WORDS[(next() % 12) + 12]} ${ip} req=${(next() >>> 0).toString(16)}`;
    const words = 4 + (next() % 8);
    for (let w = 0; w < words; w++) line += ' ' + WORDS[next() % WORDS.length];
    line += ` ${next() % 5000}\n`;
    o += out.write(line, o, 'latin1');
  }
  return out.subarray(0, n);
}

const IDENTS = ('user order item account session config value result index count buffer stream handler ' +
  'request response error options state cache entry key node parent child list map set total offset').split(' ');
const TYPES = ['string', 'number', 'boolean', 'Buffer', 'Promise<void>', 'Map<string, number>', 'unknown'];

/** Source-code-like text (TypeScript-ish) of exactly `n` bytes, deterministic in `label`. */
export function sourceBytes(label: string, n: number): Buffer {
  const next = prng(label);
  const id = () => {
    const a = IDENTS[next() % IDENTS.length]!;
    const b = IDENTS[next() % IDENTS.length]!;
    return a + b[0]!.toUpperCase() + b.slice(1);
  };
  const out = Buffer.allocUnsafe(n + 1024);
  let o = 0;
  while (o < n) {
    let fn = `\n/** ${WORDS[next() % WORDS.length]} the ${id()} of a ${id()}. */\n`;
    fn += `export function ${id()}(${id()}: ${TYPES[next() % TYPES.length]}, ${id()}: ${TYPES[next() % TYPES.length]}): ${TYPES[next() % TYPES.length]} {\n`;
    const lines = 2 + (next() % 10);
    for (let l = 0; l < lines; l++) {
      const k = next() % 4;
      if (k === 0) fn += `  const ${id()} = ${id()}.${id()}(${next() % 1000});\n`;
      else if (k === 1) fn += `  if (${id()} > ${next() % 100}) return ${id()};\n`;
      else if (k === 2) fn += `  for (let i = 0; i < ${id()}.length; i++) ${id()} += ${id()}[i];\n`;
      else fn += `  ${id()}.push({ ${id()}: ${id()}, ${id()}: '${WORDS[next() % WORDS.length]}' });\n`;
    }
    fn += '}\n';
    o += out.write(fn, o, 'latin1');
  }
  return out.subarray(0, n);
}

export interface Layout {
  srcFiles: number;
  srcDirs: number;
  mediumFiles: number;
  largeFiles: number;
  dumpBytes: number;
}

export function layout(scale: number): Layout {
  const srcFiles = Math.max(1, Math.round(20_000 * scale));
  return {
    srcFiles,
    srcDirs: Math.max(1, Math.ceil(srcFiles / 100)),
    mediumFiles: Math.max(4, Math.round(48 * scale)),
    largeFiles: Math.max(1, Math.round(4 * scale)),
    dumpBytes: Math.round(300e6 * scale),
  };
}

const MEDIUM_KINDS = ['text', 'log', 'random', 'zeros'] as const;

function mediumName(i: number): string {
  const kind = MEDIUM_KINDS[i % MEDIUM_KINDS.length]!;
  const ext = kind === 'text' ? 'txt' : kind === 'log' ? 'log' : 'bin';
  return `m${String(i).padStart(3, '0')}-${kind}.${ext}`;
}

function writeDump(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  const next = prng('dump');
  try {
    let written = 0;
    const head =
      '-- SQL dump (lifeboat bench)\nSET NAMES utf8mb4;\n\nCREATE TABLE orders (\n  id BIGINT PRIMARY KEY,\n' +
      '  customer VARCHAR(64) NOT NULL,\n  item VARCHAR(64) NOT NULL,\n  qty INT NOT NULL,\n' +
      '  price_cents BIGINT NOT NULL,\n  status VARCHAR(16) NOT NULL,\n  created_at TIMESTAMP NOT NULL\n);\n\n';
    written += fs.writeSync(fd, head);
    let id = 1;
    while (written < bytes) {
      let chunk = '';
      for (let k = 0; k < 2000 && written + chunk.length < bytes; k++) chunk += dumpLine(id++, next);
      written += fs.writeSync(fd, chunk, null, 'latin1');
    }
  } finally {
    fs.closeSync(fd);
  }
}

const STATUS = ['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];

function dumpLine(id: number, next: () => number): string {
  const ts = new Date((1_600_000_000 + id * 7 + (next() % 5)) * 1000).toISOString().slice(0, 19).replace('T', ' ');
  return (
    `INSERT INTO orders VALUES (${id},'${IDENTS[next() % IDENTS.length]}_${next() % 100000}','` +
    `${IDENTS[next() % IDENTS.length]}-${next() % 10000}',${1 + (next() % 9)},${next() % 1000000},'` +
    `${STATUS[next() % STATUS.length]}','${ts}');\n`
  );
}

function stampOf(scale: number, day: number): string {
  return JSON.stringify({ ...layout(scale), day, v: 1 });
}

/** Generates day 1 into `dir` (unless it already holds day 1 of this scale). Returns true if it wrote. */
export function generate(dir: string, scale: number, regen = false, log: (s: string) => void = (s) => process.stderr.write(s)): boolean {
  const stamp = path.join(dir, '.complete');
  const want = stampOf(scale, 1);
  if (!regen && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return false;
  fs.rmSync(dir, { recursive: true, force: true });
  const l = layout(scale);
  log(`generating ${dir} (scale ${scale})…\n`);
  // src/: slices of one source-like pool, each with its own header line so all differ
  const pool = sourceBytes('src-pool', 8 * MiB);
  const next = prng('src-sizes');
  for (let d = 0; d < l.srcDirs; d++) fs.mkdirSync(path.join(dir, 'src', `pkg${String(d).padStart(3, '0')}`), { recursive: true });
  for (let i = 0; i < l.srcFiles; i++) {
    const size = 1 * KiB + (next() % (49 * KiB + 1));
    const header = Buffer.from(`// file ${i} ${createHash('sha256').update(`s${i}`).digest('hex')}\n`);
    const off = next() % (pool.length - size);
    const body = Buffer.concat([header, pool.subarray(off, off + size - header.length)]);
    fs.writeFileSync(path.join(dir, 'src', `pkg${String(i % l.srcDirs).padStart(3, '0')}`, `mod${i}.ts`), body);
  }
  // medium/
  fs.mkdirSync(path.join(dir, 'medium'), { recursive: true });
  const msize = prng('medium-sizes');
  let copySource: Buffer | null = null;
  for (let i = 0; i < l.mediumFiles; i++) {
    const size = 2 * MiB + (msize() % (14 * MiB));
    const kind = MEDIUM_KINDS[i % MEDIUM_KINDS.length]!;
    const label = `medium-${i}`;
    const data =
      kind === 'text' ? sourceBytes(label, size) : kind === 'log' ? textBytes(label, size) : kind === 'random' ? keystream(label, size) : Buffer.alloc(size);
    fs.writeFileSync(path.join(dir, 'medium', mediumName(i)), data);
    if (i === 2) copySource = data;
  }
  fs.writeFileSync(path.join(dir, 'medium', 'copy-of-m002-shifted.bin'), Buffer.concat([keystream('insert', 1000), copySource!]));
  // large/: half random, half log text, in alternating 1 MiB blocks
  fs.mkdirSync(path.join(dir, 'large'), { recursive: true });
  for (let i = 0; i < l.largeFiles; i++) {
    const fd = fs.openSync(path.join(dir, 'large', `disk-${i}.img`), 'w');
    try {
      const rnd = keystream(`large-${i}`, 100 * MiB);
      for (let b = 0; b < 200; b++) {
        const block = b % 2 === 0 ? rnd.subarray((b / 2) * MiB, (b / 2 + 1) * MiB) : textBytes(`large-${i}-${b}`, MiB);
        fs.writeSync(fd, block);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  // db/dump.sql
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
  writeDump(path.join(dir, 'db', 'dump.sql'), l.dumpBytes);
  fs.writeFileSync(stamp, want);
  return true;
}

export function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile() && r !== '.complete') out.push(r);
  }
  return out;
}

export interface MutateStats {
  filesChanged: number;
  dumpLinesEdited: number;
  dumpLinesAppended: number;
}

/** Day 1 → day 2, in place (same inodes: files are rewritten or patched, never replaced). */
export function mutate(dir: string): MutateStats {
  const stamp = path.join(dir, '.complete');
  const st = JSON.parse(fs.readFileSync(stamp, 'utf8')) as { day: number };
  if (st.day !== 1) throw new Error(`${dir} is not a day-1 dataset`);
  const files = listFiles(dir).filter((f) => f !== 'db/dump.sql');
  // ≈ 1 %: the files whose keyed hash is smallest
  const ranked = files
    .map((f) => ({ f, h: createHash('sha256').update(`day2:${f}`).digest().readUInt32LE(0) }))
    .sort((a, b) => a.h - b.h);
  const pick = ranked.slice(0, Math.max(1, Math.round(files.length / 100))).map((x) => x.f);
  const next = prng('day2');
  for (const f of pick) {
    const p = path.join(dir, f);
    const size = fs.statSync(p).size;
    if (/\.(ts|txt|log)$/.test(f) && size < 64 * MiB) {
      const text = fs.readFileSync(p, 'latin1');
      const mid = text.indexOf('\n', Math.floor(text.length / 2));
      const end = mid < 0 ? -1 : text.indexOf('\n', mid + 1);
      const edited =
        mid < 0 || end < 0
          ? text
          : text.slice(0, mid + 1) + `  // day 2: changed ${next().toString(16)}` + text.slice(end);
      fs.writeFileSync(p, edited + `// day 2 appended ${next().toString(16)}\n`, 'latin1');
    } else {
      const fd = fs.openSync(p, 'r+');
      try {
        fs.writeSync(fd, keystream(`day2:${f}`, 4 * KiB), 0, 4 * KiB, Math.floor((next() / 2 ** 32) * Math.max(0, size - 4 * KiB)));
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  // the dump: 2 % of lines edited, 5 % appended
  const dumpPath = path.join(dir, 'db', 'dump.sql');
  const dump = fs.readFileSync(dumpPath);
  const starts: number[] = [0];
  for (let o = dump.indexOf(10); o >= 0 && o + 1 < dump.length; o = dump.indexOf(10, o + 1)) starts.push(o + 1);
  const nLines = starts.length;
  const nEdit = Math.round(nLines * 0.02);
  const editSet = new Set<number>();
  while (editSet.size < nEdit) editSet.add(next() % nLines);
  const edits = [...editSet].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const li of edits) {
    const s = starts[li]!;
    const e = li + 1 < nLines ? starts[li + 1]! : dump.length;
    const line = dump.subarray(s, e).toString('latin1');
    if (!line.startsWith('INSERT')) continue;
    parts.push(dump.subarray(pos, s));
    // change the status and price of the row
    parts.push(Buffer.from(line.replace(/,(\d+),'(\w+)','/, (_m, price: string) => `,${Number(price) + 1 + (next() % 999)},'${STATUS[next() % STATUS.length]}','`), 'latin1'));
    pos = e;
  }
  parts.push(dump.subarray(pos));
  const lastId = Number(/VALUES \((\d+),/.exec(dump.subarray(Math.max(0, dump.length - 300)).toString('latin1'))?.[1] ?? nLines);
  const nAppend = Math.round(nLines * 0.05);
  let tail = '';
  for (let k = 0; k < nAppend; k++) tail += dumpLine(lastId + 1 + k, next);
  parts.push(Buffer.from(tail, 'latin1'));
  fs.writeFileSync(dumpPath, Buffer.concat(parts));
  fs.writeFileSync(stamp, JSON.stringify({ ...JSON.parse(fs.readFileSync(stamp, 'utf8')), day: 2 }));
  return { filesChanged: pick.length, dumpLinesEdited: nEdit, dumpLinesAppended: nAppend };
}

export function treeSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const f of listFiles(dir)) {
    files++;
    bytes += fs.statSync(path.join(dir, f)).size;
  }
  return { files, bytes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [cmd, dir, ...rest] = process.argv.slice(2);
  let scale = 0.25;
  for (let i = 0; i < rest.length; i++) if (rest[i] === '--scale') scale = Number(rest[++i]);
  if (!dir || (cmd !== 'gen' && cmd !== 'mutate')) {
    console.error('usage: dataset.js gen DIR [--scale S] | mutate DIR');
    process.exit(2);
  }
  const t0 = Date.now();
  if (cmd === 'gen') generate(dir, scale, rest.includes('--regen'));
  else console.log(JSON.stringify(mutate(dir)));
  const s = treeSize(dir);
  console.log(`${dir}: ${s.files} files, ${(s.bytes / 1e6).toFixed(1)} MB (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
