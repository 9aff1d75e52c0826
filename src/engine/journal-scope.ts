/**
 * The scope of a journal-driven backup: from the paths a watcher saw change, which directories must
 * be read again. A directory must be read when a changed path lies in it or below it, or when it
 * lies below a changed path (a directory created or moved in whole).
 */
import path from 'node:path';

export function journalScope(changed: Iterable<string>): (dirPath: string) => boolean {
  const exact = new Set<string>();
  const ancestors = new Set<string>();
  for (const raw of changed) {
    const p = path.resolve(raw);
    exact.add(p);
    for (let d = path.dirname(p); ; d = path.dirname(d)) {
      ancestors.add(d);
      if (d === '/') break;
    }
  }
  return (dir: string) => {
    if (exact.has(dir) || ancestors.has(dir)) return true;
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      if (exact.has(d)) return true;
      if (d === '/') return false;
    }
  };
}

/** Reads a journal file: NUL-separated absolute paths. */
export function parseJournalFile(text: string): string[] {
  return text.split('\0').filter((p) => p.startsWith('/'));
}
