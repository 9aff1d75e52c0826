/**
 * The bad-input corpus, part 2 (issue 9): malformed repository objects — truncated, random bytes,
 * a newer version, valid encryption under the wrong id or role — through the built CLI. Each
 * command says what is wrong in one line naming the object, with its documented exit status
 * (1 for a damaged or unsupported repository; a damaged snapshot or index file is skipped with a
 * warning naming it), and never prints a stack trace.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { Repository } from '../../src/repo/repository.js';
import { sealJson } from '../../src/repo/sealed.js';
import { sha256Hex } from '../../src/repo/hash.js';
import { initCliRepo, runCli, type RunResult } from '../helpers/cli.js';
import { tmpDir } from '../helpers/repo.js';

let dir: string;
let base: Record<string, string>;
let encKey: Buffer;
let snapId: string;
let n = 0;

beforeAll(async () => {
  dir = tmpDir('lifeboat-bad-objects-');
  base = await initCliRepo('local', dir, []);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a.txt'), 'hello\n'.repeat(1000));
  fs.writeFileSync(path.join(src, 'b.bin'), crypto.randomBytes(200_000));
  const b = await runCli(['backup', src], base);
  expect(b.code).toBe(0);
  snapId = fs.readdirSync(path.join(base.LIFEBOAT_REPOSITORY!, 'snapshots'))[0]!;
  const repo = await Repository.open(new LocalStorage(base.LIFEBOAT_REPOSITORY!), 'secret', { cacheDir: path.join(dir, 'libcache') });
  encKey = Buffer.from(repo.keys.encryption);
  await repo.close();
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh copy of the repository (and its own empty cache) to damage. */
function copy(): { repo: string; env: Record<string, string> } {
  const repo = path.join(dir, `copy-${n++}`);
  fs.cpSync(base.LIFEBOAT_REPOSITORY!, repo, { recursive: true });
  return { repo, env: { ...base, LIFEBOAT_REPOSITORY: repo, LIFEBOAT_CACHE_DIR: path.join(dir, `cache-${n}`) } };
}

function one(dirPath: string): string {
  return path.join(dirPath, fs.readdirSync(dirPath).filter((f) => /^[0-9a-f]{64}$/.test(f))[0]!);
}

function firstPack(repo: string): string {
  const d = path.join(repo, 'data');
  for (const sub of fs.readdirSync(d)) for (const f of fs.readdirSync(path.join(d, sub))) return path.join(d, sub, f);
  throw new Error('no pack');
}

/** Writes bytes as a content-named object in `sub` (so the name matches and parsing goes further). */
function putNamed(repo: string, sub: string, bytes: Buffer): string {
  const p = path.join(repo, sub, sha256Hex(bytes));
  fs.writeFileSync(p, bytes);
  return p;
}

function expectNoStack(r: RunResult): void {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/TypeError|RangeError|SyntaxError|ReferenceError/);
}

/** Exit 1 and exactly one line on stderr, matching `re`. */
function expectFatal(r: RunResult, re: RegExp): void {
  expectNoStack(r);
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(re);
}

