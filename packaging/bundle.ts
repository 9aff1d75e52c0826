/**
 * The application bundled with esbuild into LIB/dist/, keeping the layout the code resolves at run
 * time relative to import.meta.url:
 *   dist/cli/main.js         the CLI (../../package.json for the version, ../../build/Release for
 *                            the native helper)
 *   dist/cli/seal-worker.js  the seal pool's worker (seal-pool.ts: new URL('./seal-worker.js'))
 *   dist/native/index.js     the native helper, also imported at run time by engine/xattrs.ts
 *                            (new URL('../native/index.js'))
 * The KDF worker is eval'd source that require()s libsodium's CommonJS build, so
 * libsodium-wrappers-sumo stays external (node_modules/), as do the native addons.
 */
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths.js';

/** Packages not bundled: shipped in LIB/node_modules. */
export const EXTERNAL_PACKAGES = ['better-sqlite3', 'zstd-napi', 'libsodium-wrappers-sumo'];

/** Runtime files of the external pure-JS packages (relative to each package), beside the addons. */
export const EXTERNAL_JS: Record<string, string[]> = {
  'libsodium-wrappers-sumo': ['package.json', 'LICENSE', 'dist/modules-sumo/libsodium-wrappers.js', 'dist/modules-sumo-esm/libsodium-wrappers.mjs'],
  'libsodium-sumo': ['package.json', 'LICENSE', 'dist/modules-sumo/libsodium-sumo.js', 'dist/modules-sumo-esm/libsodium-sumo.mjs'],
  bindings: ['package.json', 'LICENSE.md', 'bindings.js'],
  'file-uri-to-path': ['package.json', 'LICENSE', 'index.js'],
};

// CommonJS dependencies inside the ESM bundle call require() for Node's modules
const BANNER = "import { createRequire as __lifeboatCreateRequire } from 'node:module';\nconst require = __lifeboatCreateRequire(import.meta.url);";

/** Bundles into libDir/dist; the CLI's first line runs the shipped node. */
export async function bundleApp(libDir: string, interpreter: string): Promise<void> {
  const outdir = path.join(libDir, 'dist');
  fs.rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [
      { in: 'src/cli/main.ts', out: 'cli/main' },
      { in: 'src/repo/seal-worker.ts', out: 'cli/seal-worker' },
      { in: 'src/native/index.ts', out: 'native/index' },
    ],
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    external: EXTERNAL_PACKAGES,
    banner: { js: BANNER },
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  if (result.errors.length) throw new Error(`esbuild: ${result.errors.length} errors`);
  const main = path.join(outdir, 'cli', 'main.js');
  const text = fs.readFileSync(main, 'utf8').replace(/^#!.*\n/, '');
  fs.writeFileSync(main, `#!${interpreter}\n${text}`);
  fs.chmodSync(main, 0o755);
}

/** Copies the listed files of pure-JS packages from the project's node_modules. */
export function copyExternalJs(libDir: string): void {
  for (const [pkg, files] of Object.entries(EXTERNAL_JS)) {
    for (const f of files) {
      const from = path.join(ROOT, 'node_modules', pkg, f);
      if (!fs.existsSync(from)) throw new Error(`${pkg}: ${f} is missing from node_modules`);
      fs.cpSync(from, path.join(libDir, 'node_modules', pkg, f));
    }
  }
}
