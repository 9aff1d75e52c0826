import fs from 'node:fs';
import type { Command } from 'commander';
import { openStorage } from '../storage/open.js';
import { parseLocation } from '../storage/url.js';
import type { Storage } from '../storage/types.js';
import type { ObjectLockSetting } from '../storage/s3.js';
import { Repository } from '../repo/repository.js';
import type { KdfParams } from '../repo/kdf.js';
import type { RepoLock } from '../repo/lock.js';
import { defaultKdfParams } from '../repo/kdf.js';
import { Output } from './output.js';
import { UsageError } from './exit-codes.js';
import { resolvePassword } from './password.js';
import { readSecretFile } from '../config/secrets.js';
import type { LoadedConfig } from '../config/load.js';
import { configFileFor } from '../config/locate.js';
import { configModule } from './config-module.js';
import { parseDuration } from '../util/duration.js';
import { releaseOnSignal } from './stop-signal.js';
import { saveKdfHint } from './early-kdf.js';
import { defaultCacheDir } from '../repo/cache-dir.js';

/** Options every command accepts (set on the root program). */
export interface GlobalOptions {
  config?: string;
  repo?: string;
  passwordFile?: string;
  cacheDir?: string;
  retryLock?: string;
  uploadConcurrency?: string;
  /** false with --no-lock: read-only commands take no shared lock. */
  lock?: boolean;
  appendOnly?: boolean;
  cacert?: string;
  insecureTls?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: number;
}

/** What a command needs from the command line and environment. */
export class CliContext {
  readonly out: Output;

  constructor(
    readonly globals: GlobalOptions,
    /** The config file (--config, LIFEBOAT_CONFIG, or /etc/lifeboat/lifeboat.yaml when it exists). */
    readonly config: LoadedConfig | null = null,
  ) {
    this.out = new Output({ json: !!globals.json, quiet: !!globals.quiet, verbose: globals.verbose ?? 0 });
  }

  static from(cmd: Command): CliContext {
    const globals = { ...cmd.optsWithGlobals<GlobalOptions>() };
    const config = configFileFor(globals.config) === null ? null : configModule().loadConfigFor(globals.config);
    // flags > environment > config file
    if (globals.cacheDir === undefined && !process.env.LIFEBOAT_CACHE_DIR && config?.config.cache_dir) {
      globals.cacheDir = config.config.cache_dir;
    }
    return new CliContext(globals, config);
  }

  repositoryLocation(): string {
    const loc = this.globals.repo ?? process.env.LIFEBOAT_REPOSITORY ?? this.config?.config.repository;
    if (!loc) throw new UsageError('no repository given: use --repo, LIFEBOAT_REPOSITORY or `repository:` in the config file');
    return loc;
  }

  async storage(): Promise<Storage> {
    return openStorage(this.repositoryLocation(), {
      onRetry: (err, attempt, delayMs) =>
        this.out.debug(`retrying after ${err.message} (attempt ${attempt}, waiting ${Math.round(delayMs)} ms)`),
      s3: { ...s3OptionsFromEnv(), ...this.tlsOptions(), ...this.objectLock(), ...this.socketOptions() },
    });
  }

  password(): Promise<string> {
    const fromConfig = this.config?.config.password_file;
    if (fromConfig && !this.globals.passwordFile && !process.env.LIFEBOAT_PASSWORD_FILE && process.env.LIFEBOAT_PASSWORD === undefined) {
      return Promise.resolve(readSecretFile(this.config!.config, fromConfig, ''));
    }
    return resolvePassword(this.globals.passwordFile);
  }

  /** Opens the repository; the caller closes it (use withRepository). */
  async openRepository(sync = true): Promise<Repository> {
    const storage = await this.storage();
    try {
      const password = await this.password();
      const repo = await Repository.open(storage, password, {
        cacheDir: this.globals.cacheDir, sync, warn: (m) => this.out.warn(m), uploadConcurrency: this.uploadConcurrency(),
      });
      repo.appendOnly = this.appendOnly();
      const location = this.repositoryLocation();
      if (repo.keyKdf !== null && parseLocation(location).kind !== 'local') {
        saveKdfHint(defaultCacheDir(this.globals.cacheDir), location, repo.keyKdf);
      }
      return repo;
    } catch (e) {
      await storage.close();
      throw e;
    }
  }

  /**
   * Opens the repository, optionally takes a lock, runs fn, then releases and closes everything.
   * `sync: false` skips refreshing the local index cache (for commands that never read it).
   */
  async withRepository<T>(
    fn: (repo: Repository) => Promise<T>,
    opts: { lock?: 'shared' | 'exclusive'; sync?: boolean } = {},
  ): Promise<T> {
    const { lock, sync = true } = opts;
    const repo = await this.openRepository(sync);
    try {
      // The signal handler goes in before the lock is written: a SIGTERM that lands while the lock
      // file is being created still releases it instead of leaving it behind.
      // A shared lock on S3 goes ahead while its second listing (200 ms after writing it) is under
      // way: the command may read meanwhile, but writes wait for it (holdWritesUntil), and a
      // conflict it finds is what the command reports, whatever else went wrong.
      const acquiring = lock
        ? repo.lock({
          exclusive: lock === 'exclusive', retryMs: this.retryLockMs(), deferCheck: true, onStaleRemoved: (m) => this.out.warn(m),
        })
        : Promise.resolve(null);
      const unhook = releaseOnSignal(repo, acquiring, lock === 'shared');
      let held: RepoLock | null = null;
      try {
        held = await acquiring;
        if (held) repo.holdWritesUntil(held.confirmed);
        let result: T;
        try {
          result = await fn(repo);
        } catch (e) {
          await held?.confirmed;
          throw e;
        }
        await held?.confirmed;
        return result;
      } finally {
        await held?.release();
        unhook();
      }
    } finally {
      await repo.close();
      await repo.storage.close();
    }
  }

