import fs from 'node:fs';

let cached: string | undefined;

/** lifeboat's version, from package.json (two folders up from this module in src/ and dist/). */
export function programVersion(): string {
  if (cached) return cached;
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    cached = pkg.version ?? '0.0.0';
  } catch {
    cached = '0.0.0';
  }
  return cached;
}
