/**
 * backup → restore through the built CLI, on the local backend and the S3 server: restored trees
 * are compared byte for byte and stat for stat with the source.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { runCli, FAST_KDF } from '../helpers/cli.js';
import { pseudoRandom } from '../helpers/repo.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { listXattrs, getXattr, mknod, mkfifo, setXattr, utimesNs } from '../../src/native/index.js';

const isRoot = process.getuid?.() === 0;
const RAW_NAME = Buffer.from([0x72, 0x61, 0x77, 0xff, 0xfe, 0x2d, 0xe9]);
const T = 1_234_567_890_123_456_789n;

function b(p: string): Buffer {
  return Buffer.from(p);
}

/** A source tree holding every case the restore must reproduce. */
function makeSource(root: string): void {
  const d = (p: string) => fs.mkdirSync(path.join(root, p), { recursive: true });
  const f = (p: string, data: Buffer | string, mode = 0o644) => {
    fs.writeFileSync(path.join(root, p), data);
    fs.chmodSync(path.join(root, p), mode);
  };
  d('docs/deep/er');
  d('empty-dir');
  d('bin');
  f('docs/big.bin', pseudoRandom(2_700_000, 11));
  f('docs/text.txt', 'hello\n'.repeat(1000));
  f('docs/deep/er/leaf', 'leaf');
  f('docs/empty', '');
  f('bin/suid', '#!/bin/sh\n', 0o4755);
  f('bin/private', 'secret', 0o600);
  f('docs/xattr.txt', 'with xattrs');
  fs.writeFileSync(Buffer.concat([b(root + '/docs/'), RAW_NAME]), 'raw name');
  // sparse: 8 MiB with a few bytes in the middle
  const sp = path.join(root, 'docs/sparse.img');
  const fd = fs.openSync(sp, 'w');
  fs.writeSync(fd, Buffer.from('data in the middle'), 0, 18, 3 << 20);
  fs.ftruncateSync(fd, 8 << 20);
  fs.closeSync(fd);
  // hardlinks
  f('docs/hard1', 'linked content');
  fs.linkSync(path.join(root, 'docs/hard1'), path.join(root, 'bin/hard2'));
  // symlinks, a dangling one with a non-UTF-8 target
  fs.symlinkSync('big.bin', path.join(root, 'docs/link'));
  fs.symlinkSync(Buffer.concat([b('../nowhere/'), RAW_NAME]), path.join(root, 'docs/dangling'));
  mkfifo(path.join(root, 'docs/fifo'), 0o640);
  if (isRoot) {
    const nul = fs.statSync('/dev/null');
    mknod(path.join(root, 'docs/null'), nul.mode, nul.rdev);
    fs.lchownSync(path.join(root, 'bin/private'), 1234, 4321);
    fs.lchownSync(path.join(root, 'docs/link'), 1234, 4321);
  }
  // xattrs after chmod; times last, deepest first
  const x = path.join(root, 'docs/xattr.txt');
  setXattr(x, 'user.one', Buffer.from('1'));
  setXattr(x, 'user.binary', Buffer.from([0, 255, 1]));
  let t = T;
  for (const p of ['docs/big.bin', 'docs/text.txt', 'docs/deep/er/leaf', 'docs/link', 'docs/fifo', 'bin/suid', 'docs/deep/er', 'docs/deep', 'empty-dir', 'bin', 'docs']) {
    utimesNs(path.join(root, p), t - 1000n, t);
    t += 1_000_000_001n;
  }
}


interface Info {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  rdev: number;
  ino: bigint;
  blocks: bigint;
  link?: string;
  xattrs?: string;
  sha?: string;
}

function typeOf(st: fs.BigIntStats): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'other';
}

/** Every entry under root (raw names, hex keys), stat for stat. */
function scan(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const visit = (abs: Buffer, rel: string) => {
    const st = fs.lstatSync(abs, { bigint: true });
    const info: Info = {
      type: typeOf(st), mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: st.isDirectory() ? 0n : st.size,
      mtimeNs: st.mtimeNs, rdev: Number(st.rdev), ino: st.ino, blocks: st.blocks,
    };
    if (st.isSymbolicLink()) info.link = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('hex');
    if (st.isFile()) info.sha = fs.readFileSync(abs).toString('base64').length + ':' + hash(fs.readFileSync(abs));
    if (!st.isSymbolicLink()) {
      const names = listXattrs(abs).filter((n) => n.startsWith('user.')).sort();
      info.xattrs = names.map((n) => `${n}=${getXattr(abs, n).toString('hex')}`).join(',');
    }
    out.set(rel, info);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) visit(Buffer.concat([abs, b('/'), name]), `${rel}/${name.toString('hex')}`);
    }
  };
  visit(b(root), '');
  return out;
}

function hash(d: Buffer): string {
  return createHash('sha256').update(d).digest('hex');
}

