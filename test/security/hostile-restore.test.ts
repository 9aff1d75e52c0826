/**
 * Hostile snapshots (issue 9): repositories crafted through the library to hold names and links
 * that try to make restore/dump write outside the target. Every command runs through the built
 * CLI; the directory around the target (with a canary file and an "outside" directory that
 * symlinks point at) is scanned before and after and must not change.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { Repository } from '../../src/repo/repository.js';
import { sealBlob } from '../../src/repo/blob.js';
import { encodeTree, type TreeNode } from '../../src/engine/tree.js';
import { toHex } from '../../src/util/hex.js';
import { CLI, initCliRepo, runCli, spawnCli, type RunResult } from '../helpers/cli.js';
import { tmpDir } from '../helpers/repo.js';
import { dirNode, fileNode, node, saveTree } from '../engine/restore-fixtures.js';

let dir: string;
let env: Record<string, string>;
let repo: Repository;

beforeAll(async () => {
  dir = tmpDir('lifeboat-hostile-');
  env = await initCliRepo('local', dir, []);
  repo = await Repository.open(new LocalStorage(env.LIFEBOAT_REPOSITORY!), 'secret', { cacheDir: path.join(dir, 'libcache') });
});

afterAll(async () => {
  await repo?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A snapshot whose root tree is `rootTreeId` (already saved). */
async function snapshotOf(rootTreeId: string, paths: string[] = ['/']): Promise<string> {
  await repo.flush();
  return repo.saveSnapshot({ version: 1, time: new Date().toISOString(), tree: rootTreeId, paths, hostname: 'hostile', tags: [], source: { type: 'files' } });
}

async function snapshot(nodes: TreeNode[], paths?: string[]): Promise<string> {
  return snapshotOf(await saveTree(repo, nodes), paths);
}

/** A tree blob holding exactly these nodes, in this order — duplicates allowed (encodeTree refuses them). */
async function rawTree(nodes: TreeNode[]): Promise<string> {
  const encoded = nodes.map((n) => (JSON.parse(encodeTree({ nodes: [n] }).toString()) as { nodes: unknown[] }).nodes[0]);
  return toHex((await repo.saveBlob('tree', Buffer.from(JSON.stringify({ nodes: encoded })))).id);
}

interface Work {
  work: string;
  target: string;
  outside: string;
  canary: string;
  before: Map<string, string>;
}

/** A directory holding the target (not created), a canary file and an "outside" directory. */
function workDir(): Work {
  const work = tmpDir('lifeboat-hostile-work-');
  const outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'keep me');
  const canary = path.join(work, 'canary');
  fs.writeFileSync(canary, 'canary');
  return { work, target: path.join(work, 't'), outside, canary, before: scan(work, path.join(work, 't')) };
}

