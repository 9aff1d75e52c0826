/**
 * Short-lived files that hand a password to a client tool (PGPASSFILE, --defaults-extra-file):
 * created 0600 in a 0700 directory under the cache, removed when the tool is done, and removed at
 * exit if something went wrong before that.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const live = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const f of live) {
      try {
        fs.unlinkSync(f);
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Removes what a killed lifeboat left behind in `dir`: password files older than an hour (the tools
 * read them when they connect, within seconds) and SQLite copies older than a day.
 */
export function sweepStale(dir: string, now = Date.now()): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const maxAge = /^(pgpass|my-cnf)-[0-9a-f]{16}$/.test(name) ? 3600_000 : /^sqlite-[0-9a-f]{16}\.db(-journal|-wal|-shm)?$/.test(name) ? 86_400_000 : 0;
    if (!maxAge) continue;
    const file = path.join(dir, name);
    try {
      if (now - fs.statSync(file).mtimeMs > maxAge) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
}

export class SecretFile {
  private constructor(readonly path: string) {}

  static create(dir: string, prefix: string, content: string): SecretFile {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    sweepStale(dir);
    const file = path.join(dir, `${prefix}-${crypto.randomBytes(8).toString('hex')}`);
    hookExit();
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    live.add(file);
    try {
      fs.writeSync(fd, content);
    } finally {
      fs.closeSync(fd);
    }
    return new SecretFile(file);
  }

  remove(): void {
    live.delete(this.path);
    fs.rmSync(this.path, { force: true });
  }
}
