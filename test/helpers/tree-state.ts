/**
 * What a test needs to prove "every snapshot restores bit-exact": the content of a source tree
 * as a map of relative path → SHA-256 (captured when the snapshot is taken), and a restore of a
 * snapshot through the CLI compared against it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { runCli } from './cli.js';

export type TreeState = Map<string, string>;

/** Relative path → SHA-256 of every regular file under root (directories implied). */
export function treeState(root: string): TreeState {
  const out: TreeState = new Map();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(root, p), createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

/** Restores `snapshot`'s copy of `src` into a scratch target and checks it equals `expected`. */
export async function expectRestoresTo(
  env: Record<string, string>,
  snapshot: string,
  src: string,
  expected: TreeState,
  scratch: string,
): Promise<void> {
  fs.rmSync(scratch, { recursive: true, force: true });
  const r = await runCli(['restore', `${snapshot}:${src}`, '--target', scratch], env);
  expect(r.stderr, `restore ${snapshot}`).toBe('');
  expect(r.code).toBe(0);
  expect(treeState(scratch), `snapshot ${snapshot} restores bit-exact`).toEqual(expected);
  fs.rmSync(scratch, { recursive: true, force: true });
}

/** Snapshot ids, oldest first, from `snapshots --json`. */
export async function snapshotIds(env: Record<string, string>): Promise<string[]> {
  const r = await runCli(['snapshots', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ id: string }>).map((s) => s.id);
}
