import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { deriveKeyFromPassword, prefetchKey } from '../../src/repo/kdf.js';
import { startEarlyKdf } from '../../src/cli/early-kdf.js';
import { tmpDir } from '../helpers/repo.js';

const params = () => ({ opslimit: 1, memlimit: 8 * 1024 * 1024, salt: crypto.randomBytes(16) });

describe('key derivation ahead of need', () => {
  it('a prefetched derivation gives the same key as a fresh one, and only for the same inputs', async () => {
    const p = params();
    const fresh = await deriveKeyFromPassword('secret', p);
    prefetchKey('secret', p);
    expect((await deriveKeyFromPassword('secret', p)).equals(fresh)).toBe(true);
    prefetchKey('other', p);
    expect((await deriveKeyFromPassword('secret', p)).equals(fresh)).toBe(true);
    expect((await deriveKeyFromPassword('other', p)).equals(fresh)).toBe(false);
  });

  it('never reads a password file that is not a regular file (a FIFO would be consumed)', () => {
    const dir = tmpDir('lifeboat-early-kdf-');
    fs.mkdirSync(path.join(dir, 'repo', 'keys'), { recursive: true });
    const fifo = path.join(dir, 'pw');
    execFileSync('mkfifo', [fifo]);
    // would block forever on the FIFO if it were read
    startEarlyKdf(['-r', path.join(dir, 'repo'), '--password-file', fifo, 'snapshots'], {});
    startEarlyKdf(['snapshots'], { LIFEBOAT_REPOSITORY: 's3:http://h/b', LIFEBOAT_PASSWORD: 'x' });
  });
});