/** Compares two scans: same entries, same stat fields, same hardlink groups, holes kept. */
function expectSameTree(src: Map<string, Info>, dst: Map<string, Info>): void {
  expect([...dst.keys()].sort()).toEqual([...src.keys()].sort());
  const srcInodes = new Map<bigint, string[]>();
  const dstInodes = new Map<bigint, string[]>();
  for (const [k, s] of src) {
    const d = dst.get(k)!;
    const pick = (i: Info) => ({ type: i.type, mode: i.mode, uid: i.uid, gid: i.gid, size: i.size, mtimeNs: i.type === 'symlink' && !isRoot ? 0n : i.mtimeNs, rdev: i.rdev, link: i.link, xattrs: i.xattrs, sha: i.sha });
    expect({ path: k, ...pick(d) }).toEqual({ path: k, ...pick(s) });
    if (s.type === 'file') {
      srcInodes.set(s.ino, [...(srcInodes.get(s.ino) ?? []), k]);
      dstInodes.set(d.ino, [...(dstInodes.get(d.ino) ?? []), k]);
      // holes kept: the restored file uses no more blocks than the original (plus a little)
      expect(Number(d.blocks)).toBeLessThanOrEqual(Number(s.blocks) + 16);
    }
  }
  const groups = (m: Map<bigint, string[]>) => [...m.values()].map((g) => g.sort().join('|')).sort();
  expect(groups(dstInodes)).toEqual(groups(srcInodes));
}

function parseTar(data: Buffer): Promise<Array<{ name: string; type: string; mode: number; linkname: string | null; body: Buffer; uid: number; mtime: number }>> {
  return new Promise((resolve, reject) => {
    const ex = tar.extract();
    const out: Array<{ name: string; type: string; mode: number; linkname: string | null; body: Buffer; uid: number; mtime: number }> = [];
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({ name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, linkname: h.linkname ?? null, body: Buffer.concat(chunks), uid: h.uid ?? 0, mtime: h.mtime?.getTime() ?? 0 });
        next();
      });
      stream.resume();
    });
    ex.on('finish', () => resolve(out));
    ex.on('error', reject);
    Readable.from([data]).pipe(ex);
  });
}

function runBin(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return import('node:child_process').then(({ spawn }) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('dist/cli/main.js'), ...args], { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
  }));
}

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((bk) => deleteBucket(s3Endpoint(), bk)));
});

