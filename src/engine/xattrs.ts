/**
 * XATTR HOOK — extended attributes of a path (not following symlinks), for tree nodes.
 *
 * Node has no xattr API; the native addon in src/native/ (the restore side's) exposes
 * listXattrs/getXattr (l*xattr). It is looked up at run time, so the backup side works
 * without it: when the addon is missing or not built, no xattrs are recorded.
 * A filesystem without xattr support (ENOTSUP) or an attribute removed meanwhile (ENODATA)
 * is not an error.
 */
import type { Xattr } from './tree.js';

interface XattrApi {
  nativeAvailable(): boolean;
  listXattrs(path: Buffer | string): string[];
  getXattr(path: Buffer | string, name: string): Buffer;
}

let api: XattrApi | null | undefined;
let loading: Promise<XattrApi | null> | null = null;

async function load(): Promise<XattrApi | null> {
  // .js from dist/, .ts under vitest
  for (const rel of ['../native/index.js', '../native/index.ts']) {
    try {
      const m = (await import(new URL(rel, import.meta.url).href)) as Partial<XattrApi>;
      if (typeof m.listXattrs === 'function' && typeof m.getXattr === 'function' && typeof m.nativeAvailable === 'function') {
        return m.nativeAvailable() ? (m as XattrApi) : null;
      }
    } catch {
      // not there (yet)
    }
  }
  return null;
}

/** True when xattrs are recorded (the native helper is available). */
export async function xattrsSupported(): Promise<boolean> {
  if (api === undefined) api = await (loading ??= load());
  return api !== null;
}

const IGNORED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENODATA', 'ENOATTR']);

export async function readXattrs(p: Buffer): Promise<Xattr[] | undefined> {
  if (api === undefined) api = await (loading ??= load());
  const a = api;
  if (!a) return undefined;
  let names: string[];
  try {
    names = a.listXattrs(p);
  } catch (e) {
    if (IGNORED.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
  if (names.length === 0) return undefined;
  const out: Xattr[] = [];
  for (const name of names.sort()) {
    try {
      out.push({ name, value: a.getXattr(p, name) });
    } catch (e) {
      if (!IGNORED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  }
  return out.length > 0 ? out : undefined;
}
