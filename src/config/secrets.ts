/**
 * Secrets named by the config (a file or an environment variable). Their values are returned to the
 * caller only; no message here ever includes one.
 */
import fs from 'node:fs';
import { ConfigError } from './errors.js';

export interface SecretRef {
  password_file?: string;
  password_env?: string;
}

/** Where a secret file was named in the config file (set by the loader). */
export interface SecretOrigin {
  file: string;
  line: number;
  field: string;
}

const origins = new WeakMap<object, SecretOrigin>();

/** Remembers that `holder.password_file` was written at `origin` (config/load.ts). */
export function recordSecretOrigin(holder: object, origin: SecretOrigin): void {
  origins.set(holder, origin);
}

const warned = new Set<string>();

/**
 * Secret files that others can read get one warning line on stderr (once per file and process), as
 * ssh warns about a private key: `warning: password file F is readable by its group (mode 0640):
 * chmod 600 F`. The config refuses a world-readable file before this (readSecretFile); a file given
 * with --password-file or LIFEBOAT_PASSWORD_FILE is used with the warning (the caller chose it).
 */
export function warnIfShared(file: string, mode: number, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  if (!(mode & 0o044) || warned.has(file)) return;
  warned.add(file);
  const text = (mode & 0o777).toString(8).padStart(4, '0');
  write(`warning: password file ${file} is readable by ${mode & 0o004 ? 'other users' : 'its group'} (mode ${text}): chmod 600 ${file}`);
}

/**
 * Reads a password file named by the config. Like ssh with a private key, a file that other users
 * can read is refused: the message names the config file, line and field, and the fix; one that its
 * group can read is used with a warning (warnIfShared).
 */
export function readSecretFile(holder: object, file: string, label: string): string {
  const o = origins.get(holder);
  const where = o ? `${o.file}:${o.line}: ${o.field}` : `${label ? `${label}.` : ''}password_file`;
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new ConfigError(`${where}: ${file} is not a regular file`);
      if (st.mode & 0o004) {
        const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
        throw new ConfigError(`${where}: ${file} is readable by other users (mode ${mode}); refusing to use it: chmod 600 ${file}`);
      }
      warnIfShared(file, st.mode);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${where}: cannot read ${file}: ${code === 'ENOENT' ? 'ENOENT (no such file)' : (code ?? 'error')}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** The secret `ref` names, or undefined when it names none; `label` says whose it is in errors. */
export function readSecret(ref: SecretRef, label: string): string | undefined {
  if (ref.password_file) return readSecretFile(ref, ref.password_file, label);
  if (ref.password_env) {
    const v = process.env[ref.password_env];
    if (v === undefined) throw new ConfigError(`${label}: environment variable ${ref.password_env} (password_env) is not set`);
    return v;
  }
  return undefined;
}