describe.each(['local', 's3'] as const)('restore e2e (%s)', (kind) => {
  let dir: string;
  let src: string;
  let env: Record<string, string>;
  let srcScan: Map<string, Info>;

  beforeAll(async () => {
    dir = await makeTempDir();
    src = path.join(dir, 'src');
    fs.mkdirSync(src);
    makeSource(src);
    srcScan = scan(src);
    let repo = path.join(dir, 'repo');
    if (kind === 's3') {
      const bucket = randomBucketName();
      buckets.push(bucket);
      repo = `s3:${s3Endpoint()}/${bucket}`;
    }
    env = { LIFEBOAT_REPOSITORY: repo, LIFEBOAT_PASSWORD: 'pw', LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
    expect((await runCli(['init', ...FAST_KDF], env)).code).toBe(0);
    const bk = await runCli(['backup', src], env);
    expect(bk.stderr).toBe('');
    expect(bk.code).toBe(0);
  });

  it('restores the whole snapshot exactly (and --verify agrees)', async () => {
    const target = path.join(dir, 'full');
    const r = await runCli(['restore', 'latest', '--target', target, '--verify', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { message_type: string; errors: number; files_verified: number };
    expect(summary.message_type).toBe('summary');
    expect(summary.files_verified).toBeGreaterThan(5);
    expectSameTree(srcScan, scan(path.join(target, src)));
  });

  it('dumps a file byte for byte', async () => {
    const r = await runBin(['dump', 'latest', path.join(src, 'docs/big.bin')], env);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(fs.readFileSync(path.join(src, 'docs/big.bin')))).toBe(true);
  });

  if (kind === 'local') {
    it('restores a subtree and a single file', async () => {
      const t1 = path.join(dir, 'sub');
      expect((await runCli(['restore', `latest:${src}/docs`, '--target', t1], env)).code).toBe(0);
      const docs = new Map([...srcScan].filter(([k]) => k.startsWith(`/${b('docs').toString('hex')}`)).map(([k, v]) => [k.slice(`/${b('docs').toString('hex')}`.length), v]));
      // the hardlink partner in bin/ is outside: compare everything else
      const got = scan(t1);
      got.delete('');
      docs.delete('');
      expect([...got.keys()].sort()).toEqual([...docs.keys()].sort());
      for (const [k, v] of docs) expect(got.get(k)!.sha).toBe(v.sha);
      const t2 = path.join(dir, 'one');
      expect((await runCli(['restore', `latest:${src}/docs/text.txt`, '--target', t2], env)).code).toBe(0);
      expect(fs.readdirSync(t2)).toEqual(['text.txt']);
      expect(fs.readFileSync(path.join(t2, 'text.txt'), 'utf8')).toBe('hello\n'.repeat(1000));
      expect(fs.statSync(path.join(t2, 'text.txt'), { bigint: true }).mtimeNs).toBe(fs.statSync(path.join(src, 'docs/text.txt'), { bigint: true }).mtimeNs);
    });

    it('include and exclude', async () => {
      const t = path.join(dir, 'inc');
      expect((await runCli(['restore', 'latest', '--target', t, '--include', '*.txt'], env)).code).toBe(0);
      expect(fs.readdirSync(path.join(t, src))).toEqual(['docs']);
      expect(fs.readdirSync(path.join(t, src, 'docs')).sort()).toEqual(['text.txt', 'xattr.txt']);
      const e = path.join(dir, 'exc');
      expect((await runCli(['restore', 'latest', '--target', e, '--exclude', `${src}/docs`, '--exclude', 'suid'], env)).code).toBe(0);
      expect(fs.readdirSync(path.join(e, src)).sort()).toEqual(['bin', 'empty-dir']);
      expect(fs.readdirSync(path.join(e, src, 'bin')).sort()).toEqual(['hard2', 'private']);
    });

    it('dumps a directory as a tar stream equal to the tree', async () => {
      const r = await runBin(['dump', 'latest', path.join(src, 'docs')], env);
      expect(r.code).toBe(0);
      const entries = await parseTar(r.stdout);
      const byName = new Map(entries.map((e) => [e.name, e]));
      const expected = fs.readdirSync(path.join(src, 'docs'), { recursive: true, encoding: 'utf8' }).filter((n) => !n.includes('\ufffd')).map((n) => `docs/${n}`);
      for (const n of expected) {
        const st = fs.lstatSync(path.join(src, n));
        const e = byName.get(st.isDirectory() ? `${n}/` : n);
        expect(e, n).toBeDefined();
        expect(e!.mode).toBe(st.mode & 0o7777);
        expect(e!.uid).toBe(st.uid);
        expect(Math.floor(e!.mtime / 1000)).toBe(Math.floor(st.mtimeMs / 1000));
        if (st.isFile() && e!.type === 'file') expect(e!.body.equals(fs.readFileSync(path.join(src, n)))).toBe(true);
        if (st.isSymbolicLink()) expect(e!.type).toBe('symlink');
        if (st.isFIFO()) expect(e!.type).toBe('fifo');
      }
      expect(byName.get('docs/link')!.linkname).toBe('big.bin');
      expect(byName.get('docs/fifo')!.type).toBe('fifo');
      expect(entries.length).toBe(expected.length + 2); // + docs/ itself and the raw-named file
    });

    it('lists a snapshot', async () => {
      const r = await runCli(['ls', 'latest', '--json'], env);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message_type: string; path?: string });
      expect(lines[0]!.message_type).toBe('snapshot');
      const paths = lines.slice(1).map((l) => l.path);
      expect(paths).toContain(`${src}/docs/deep/er/leaf`);
      const l = await runCli(['ls', 'latest', `${src}/bin`, '-l'], env);
      expect(l.stdout).toMatch(/-rwsr-xr-x .* \S+\/bin\/suid/);
    });
  }

  it('the TypeScript fallback (LIFEBOAT_NATIVE_BLOB=0, LIFEBOAT_NATIVE_CDC=0) and the native code read each other\'s blobs and cut the same chunks', async () => {
    const js = { ...env, LIFEBOAT_NATIVE_BLOB: '0', LIFEBOAT_NATIVE_CDC: '0' };
    // natively sealed blobs, opened in TypeScript
    const t1 = path.join(dir, 'js-restore');
    const r = await runCli(['restore', 'latest', '--target', t1], js);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectSameTree(srcScan, scan(path.join(t1, src)));
    // the TypeScript chunker cuts the same chunks: rereading everything adds no data blob
    const again = await runCli(['backup', src, '--force', '--json'], js);
    expect(again.code).toBe(0);
    const summary = JSON.parse(again.stdout.trim().split('\n').pop()!) as { data_blobs: number; files_unmodified: number; files_changed: number };
    expect(summary.data_blobs).toBe(0);
    // blobs sealed in TypeScript, opened natively
    const extra = path.join(dir, 'js-made');
    fs.mkdirSync(extra);
    fs.writeFileSync(path.join(extra, 'text.txt'), 'sealed by the fallback\n'.repeat(20_000));
    fs.writeFileSync(path.join(extra, 'random.bin'), pseudoRandom(3 * 1024 * 1024 + 17, 99));
    const made = await runCli(['backup', extra, '--json'], js);
    expect(made.code).toBe(0);
    const t2 = path.join(dir, 'native-restore');
    const back = await runCli(['restore', 'latest', '--path', extra, '--target', t2, '--verify'], env);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expectSameTree(scan(extra), scan(path.join(t2, extra)));
    const check = await runCli(['check', '--read-data'], env);
    expect(check.code).toBe(0);
  });
});