  /** --cacert FILE (env LIFEBOAT_CACERT) and --insecure-tls for https endpoints. */
  private tlsOptions(): { caCerts?: Buffer; insecureTls?: boolean } {
    const file = this.globals.cacert ?? process.env.LIFEBOAT_CACERT;
    const out: { caCerts?: Buffer; insecureTls?: boolean } = {};
    if (file) {
      try {
        out.caCerts = fs.readFileSync(file);
      } catch (e) {
        throw new UsageError(`--cacert ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    if (this.globals.insecureTls) {
      this.out.warn('TLS certificate verification is off (--insecure-tls): anyone on the path can read and change what is sent');
      out.insecureTls = true;
    }
    return out;
  }

  /** S3 Object Lock retention: LIFEBOAT_OBJECT_LOCK_DAYS (and _MODE), else `object_lock:` in the config. */
  private objectLock(): { objectLock?: ObjectLockSetting } {
    const days = process.env.LIFEBOAT_OBJECT_LOCK_DAYS;
    const mode = process.env.LIFEBOAT_OBJECT_LOCK_MODE;
    if (days !== undefined && days !== '') {
      if (!/^[1-9]\d{0,4}$/.test(days)) throw new UsageError(`LIFEBOAT_OBJECT_LOCK_DAYS: expected a whole number of days from 1 to 36500, not "${days}"`);
      const m = (mode ?? 'governance').toLowerCase();
      if (m !== 'governance' && m !== 'compliance') throw new UsageError(`LIFEBOAT_OBJECT_LOCK_MODE: expected governance or compliance, not "${mode}"`);
      return { objectLock: { mode: m === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE', days: Number(days) } };
    }
    const c = this.config?.config.object_lock;
    return c ? { objectLock: { mode: c.mode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE', days: c.days } } : {};
  }

  /** --append-only, LIFEBOAT_APPEND_ONLY=1 or `append_only: true` in the config: nothing but locks is deleted. */
  appendOnly(): boolean {
    const env = process.env.LIFEBOAT_APPEND_ONLY;
    return !!this.globals.appendOnly || (env !== undefined && env !== '' && env !== '0') || this.config?.config.append_only === true;
  }

  /** The lock a reading command (restore, dump) takes: shared, unless --no-lock. */
  readLock(): 'shared' | undefined {
    return this.globals.lock === false ? undefined : 'shared';
  }

  /** Room for every concurrent pack upload plus index, tree and lock requests beside them. */
  private socketOptions(): { maxSockets?: number } {
    const n = this.uploadConcurrency();
    return n !== undefined && n + 4 > 16 ? { maxSockets: n + 4 } : {};
  }

  /** --upload-concurrency N (env LIFEBOAT_UPLOAD_CONCURRENCY): packs uploaded at once, 1–64; default 4. */
  uploadConcurrency(): number | undefined {
    const raw = this.globals.uploadConcurrency ?? process.env.LIFEBOAT_UPLOAD_CONCURRENCY;
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--upload-concurrency ${raw}: must be an integer from 1 to 64`);
    return n;
  }

  retryLockMs(): number {
    if (!this.globals.retryLock) return 0;
    try {
      return parseDuration(this.globals.retryLock);
    } catch (e) {
      throw new UsageError(`--retry-lock: ${(e as Error).message}`);
    }
  }
}

/** LIFEBOAT_S3_TIMEOUT (a duration, default 2m): how long one S3 request may wait for an answer or stay idle. */
function s3OptionsFromEnv(): { requestTimeoutMs?: number } {
  const t = process.env.LIFEBOAT_S3_TIMEOUT;
  if (!t) return {};
  try {
    return { requestTimeoutMs: parseDuration(t) };
  } catch (e) {
    throw new UsageError(`LIFEBOAT_S3_TIMEOUT: ${(e as Error).message}`);
  }
}

/** KDF options for commands that write key files (init, key add, key passwd). */
export interface KdfCliOptions {
  kdfMemory?: string;
  kdfIterations?: string;
}

export function kdfFromOptions(o: KdfCliOptions): KdfParams {
  const params = defaultKdfParams();
  if (o.kdfMemory !== undefined) {
    const mib = Number(o.kdfMemory);
    if (!Number.isInteger(mib) || mib < 8 || mib > 1024) throw new UsageError('--kdf-memory must be an integer between 8 and 1024 (MiB)');
    params.memlimit = mib * 1024 * 1024;
  }
  if (o.kdfIterations !== undefined) {
    const n = Number(o.kdfIterations);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError('--kdf-iterations must be an integer between 1 and 100');
    params.opslimit = n;
  }
  return params;
}

export function addKdfOptions(cmd: Command): Command {
  return cmd
    .option('--kdf-memory <MiB>', 'Argon2id memory for the new key file (default 64)')
    .option('--kdf-iterations <N>', 'Argon2id passes over --kdf-memory for the new key file (default 3, RFC 9106; ≈ 0.09 s here with the system libsodium)');
}