describe('malformed repository objects through the CLI', () => {
  it('config: truncated, random bytes, wrong role, a newer version', async () => {
    const cases: Array<[string, (p: string) => void, RegExp]> = [
      ['truncated', (p) => fs.truncateSync(p, 30), /^lifeboat: integrity error in config: authentication failed/],
      ['empty', (p) => fs.writeFileSync(p, ''), /^lifeboat: integrity error in config: /],
      ['random bytes', (p) => fs.writeFileSync(p, crypto.randomBytes(300)), /^lifeboat: integrity error in config: authentication failed/],
      ['sealed as an index (wrong AD)', (p) => fs.writeFileSync(p, sealJson(encKey, 'index', { version: 1, packs: [] })), /^lifeboat: integrity error in config: authentication failed/],
      ['valid JSON of the wrong shape', (p) => fs.writeFileSync(p, sealJson(encKey, 'config', { version: 1, id: 'x' })), /^lifeboat: integrity error in config: malformed config/],
      ['version 2', (p) => fs.writeFileSync(p, sealJson(encKey, 'config', { version: 2, id: 'a'.repeat(64), created: 'now', chunker: { algorithm: 'fastcdc-gear32-v1', min: 1, avg: 2, max: 3 }, pack_size: 1 })), /^lifeboat: the repository has format version 2, which this lifeboat does not support/],
    ];
    for (const [, damage, re] of cases) {
      const c = copy();
      damage(path.join(c.repo, 'config'));
      expectFatal(await runCli(['snapshots'], c.env), re);
    }
  });

  it('key files: truncated (name mismatch), random JSON, absurd KDF parameters, a newer version', async () => {
    const cases: Array<[(repo: string, key: string) => void, RegExp]> = [
      [(_r, k) => fs.truncateSync(k, 50), /^lifeboat: integrity error in keys\/[0-9a-f]{64}: content does not match its name/],
      [(r, k) => { fs.rmSync(k); putNamed(r, 'keys', crypto.randomBytes(100)); }, /^lifeboat: integrity error in keys\/[0-9a-f]{64}: not valid JSON/],
      [(r, k) => { const j = JSON.parse(fs.readFileSync(k, 'utf8')); j.kdf.memlimit = 2 ** 40; fs.rmSync(k); putNamed(r, 'keys', Buffer.from(JSON.stringify(j))); }, /^lifeboat: integrity error in keys\/[0-9a-f]{64}: malformed key file \(kdf\.memlimit\)/],
      [(r, k) => { const j = JSON.parse(fs.readFileSync(k, 'utf8')); j.kdf.salt = 'AAAA'; fs.rmSync(k); putNamed(r, 'keys', Buffer.from(JSON.stringify(j))); }, /^lifeboat: integrity error in keys\/[0-9a-f]{64}: invalid KDF parameter salt/],
      [(r, k) => { const j = JSON.parse(fs.readFileSync(k, 'utf8')); j.version = 7; fs.rmSync(k); putNamed(r, 'keys', Buffer.from(JSON.stringify(j))); }, /^lifeboat: key file keys\/[0-9a-f]{64} has format version 7, which this lifeboat does not support/],
    ];
    for (const [damage, re] of cases) {
      const c = copy();
      damage(c.repo, one(path.join(c.repo, 'keys')));
      expectFatal(await runCli(['snapshots'], c.env), re);
    }
  });

  it('snapshots: random bytes, a copy under another name, an index sealed in its place, a newer version: skipped with a warning naming it', async () => {
    const cases: Array<[(repo: string) => string, RegExp]> = [
      [(r) => putNamed(r, 'snapshots', crypto.randomBytes(200)), /authentication failed/],
      [(r) => { const p = path.join(r, 'snapshots', 'f'.repeat(64)); fs.copyFileSync(path.join(r, 'snapshots', snapId), p); return p; }, /content does not match its name/],
      [(r) => putNamed(r, 'snapshots', sealJson(encKey, 'index', { version: 1, packs: [] })), /authentication failed/],
      [(r) => putNamed(r, 'snapshots', sealJson(encKey, 'snapshot', { version: 3, time: 't', tree: 'a'.repeat(64), paths: [], hostname: 'h', source: { type: 'files' } })), /format version 3/],
    ];
    for (const [damage, re] of cases) {
      const c = copy();
      const bad = path.basename(damage(c.repo));
      const r = await runCli(['snapshots', '--json'], c.env);
      expectNoStack(r);
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as Array<{ id: string }>).map((s) => s.id)).toEqual([snapId]);
      expect(r.stderr).toMatch(new RegExp(`^warning: skipping snapshots/${bad}: .*${re.source}`, 'm'));
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('index files: truncated or random: skipped with a warning; the restore then names what it misses, exit 1', async () => {
    const c = copy();
    const idx = one(path.join(c.repo, 'index'));
    fs.writeFileSync(idx, fs.readFileSync(idx).subarray(0, 20));
    const r = await runCli(['restore', 'latest', '--target', path.join(dir, `t-${n}`)], c.env);
    expectNoStack(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^warning: skipping index\/[0-9a-f]{64}: integrity error in index\/[0-9a-f]{64}: .*\(run "lifeboat repair index"\)$/m);
    expect(r.stderr).toMatch(/^lifeboat: .*not in the index/m);
  });

  it('packs: truncated, bit-flipped, random: restore and check name the damaged pack, exit 1', async () => {
    const damages: Array<(p: string) => void> = [
      (p) => fs.truncateSync(p, Math.floor(fs.statSync(p).size / 2)),
      (p) => { const b = fs.readFileSync(p); b[10]! ^= 0x40; fs.writeFileSync(p, b); },
      (p) => fs.writeFileSync(p, crypto.randomBytes(fs.statSync(p).size)),
    ];
    for (const damage of damages) {
      const c = copy();
      // damage every pack: whichever holds the tree or the data, restore must notice
      const d = path.join(c.repo, 'data');
      for (const sub of fs.readdirSync(d)) for (const f of fs.readdirSync(path.join(d, sub))) damage(path.join(d, sub, f));
      const target = path.join(dir, `t-${n}`);
      const r = await runCli(['restore', 'latest', '--target', target], c.env);
      expectNoStack(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
      const check = await runCli(['check', '--read-data'], c.env);
      expectNoStack(check);
      expect(check.code).toBe(1);
      expect(check.stderr + check.stdout).toMatch(/data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
      const dump = await runCli(['dump', 'latest', '/'], c.env);
      expectNoStack(dump);
      expect(dump.code).toBe(1);
    }
    expect(firstPack(base.LIFEBOAT_REPOSITORY!)).toBeTruthy();
  });
});
