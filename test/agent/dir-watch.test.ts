import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirWatch } from '../../src/agent/dir-watch.js';

const until = async (cond: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('DirWatch', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('one watch per directory; reports changed files, follows new directories, forgets removed ones', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-dirwatch-'));
    dirs.push(root);
    fs.mkdirSync(path.join(root, 'a', 'b'), { recursive: true });
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(root, 'a', 'b', `f${i}`), 'x');
    fs.symlinkSync('/', path.join(root, 'link-to-root'));
    const seen = new Set<string>();
    const w = new DirWatch({ onChange: (p) => seen.add(p), onError: (e) => { throw e; } });
    try {
      await w.start([root]);
      expect(w.size).toBe(3); // root, a, a/b: not the 50 files, not the symlink's target
      fs.writeFileSync(path.join(root, 'a', 'b', 'f7'), 'changed');
      await until(() => seen.has(path.join(root, 'a', 'b', 'f7')));
      fs.mkdirSync(path.join(root, 'new'));
      await until(() => w.size === 4);
      fs.writeFileSync(path.join(root, 'new', 'inside'), 'y');
      await until(() => seen.has(path.join(root, 'new', 'inside')));
      fs.rmSync(path.join(root, 'a'), { recursive: true });
      await until(() => w.size === 2);
      expect(seen.has(path.join(root, 'a'))).toBe(true);
    } finally {
      w.close();
    }
  });
});
