/** Errors the repository layer raises; the CLI maps each to an exit code. */

/** An object's bytes do not match its name, fail authentication, or do not parse. */
export class IntegrityError extends Error {
  constructor(
    readonly object: string,
    readonly reason: string,
  ) {
    super(`integrity error in ${object}: ${reason}`);
    this.name = 'IntegrityError';
  }
}

/** No key file opens with the given password. */
export class WrongPasswordError extends Error {
  constructor() {
    super('wrong password or no key matches');
    this.name = 'WrongPasswordError';
  }
}

/** Nothing that looks like a repository at the location. */
export class NoRepositoryError extends Error {
  constructor(location: string, detail?: string) {
    super(`no repository at ${location}${detail ? `: ${detail}` : ''}`);
    this.name = 'NoRepositoryError';
  }
}

/** init found an existing repository. */
export class RepositoryExistsError extends Error {
  constructor(location: string) {
    super(`a repository already exists at ${location}; refusing to overwrite it`);
    this.name = 'RepositoryExistsError';
  }
}

/** A repository written by a newer (or unknown) format version. */
export class UnsupportedVersionError extends Error {
  constructor(what: string, version: unknown) {
    super(`${what} has format version ${String(version)}, which this lifeboat does not support`);
    this.name = 'UnsupportedVersionError';
  }
}

/** A lock could not be obtained. */
export class LockConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockConflictError';
  }
}

/** An append-only client was asked to delete something. */
export class AppendOnlyError extends Error {
  constructor(what: string) {
    super(`this client is append-only and may not ${what} (run forget, prune and repair from a trusted host)`);
    this.name = 'AppendOnlyError';
  }
}
