import fs from 'node:fs';
import { warnIfShared } from '../config/secrets.js';
import { UsageError } from './exit-codes.js';

/** Strips one trailing newline, as editors and `echo` add it. */
function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

/** Reads a password file; one that others can read is used, with a warning line (warnIfShared). */
export function readPasswordFile(file: string): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      // pipes, /dev/stdin and process substitution have no meaningful mode
      if (st.isFile()) warnIfShared(file, st.mode);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new UsageError(`cannot read password file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return stripNewline(text);
}

/** Asks on the terminal without echoing. */
export async function promptPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new UsageError('no password given: use --password-file, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD');
  }
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (ch: string) => {
      for (const c of ch) {
        if (c === '\r' || c === '\n') {
          cleanup();
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          cleanup();
          reject(new UsageError('interrupted'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    const cleanup = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

/** The repository password: --password-file, LIFEBOAT_PASSWORD_FILE, LIFEBOAT_PASSWORD, or a prompt. */
export async function resolvePassword(passwordFile: string | undefined): Promise<string> {
  const file = passwordFile ?? process.env.LIFEBOAT_PASSWORD_FILE;
  if (file) return readPasswordFile(file);
  const env = process.env.LIFEBOAT_PASSWORD;
  if (env !== undefined) return env;
  return promptPassword('enter password for repository: ');
}

/** A new password (init, key add, key passwd): a file, or asked twice on the terminal. */
export async function resolveNewPassword(newPasswordFile: string | undefined, fallback?: () => Promise<string>): Promise<string> {
  if (newPasswordFile) return readPasswordFile(newPasswordFile);
  if (fallback) return fallback();
  const a = await promptPassword('enter new password: ');
  const b = await promptPassword('enter the password again: ');
  if (a !== b) throw new UsageError('the passwords do not match');
  return a;
}
