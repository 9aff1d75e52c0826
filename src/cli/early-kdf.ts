/**
 * Start-up latency: the Argon2id key derivation (≈ 0.09 s with the default 3 passes and the
 * system's libsodium, 0.17 s in WASM, more for older key files; one core) is started before the
 * CLI loads its modules (≈ 0.3–0.5 s on the other core), when the repository and the password can be
 * known cheaply — a local repository from --repo/-r or LIFEBOAT_REPOSITORY, the password from
 * --password-file/-p, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD. It reads the repository's
 * first key file (in the order unlocking tries them) and calls prefetchKey; the real open
 * later asks for the same derivation and gets it (kdf.ts). A remote repository (S3) can't be read
 * this early: its key file's parameters come from the hint the last command that opened it left
 * in the cache (kdfHintFile). Any doubt (a config-file repository or cache directory, several
 * key files' order, unreadable files, no hint) and nothing is started: the normal path derives
 * as before. Never throws.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultCacheDir } from '../repo/cache-dir.js';
import { parseLocation } from '../storage/url.js';
import { prefetchKey } from '../repo/kdf.js';
import { mayUseConfig } from './config-module.js';

/** A key file's KDF parameters as stored (keyfile.ts): all an early derivation needs. */
interface KdfHint {
  algorithm?: unknown;
  opslimit?: unknown;
  memlimit?: unknown;
  salt?: unknown;
}

/**
 * Where the KDF parameters of the key file that last opened a remote repository are kept:
 * `<cache>/kdf-hints/<hash of the location>.json`. Only the algorithm, limits and salt — public
 * values, stored in the clear in the key file too, and of no use without the key file's
 * encrypted master key — so that the next command can start the derivation before the AWS SDK
 * has even loaded. A stale hint costs one wasted derivation on the other core.
 */
export function kdfHintFile(cacheRoot: string, location: string): string {
  return path.join(cacheRoot, 'kdf-hints', `${createHash('sha256').update(location).digest('hex').slice(0, 32)}.json`);
}

/** Records the hint for a remote location after it was opened (never throws). */
export function saveKdfHint(cacheRoot: string, location: string, kdf: { algorithm: string; opslimit: number; memlimit: number; salt: string }): void {
  try {
    const file = kdfHintFile(cacheRoot, location);
    const text = `${JSON.stringify({ algorithm: kdf.algorithm, opslimit: kdf.opslimit, memlimit: kdf.memlimit, salt: kdf.salt })}\n`;
    try {
      if (fs.readFileSync(file, 'utf8') === text) return;
    } catch {
      // no hint yet
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    // only start-up latency depends on it
  }
}

/** Starts the derivation a key file with these parameters needs, when they are sound. */
function prefetchFrom(password: string, kdf: KdfHint | undefined): void {
  if (!kdf || kdf.algorithm !== 'argon2id13' || typeof kdf.opslimit !== 'number' || typeof kdf.memlimit !== 'number' ||
      typeof kdf.salt !== 'string' || kdf.opslimit > 100) return;
  prefetchKey(password, { opslimit: kdf.opslimit, memlimit: kdf.memlimit, salt: Buffer.from(kdf.salt, 'base64') });
}

function flagValue(argv: string[], names: string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    for (const n of names) {
      if (a === n && i + 1 < argv.length) found = argv[i + 1];
      else if (n.startsWith('--') && a.startsWith(`${n}=`)) found = a.slice(n.length + 1);
    }
  }
  return found;
}

export function startEarlyKdf(argv: string[], env: NodeJS.ProcessEnv = process.env): void {
  try {
    const loc = flagValue(argv, ['-r', '--repo']) ?? env.LIFEBOAT_REPOSITORY;
    if (!loc) return;
    const where = parseLocation(loc);
    const file = flagValue(argv, ['-p', '--password-file']) ?? env.LIFEBOAT_PASSWORD_FILE;
    // only a regular file may be read twice: a FIFO or /dev/stdin would be consumed here
    if (file && !fs.statSync(file).isFile()) return;
    const password = file ? fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '') : env.LIFEBOAT_PASSWORD;
    if (!password) return;
    if (where.kind !== 'local') {
      // the cache directory as CliContext finds it; a config file may name another one
      const flag = flagValue(argv, ['--cache-dir']);
      if (flag === undefined && !env.LIFEBOAT_CACHE_DIR && mayUseConfig(argv, env)) return;
      const hint = JSON.parse(fs.readFileSync(kdfHintFile(defaultCacheDir(flag), loc), 'utf8')) as KdfHint;
      prefetchFrom(password, hint);
      return;
    }
    const dir = where.path;
    const names = fs.readdirSync(path.join(dir, 'keys')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    if (names.length === 0 || names.length > 4) return;
    const files = names.map((n) => JSON.parse(fs.readFileSync(path.join(dir, 'keys', n), 'utf8')) as {
      created?: unknown; kdf?: KdfHint;
    }).map((f, i) => ({ f, id: names[i]! }));
    files.sort((a, b) => String(a.f.created).localeCompare(String(b.f.created)) || a.id.localeCompare(b.id));
    prefetchFrom(password, files[0]!.f.kdf);
  } catch {
    // the normal path reports whatever is wrong
  }
}
