import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { deriveKeyFromPassword, hasPrefetched, prefetchKey } from '../../src/repo/kdf.js';
import { kdfHintFile, saveKdfHint, startEarlyKdf } from '../../src/cli/early-kdf.js';
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

  it('a remote repository: the hint the last open left in the cache starts the derivation early', async () => {
    const cache = tmpDir('lifeboat-kdf-hint-');
    const loc = 's3:https://s3.example.net/bucket/host-1';
    const p = { opslimit: 1, memlimit: 8 * 1024 * 1024, salt: crypto.randomBytes(16) };
    const kdf = { algorithm: 'argon2id13', opslimit: p.opslimit, memlimit: p.memlimit, salt: p.salt.toString('base64') };
    const argv = ['-r', loc, '--cache-dir', cache, 'snapshots'];
    startEarlyKdf(argv, { LIFEBOAT_PASSWORD: 'hint-secret' });
    expect(hasPrefetched('hint-secret', p)).toBe(false); // no hint yet
    saveKdfHint(cache, loc, kdf);
    const file = kdfHintFile(cache, loc);
    // public values only, private to the user
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(kdf);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).not.toContain('hint-secret');
    // a config file could name another cache directory: no guess then
    startEarlyKdf(['-r', loc, 'snapshots'], { LIFEBOAT_PASSWORD: 'hint-secret', LIFEBOAT_CONFIG: path.join(cache, 'none.yaml') });
    expect(hasPrefetched('hint-secret', p)).toBe(false);
    startEarlyKdf(argv, { LIFEBOAT_PASSWORD: 'hint-secret' });
    expect(hasPrefetched('hint-secret', p)).toBe(true);
    // the open asks for the same derivation and gets the early one
    const fresh = await deriveKeyFromPassword('hint-secret', p);
    expect(hasPrefetched('hint-secret', p)).toBe(false);
    expect(fresh.equals(await deriveKeyFromPassword('hint-secret', p))).toBe(true);
    // another location has no hint
    startEarlyKdf(['-r', `${loc}-2`, '--cache-dir', cache, 'snapshots'], { LIFEBOAT_PASSWORD: 'hint-secret' });
    expect(hasPrefetched('hint-secret', p)).toBe(false);
  });
});