/** Every path under `root` except `skip`, with its type, mode, size, link target and content hash. */
function scan(root: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      if (p === skip) continue;
      const st = fs.lstatSync(p);
      let v = `${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`;
      if (st.isSymbolicLink()) v += ` -> ${fs.readlinkSync(p)}`;
      if (st.isFile()) v += ` ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
      out.set(path.relative(root, p), v);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

function expectNothingOutside(w: Work): void {
  expect(scan(w.work, w.target)).toEqual(w.before);
  expect(fs.readFileSync(w.canary, 'utf8')).toBe('canary');
  expect(fs.readdirSync(w.outside)).toEqual(['victim']);
}

/** Every path under the target, relative, sorted. */
function listTarget(target: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      out.push(path.relative(target, p));
      if (fs.lstatSync(p).isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(target)) walk(target);
  return out.sort();
}

function expectOneLineErrors(r: RunResult): void {
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
  expect(r.stderr).not.toMatch(/TypeError|RangeError|ReferenceError/);
}

const restore = (snap: string, target: string, ...extra: string[]) => runCli(['restore', snap, '--target', target, ...extra], env);

/** Names of the entries of a tar stream. */
async function tarEntries(data: Buffer): Promise<Array<{ name: string; type: string; linkname?: string | null }>> {
  const out: Array<{ name: string; type: string; linkname?: string | null }> = [];
  const ex = tar.extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, stream, next) => {
      out.push({ name: h.name, type: h.type ?? 'file', linkname: h.linkname });
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', res);
    ex.on('error', rej);
  });
  ex.end(data);
  await done;
  return out;
}

/** Runs the CLI and returns stdout as bytes (for tar). */
function runCliBytes(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(chunks), stderr }));
  });
}

describe('hostile names', () => {
  let snap: string;
  beforeAll(async () => {
    const inner = [
      await fileNode(repo, '..', Buffer.from('dotdot file')),
      await fileNode(repo, '.', Buffer.from('dot file')),
      await dirNode(repo, '..', [await fileNode(repo, 'pwned', Buffer.from('through a ".." directory'))]),
      await fileNode(repo, 'x/../../../outside/pwned', Buffer.from('slash inside a name')),
      await fileNode(repo, '../outside/pwned2', Buffer.from('slash inside a name')),
      await fileNode(repo, Buffer.from('a\0b'), Buffer.from('nul inside a name')),
      await fileNode(repo, Buffer.from([0x2e, 0x2e, 0x2f, 0xff]), Buffer.from('not utf-8, slash')),
      await fileNode(repo, 'ok', Buffer.from('fine')),
    ];
    // ".." in a directory and at the root; the names must not become path components anywhere
    snap = await rawTree([await fileNode(repo, '..', Buffer.from('root dotdot')), node('d', 'dir', { subtree: await rawTree(inner) })]).then((t) => snapshotOf(t));
  });

  it('restore refuses ".", "..", "/" and NUL in names, restores the rest, names each refusal and exits 1', async () => {
    const w = workDir();
    const r = await restore(snap, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    for (const line of [
      'refusing /..: the name ".."',
      'refusing /d/..: the name ".."',
      'refusing /d/.: the name "."',
      'refusing /d/x/../../../outside/pwned: a name containing "/"',
      'refusing /d/../outside/pwned2: a name containing "/"',
      'refusing /d/a\\x00b: a name containing a NUL byte',
      'refusing /d/../\\xff: a name containing "/"',
    ]) expect(r.stderr).toContain(line);
    expect(r.stderr.match(/refusing \/d\/\.\.: the name "\.\."/g)).toHaveLength(2);
    expect(r.stderr).toContain('lifeboat: there were 0 errors and 8 refused entries');
    expect(listTarget(w.target)).toEqual(['d', 'd/ok']);
    expect(fs.readFileSync(path.join(w.target, 'd/ok'), 'utf8')).toBe('fine');
    expectNothingOutside(w);
  });

  it('a subpath through ".." is refused before anything is written', async () => {
    const w = workDir();
    const r = await restore(`${snap}:/d/..`, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/".." is not allowed/);
    expect(listTarget(w.target)).toEqual([]);
    expectNothingOutside(w);
  });

  it('dump --archive tar leaves the entries out, names them and exits 1; ls and find warn', async () => {
    const d = await runCliBytes(['dump', '--archive', 'tar', snap, '/']);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('skipping d/..: the name ".."');
    expect(d.stderr).toContain('lifeboat: 8 entries were left out of the archive (unsafe names)');
    const names = (await tarEntries(d.stdout)).map((e) => e.name);
    expect(names.sort()).toEqual(['d/', 'd/ok']);
    for (const n of names) {
      expect(n.startsWith('/')).toBe(false);
      expect(n.split('/')).not.toContain('..');
    }
    const ls = await runCli(['ls', snap], env);
    expectOneLineErrors(ls);
    expect(ls.code).toBe(0);
    expect(ls.stdout.trim().split('\n').filter((l) => l.startsWith('/'))).toEqual(['/d', '/d/ok']);
    expect(ls.stderr).toContain('warning: not listing /d/..: the name ".."');
    const find = await runCli(['find', '*'], env);
    expectOneLineErrors(find);
    expect(find.stdout).not.toContain('pwned');
    expect(find.stderr).toContain(`not searching /d/x/../../../outside/pwned: a name containing "/"`);
  });

  it('an empty name makes the whole tree malformed: one integrity error line, nothing restored', async () => {
    const s = await snapshot([await dirNode(repo, 'd', [await fileNode(repo, '', Buffer.from('no name')), await fileNode(repo, 'f', Buffer.from('f'))])]);
    const w = workDir();
    const r = await restore(s, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lifeboat: integrity error in tree [0-9a-f]{64}: malformed tree: a node without a name\n$/m);
    expect(listTarget(w.target)).toEqual([]);
    expectNothingOutside(w);
  });
});

describe('symlinks', () => {
  it('links pointing outside are restored verbatim and never followed; a symlink and a directory of the same name are both refused', async () => {
    const w = workDir();
    const dupTree = await rawTree([
      node('d', 'symlink', { target: Buffer.from(w.outside) }),
      await dirNode(repo, 'd', [await fileNode(repo, 'f', Buffer.from('through the link'))]),
      await fileNode(repo, 'z', Buffer.from('z')),
    ]);
    const s = await snapshot([
      node('abs', 'symlink', { target: Buffer.from(w.outside) }),
      node('rel', 'symlink', { target: Buffer.from('../outside') }),
      node('deep', 'symlink', { target: Buffer.from('../../../../../../../../etc/passwd') }),
      node('victim-link', 'symlink', { target: Buffer.from(path.join(w.outside, 'victim')) }),
      node('sub', 'dir', { subtree: dupTree }),
    ]);
    const r = await restore(s, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    expect(r.stderr.match(/refusing \/sub\/d: a name that appears more than once in its directory/g)).toHaveLength(2);
    expect(listTarget(w.target)).toEqual(['abs', 'deep', 'rel', 'sub', 'sub/z', 'victim-link']);
    expect(fs.readlinkSync(path.join(w.target, 'abs'))).toBe(w.outside);
    expect(fs.readlinkSync(path.join(w.target, 'rel'))).toBe('../outside');
    expectNothingOutside(w);
    // a subpath naming the ambiguous entry is refused too
    const sub = await restore(`${s}:/sub/d`, path.join(w.target, 'x'));
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain('appears 2 times in its directory');
    expectNothingOutside(w);
  });

  it('symlink targets holding NUL or nothing are errors naming the link, not crashes', async () => {
    const s = await snapshot([
      node('nul', 'symlink', { target: Buffer.from('../outside\0/x') }),
      node('empty', 'symlink', { target: Buffer.alloc(0) }),
      await fileNode(repo, 'ok', Buffer.from('ok')),
    ]);
    const w = workDir();
    const r = await restore(s, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: \/nul: /m);
    expect(r.stderr).toMatch(/^error: \/empty: /m);
    expect(listTarget(w.target)).toEqual(['ok']);
    expectNothingOutside(w);
  });

  it('a later restore into the same target replaces restored symlinks, never writes through them', async () => {
    const w = workDir();
    const first = await snapshot([
      node('d', 'symlink', { target: Buffer.from(w.outside) }),
      node('file', 'symlink', { target: Buffer.from(path.join(w.outside, 'victim')) }),
      node('e', 'symlink', { target: Buffer.from('../outside') }),
    ]);
    const second = await snapshot([
      await dirNode(repo, 'd', [await fileNode(repo, 'victim', Buffer.from('overwritten?')), await dirNode(repo, 'deeper', [await fileNode(repo, 'g', Buffer.from('g'))])]),
      await fileNode(repo, 'file', Buffer.from('new content')),
      await dirNode(repo, 'e', [node('link', 'symlink', { target: Buffer.from('/') })]),
    ]);
    expect((await restore(first, w.target)).code).toBe(0);
    expect(fs.lstatSync(path.join(w.target, 'd')).isSymbolicLink()).toBe(true);
    // --overwrite never: the directory cannot replace the link, and nothing goes through it
    const never = await restore(second, w.target, '--overwrite', 'never');
    expectOneLineErrors(never);
    expect(never.code).toBe(1);
    expect(never.stderr).toContain('error: /d: exists and is not a directory (--overwrite never)');
    expectNothingOutside(w);
    for (const policy of ['if-newer', 'if-changed', 'always']) {
      const r = await restore(second, w.target, '--overwrite', policy);
      expectOneLineErrors(r);
      expect(r.code).toBe(0);
      expectNothingOutside(w);
    }
    expect(fs.lstatSync(path.join(w.target, 'd')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(w.target, 'd/victim'), 'utf8')).toBe('overwritten?');
    expect(fs.readFileSync(path.join(w.target, 'd/deeper/g'), 'utf8')).toBe('g');
    expect(fs.lstatSync(path.join(w.target, 'file')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(w.target, 'file'), 'utf8')).toBe('new content');
    expect(fs.readlinkSync(path.join(w.target, 'e/link'))).toBe('/');
  });

  it('dump --archive tar keeps links verbatim and leaves duplicate names out', async () => {
    const dupTree = await rawTree([
      node('d', 'symlink', { target: Buffer.from('/etc') }),
      await dirNode(repo, 'd', [await fileNode(repo, 'passwd', Buffer.from('root::0:0::/:/bin/sh\n'))]),
    ]);
    const s = await snapshot([node('abs', 'symlink', { target: Buffer.from('/etc') }), node('sub', 'dir', { subtree: dupTree })]);
    const d = await runCliBytes(['dump', s, '/']);
    expect(d.code).toBe(1);
    const entries = await tarEntries(d.stdout);
    expect(entries.map((e) => e.name).sort()).toEqual(['abs', 'sub/']);
    expect(entries.find((e) => e.name === 'abs')).toMatchObject({ type: 'symlink', linkname: '/etc' });
    expect(d.stderr.match(/skipping sub\/d: a name that appears more than once/g)).toHaveLength(2);
  });
});

describe('hardlinks and devices', () => {
  it('a hardlink group whose first member lies outside the restored subpath, or is refused, is restored as a file', async () => {
    const content = Buffer.from('linked content');
    const hl = (name: string) => fileNode(repo, name, content, { links: 3, inode: 4242, device: 77 });
    const s = await snapshotOf(await rawTree([
      await dirNode(repo, 'a', [await hl('x')]),
      await dirNode(repo, 'b', [await hl('y'), await hl('z')]),
      await dirNode(repo, 'c', [await hl('..'), await hl('w')]),
    ]));
    const w = workDir();
    const r = await restore(`${s}:/b`, w.target);
    expect(r.code).toBe(0);
    expect(listTarget(w.target)).toEqual(['y', 'z']);
    expect(fs.readFileSync(path.join(w.target, 'y'), 'utf8')).toBe('linked content');
    expect(fs.statSync(path.join(w.target, 'y')).ino).toBe(fs.statSync(path.join(w.target, 'z')).ino);
    expectNothingOutside(w);
    const w2 = workDir();
    const c = await restore(`${s}:/c`, w2.target);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('refusing /c/..: the name ".."');
    expect(listTarget(w2.target)).toEqual(['w']);
    expect(fs.readFileSync(path.join(w2.target, 'w'), 'utf8')).toBe('linked content');
    expect(fs.statSync(path.join(w2.target, 'w')).nlink).toBe(1);
    expectNothingOutside(w2);
  });

  it('device nodes: created inside the target as root, refused (named, exit 1) otherwise', async () => {
    const rdev = fs.statSync('/dev/null').rdev;
    const s = await snapshot([
      await dirNode(repo, 'dev', [node('null', 'chardev', { rdev }), node('sda', 'blockdev', { rdev: 8 * 256 }), await fileNode(repo, 'readme', Buffer.from('r'))]),
    ]);
    if (process.getuid?.() === 0) {
      const w = workDir();
      const r = await restore(s, w.target);
      expectOneLineErrors(r);
      // a container may forbid mknod even to root: then each is an error naming the path
      if (r.code === 0) expect(fs.lstatSync(path.join(w.target, 'dev/null')).isCharacterDevice()).toBe(true);
      else expect(r.stderr).toMatch(/error: \/dev\/(null|sda): E/);
      expectNothingOutside(w);
      // as an unprivileged user (nobody): refused with the reason
      const w2 = workDir();
      fs.chmodSync(w2.work, 0o777);
      fs.chmodSync(dir, 0o755);
      const cache = path.join(w2.work, 'cache');
      fs.mkdirSync(cache);
      fs.chownSync(cache, 65534, 65534);
      spawnSyncChmod(env.LIFEBOAT_REPOSITORY!);
      fs.chmodSync(env.LIFEBOAT_PASSWORD_FILE!, 0o644);
      w2.before = scan(w2.work, w2.target);
      const n = await runAs(65534, ['--no-lock', 'restore', s, '--target', w2.target], { ...env, LIFEBOAT_CACHE_DIR: cache });
      expectOneLineErrors(n);
      expect(n.code).toBe(1);
      expect(n.stderr).toContain('refusing /dev/null: a device node (restored only as root)');
      expect(n.stderr).toContain('refusing /dev/sda: a device node (restored only as root)');
      expect(n.stderr).toContain('there were 0 errors and 2 refused entries');
      expect(listTarget(w2.target)).toEqual(['dev', 'dev/readme']);
      w2.before.set('cache', scan(w2.work, w2.target).get('cache')!);
      const after = scan(w2.work, w2.target);
      for (const k of [...after.keys()]) if (k.startsWith('cache/')) after.delete(k);
      expect(after).toEqual(w2.before);
    }
  });
});

function spawnSyncChmod(p: string): void {
  const walk = (d: string) => {
    fs.chmodSync(d, fs.lstatSync(d).isDirectory() ? 0o755 : 0o644);
    if (fs.lstatSync(d).isDirectory()) for (const n of fs.readdirSync(d)) walk(path.join(d, n));
  };
  walk(p);
}

function runAs(uid: number, args: string[], e: Record<string, string>): Promise<RunResult> {
  return spawnCli(args, { env: { ...process.env, ...e, HOME: '/tmp' }, uid, gid: uid });
}

describe('cycles, depth and snapshot paths', () => {
  it('a tree naming itself (a forged id) is an integrity error, not a loop', async () => {
    const forged = crypto.randomBytes(32);
    const data = encodeTree({ nodes: [node('loop', 'dir', { subtree: toHex(forged) })] });
    await repo.addSealedBlob(sealBlob(repo.keys, 'tree', data, forged));
    const s = await snapshot([node('top', 'dir', { subtree: toHex(forged) })]);
    const w = workDir();
    for (const args of [['restore', s, '--target', w.target], ['ls', s], ['dump', s, '/top'], ['find', '-s', s, 'x']]) {
      const r = await runCli(args, env);
      expectOneLineErrors(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`lifeboat: integrity error in blob ${toHex(forged)} in data/.*: content does not match its id\\n$`));
    }
    expect(listTarget(w.target)).toEqual([]);
    expectNothingOutside(w);
  });

  it('absurd depth: nesting beyond 2048 directories is refused with one line', async () => {
    let tree = await saveTree(repo, [await fileNode(repo, 'bottom', Buffer.from('deep'))]);
    for (let i = 0; i < 2100; i++) tree = await saveTree(repo, [node('a', 'dir', { subtree: tree })]);
    const s = await snapshotOf(tree);
    const w = workDir();
    const started = Date.now();
    const r = await restore(s, w.target);
    expectOneLineErrors(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing (\/a){2049}: nesting deeper than 2048 directories\n/);
    expect(Date.now() - started).toBeLessThan(60_000);
    expectNothingOutside(w);
    const ls = await runCli(['ls', s], env);
    expect(ls.code).toBe(0);
    expect(ls.stdout.trim().split('\n').filter((l) => l.startsWith('/'))).toHaveLength(2048);
    expect(ls.stderr).toMatch(/not listing (\/a){2049}: nesting deeper than 2048 directories/);
  }, 120_000);

  it('".." in the snapshot\'s paths changes nothing: restore uses the tree only', async () => {
    const s = await snapshot([await dirNode(repo, 'etc', [await fileNode(repo, 'hosts', Buffer.from('127.0.0.1 localhost\n'))])], ['/../../outside', '../x', '/etc/../..']);
    const w = workDir();
    const r = await restore(s, w.target);
    expect(r.code).toBe(0);
    expect(listTarget(w.target)).toEqual(['etc', 'etc/hosts']);
    expectNothingOutside(w);
    const snaps = await runCli(['snapshots', '--json'], env);
    expect(snaps.code).toBe(0);
    expect(snaps.stdout).toContain('/../../outside');
  });
});
