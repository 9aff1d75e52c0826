/**
 * Start-up latency: the Argon2id key derivation (≈ 0.09 s with the default 3 passes and the
 * system's libsodium, 0.17 s in WASM, more for older key files; one core) is started before the
 * CLI loads its modules (≈ 0.3–0.5 s on the other core), when the repository and the password can be
 * known cheaply — a local repository from --repo/-r or LIFEBOAT_REPOSITORY, the password from
 * --password-file/-p, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD. It reads the repository's
 * first key file (in the order unlocking tries them) and calls prefetchKey; the real open
 * later asks for the same derivation and gets it (kdf.ts). Any doubt (S3, a config-file
 * repository, several key files' order, unreadable files) and nothing is started: the normal
 * path derives as before. Never throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import { prefetchKey } from '../repo/kdf.js';

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
    if (!loc || /^[a-z0-9]+:/i.test(loc) && !loc.startsWith('local:')) return;
    const dir = path.resolve(loc.startsWith('local:') ? loc.slice('local:'.length) : loc);
    const file = flagValue(argv, ['-p', '--password-file']) ?? env.LIFEBOAT_PASSWORD_FILE;
    // only a regular file may be read twice: a FIFO or /dev/stdin would be consumed here
    if (file && !fs.statSync(file).isFile()) return;
    const password = file ? fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '') : env.LIFEBOAT_PASSWORD;
    if (!password) return;
    const names = fs.readdirSync(path.join(dir, 'keys')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    if (names.length === 0 || names.length > 4) return;
    const files = names.map((n) => JSON.parse(fs.readFileSync(path.join(dir, 'keys', n), 'utf8')) as {
      created?: unknown; kdf?: { algorithm?: unknown; opslimit?: unknown; memlimit?: unknown; salt?: unknown };
    }).map((f, i) => ({ f, id: names[i]! }));
    files.sort((a, b) => String(a.f.created).localeCompare(String(b.f.created)) || a.id.localeCompare(b.id));
    const kdf = files[0]!.f.kdf;
    if (!kdf || kdf.algorithm !== 'argon2id13' || typeof kdf.opslimit !== 'number' || typeof kdf.memlimit !== 'number' ||
        typeof kdf.salt !== 'string' || kdf.opslimit > 100) return;
    prefetchKey(password, { opslimit: kdf.opslimit, memlimit: kdf.memlimit, salt: Buffer.from(kdf.salt, 'base64') });
  } catch {
    // the normal path reports whatever is wrong
  }
}
