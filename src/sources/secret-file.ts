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

export class SecretFile {
  private constructor(readonly path: string) {}

  static create(dir: string, prefix: string, content: string): SecretFile {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
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
