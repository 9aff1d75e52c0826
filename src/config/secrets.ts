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

/** The secret `ref` names, or undefined when it names none; `label` says whose it is in errors. */
export function readSecret(ref: SecretRef, label: string): string | undefined {
  if (ref.password_file) {
    let text: string;
    try {
      text = fs.readFileSync(ref.password_file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${label}: cannot read password_file ${ref.password_file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return text.replace(/\r?\n$/, '');
  }
  if (ref.password_env) {
    const v = process.env[ref.password_env];
    if (v === undefined) throw new ConfigError(`${label}: environment variable ${ref.password_env} (password_env) is not set`);
    return v;
  }
  return undefined;
}
