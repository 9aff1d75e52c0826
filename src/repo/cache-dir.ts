import os from 'node:os';
import path from 'node:path';

/**
 * Where local caches live: an explicit directory, else LIFEBOAT_CACHE_DIR, else
 * /var/lib/lifeboat/cache for root, else $XDG_CACHE_HOME/lifeboat or ~/.cache/lifeboat.
 */
export function defaultCacheDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const env = process.env.LIFEBOAT_CACHE_DIR;
  if (env) return path.resolve(env);
  if (process.getuid?.() === 0) return '/var/lib/lifeboat/cache';
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'lifeboat');
}
