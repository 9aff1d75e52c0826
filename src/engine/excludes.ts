/**
 * Exclusion rules with restic's semantics:
 *
 * - patterns are globs over `/`-separated paths: `*` and `?` never cross a `/`, `[...]` is a
 *   character class (`[!...]` or `[^...]` negated), `**` as a whole component matches any
 *   number of components (zero too); `\` escapes the next character;
 * - a pattern starting with `/` is anchored at the root; any other pattern may match starting
 *   at any component (`foo` excludes every file or directory named foo, `a/b` every b directly
 *   under an a);
 * - a match excludes the path and, for a directory, everything below it;
 * - `--iexclude` patterns ignore case; `--exclude-file` holds one pattern per line (blank lines
 *   and lines starting with `#` ignored, surrounding spaces trimmed);
 * - `--exclude-caches`: a directory holding a CACHEDIR.TAG file that starts with the standard
 *   signature keeps only itself and that tag file;
 * - `--exclude-larger-than SIZE` skips regular files larger than SIZE (`10M`, `1G`, `512k`…).
 *
 * Not supported (yet): negated `!pattern` lines and `$VAR` expansion in patterns.
 */
import fs from 'node:fs';

export interface ExcludeOptions {
  exclude?: string[];
  iexclude?: string[];
  excludeFiles?: string[];
  excludeCaches?: boolean;
  excludeLargerThan?: number;
}

const CACHEDIR_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

function globPartToRegex(part: string): string {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') {
      re += '[^/]*';
      while (part[i + 1] === '*') i++;
    } else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < part.length) re += escapeRe(part[++i]!);
    else if (c === '[') {
      const end = part.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = part.slice(i + 1, end);
      let neg = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        neg = true;
        body = body.slice(1);
      }
      body = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      re += `[${neg ? '^/' : ''}${body}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return re;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Compiles one pattern to a regex over absolute paths (`/a/b/c`). */
export function compilePattern(pattern: string, ignoreCase = false): RegExp {
  const p = pattern.trim();
  if (p === '') throw new Error('empty exclude pattern');
  const anchored = p.startsWith('/');
  const parts = p.split('/').filter((x) => x !== '');
  let re = anchored ? '^' : '^(?:/[^/]*)*?';
  for (const part of parts) {
    if (part === '**') re += '(?:/[^/]*)*?';
    else re += '/' + globPartToRegex(part);
  }
  if (parts.length === 0) re += '/'; // the pattern "/" matches everything
  re += '(?:/.*)?$';
  return new RegExp(re, ignoreCase ? 'is' : 's');
}

/** Patterns from an exclude file: one per line, `#` comments and blank lines ignored. */
export function readExcludeFile(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Parses `10M`, `1G`, `512k`, `100` (bytes), `2T`; binary units as restic. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$/i.exec(s);
  if (!m) throw new Error(`invalid size "${s}" (e.g. 500k, 10M, 1G)`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

export class Excluder {
  private readonly patterns: RegExp[] = [];

  constructor(readonly opts: ExcludeOptions = {}) {
    for (const p of opts.exclude ?? []) this.patterns.push(compilePattern(p));
    for (const p of opts.iexclude ?? []) this.patterns.push(compilePattern(p, true));
    for (const f of opts.excludeFiles ?? []) for (const p of readExcludeFile(f)) this.patterns.push(compilePattern(p));
  }

  get active(): boolean {
    return this.patterns.length > 0;
  }

  /** True when the absolute path (as text; invalid UTF-8 bytes become U+FFFD) is excluded by a pattern. */
  matchesPath(absPath: string): boolean {
    for (const re of this.patterns) if (re.test(absPath)) return true;
    return false;
  }

  /** True when a regular file of this size is excluded by --exclude-larger-than. */
  tooLarge(size: number): boolean {
    return this.opts.excludeLargerThan !== undefined && size > this.opts.excludeLargerThan;
  }

  /** True when dir (given as a Buffer path) holds a valid CACHEDIR.TAG and caches are excluded. */
  async isCacheDir(dir: Buffer): Promise<boolean> {
    if (!this.opts.excludeCaches) return false;
    const tag = Buffer.concat([dir, Buffer.from('/CACHEDIR.TAG')]);
    try {
      const fh = await fs.promises.open(tag, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const buf = Buffer.alloc(CACHEDIR_SIGNATURE.length);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        return bytesRead === buf.length && buf.toString('latin1') === CACHEDIR_SIGNATURE;
      } finally {
        await fh.close();
      }
    } catch {
      return false;
    }
  }
}
