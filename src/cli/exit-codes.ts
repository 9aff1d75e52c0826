import { StorageError } from '../storage/errors.js';
import {
  IntegrityError,
  LockConflictError,
  NoRepositoryError,
  RepositoryExistsError,
  UnsupportedVersionError,
  WrongPasswordError,
} from '../repo/errors.js';

/** Exit codes, as documented in the README. */
export const EXIT = {
  ok: 0,
  error: 1,
  /** a snapshot was saved but some files could not be read */
  incomplete: 3,
  noRepository: 10,
  locked: 11,
  wrongPassword: 12,
} as const;

/** A user-facing error with its own exit code (bad flags, missing password, ...). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return e.exitCode;
  if (e instanceof WrongPasswordError) return EXIT.wrongPassword;
  if (e instanceof NoRepositoryError) return EXIT.noRepository;
  if (e instanceof LockConflictError) return EXIT.locked;
  if (e instanceof StorageError && e.code === 'no-bucket') return EXIT.noRepository;
  if (e instanceof IntegrityError || e instanceof RepositoryExistsError || e instanceof UnsupportedVersionError) {
    return EXIT.error;
  }
  return EXIT.error;
}

/** One line, no stack trace: what the user sees on stderr. */
export function oneLine(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_FULL') {
    return 'the local cache is full (no space left for its database): free space there or use --cache-dir elsewhere; the repository is unharmed';
  }
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}
