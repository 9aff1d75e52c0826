/**
 * restic-style include/exclude patterns, matched against absolute snapshot paths.
 *
 * `*` matches within one path component, `**` across components, `?` one character, `[...]` a
 * class. A pattern starting with `/` is anchored at the root; otherwise it may match any trailing
 * run of components ("*.log" matches /var/log/a.log). A pattern that matches a directory also
 * matches everything under it.
 */
export class PathMatcher {
  private readonly res: Array<{ re: RegExp; anchored: boolean; parts: string[] }>;

  constructor(readonly patterns: string[]) {
    this.res = patterns.filter((p) => p.length > 0).map((p) => {
      const anchored = p.startsWith('/');
      const clean = p.replace(/\/+$/, '').replace(/^\/+/, '');
      return { re: globToRegExp(clean), anchored, parts: clean.split('/') };
    });
  }

  get empty(): boolean {
    return this.res.length === 0;
  }

  /** True when the path or one of its parents matches a pattern. */
  matches(path: string): boolean {
    const comps = path.split('/').filter(Boolean);
    for (const { re, anchored } of this.res) {
      // a prefix of the path (the path itself or a parent) against the pattern
      for (let end = comps.length; end >= 1; end--) {
        const starts = anchored ? [0] : Array.from({ length: end }, (_, i) => i);
        for (const s of starts) if (re.test(comps.slice(s, end).join('/'))) return true;
      }
    }
    return false;
  }

  /** True when some descendant of the directory at `path` could match (used for includes). */
  mayMatchBelow(path: string): boolean {
    const comps = path.split('/').filter(Boolean);
    for (const { anchored, parts } of this.res) {
      if (!anchored) return true;
      if (parts.includes('**')) return true;
      // each of the directory's components must match the pattern's leading components
      if (comps.length >= parts.length) continue;
      let ok = true;
      for (let i = 0; i < comps.length; i++) {
        if (!globToRegExp(parts[i]!).test(comps[i]!)) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // "**/" matches zero or more components
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      re += escapeRe(glob[i + 1]!);
      i += 1;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
