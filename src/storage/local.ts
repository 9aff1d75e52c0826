/**
 * A repository in a local directory (or a mounted file system). Writes are atomic:
 * a temp file in the target directory is written, fsynced, then renamed (or, for a
 * conditional create, hard-linked, which fails atomically when the name exists), and
 * the directory is fsynced — except for `transient` objects (locks), which skip both fsyncs.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Dirent } from 'node:fs';
import * as path from 'node:path';
import { StorageError } from './errors.js';
import { clampRange, isValidRange } from './types.js';
import type { ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

const TEMP_RE = /\.tmp-[0-9a-f]{16}$/;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

export class LocalStorage implements Storage {
  readonly supportsConditionalPut = true;
  readonly consistentListing = true;
  readonly location: string;

  constructor(readonly root: string) {
    this.root = path.resolve(root);
    this.location = this.root;
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const file = this.path(name);
    if (range !== undefined && !isValidRange(range)) {
      throw new StorageError('invalid', `${this.root}: invalid range ${JSON.stringify(range)} for ${name}`, false);
    }
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      throw await this.error(e, 'read', name);
    }
    try {
      const { size } = await fh.stat();
      const [start, end] = clampRange(size, range);
      const buf = Buffer.allocUnsafe(end - start);
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) break; // truncated under us: return what is there
        done += bytesRead;
      }
      return done === buf.length ? buf : buf.subarray(0, done);
    } catch (e) {
      throw await this.error(e, 'read', name);
    } finally {
      await fh.close();
    }
  }

  async getInto(name: string, offset: number, length: number, buf: Uint8Array): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > buf.length) {
      throw new StorageError('invalid', `${this.root}: invalid range ${offset}+${length} for ${name}`, false);
    }
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.path(name), 'r');
    } catch (e) {
      throw await this.error(e, 'read', name);
    }
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    } catch (e) {
      throw await this.error(e, 'read', name);
    } finally {
      await fh.close();
    }
  }

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const file = this.path(name);
    const dir = path.dirname(file);
    const tmp = `${file}.tmp-${randomBytes(8).toString('hex')}`;
    try {
      await this.writeTemp(tmp, dir, data, !opts.transient);
      if (opts.ifNoneMatch) {
        try {
          await fs.link(tmp, file);
        } finally {
          await fs.unlink(tmp).catch(() => undefined);
        }
      } else {
        await fs.rename(tmp, file);
      }
      if (!opts.transient) await fsyncDir(dir);
    } catch (e) {
      await fs.unlink(tmp).catch(() => undefined);
      if (isErrno(e, 'EEXIST')) {
        throw new StorageError('already-exists', `${this.root}: ${name} already exists`, false, { cause: e });
      }
      throw await this.error(e, 'write', name);
    }
  }

  /**
   * Fsyncs `file` and renames it into place (it must be on this filesystem: spoolDir is), then
   * fsyncs the directory. A file on another filesystem is copied through put instead.
   */
  async putFile(name: string, file: string, size: number): Promise<void> {
    const target = this.path(name);
    const dir = path.dirname(target);
    try {
      const fh = await fs.open(file, 'r');
      try {
        const st = await fh.stat();
        if (st.size !== size) throw new StorageError('invalid', `${this.root}: ${file} holds ${st.size} bytes, not ${size}`, false);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await fs.rename(file, target);
      } catch (e) {
        if (isErrno(e, 'EXDEV')) {
          await this.put(name, await fs.readFile(file));
          return;
        }
        if (!isErrno(e, 'ENOENT')) throw e;
        if (!(await this.exists())) throw e; // reported as no-bucket; never create the root here
        await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
        await fs.rename(file, target);
      }
      await fsyncDir(dir);
    } catch (e) {
      throw await this.error(e, 'write', name);
    }
  }

  /** Packs are spooled in data/ (their names end in .tmp-…, which listings skip). */
  get spoolDir(): string {
    return path.join(this.root, 'data');
  }

  private async writeTemp(tmp: string, dir: string, data: Buffer, sync: boolean): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(tmp, 'wx', FILE_MODE);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
      if (!(await this.exists())) throw e; // reported as no-bucket; never create the root here
      await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
      fh = await fs.open(tmp, 'wx', FILE_MODE);
    }
    try {
      await fh.writeFile(data);
      if (sync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (!(await this.exists())) throw this.noBucket('list', prefix);
    // start at the deepest directory the prefix names fully ("data/ab" -> "data/")
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut + 1);
    yield* this.walk(base, prefix);
  }

  private async *walk(relDir: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.join(this.root, relDir), { withFileTypes: true });
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return;
      throw await this.error(e, 'list', relDir);
    }
    for (const entry of entries) {
      const name = relDir + entry.name;
      if (entry.isDirectory()) {
        const sub = `${name}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(sub, prefix);
      } else if (entry.isFile() && name.startsWith(prefix) && !TEMP_RE.test(name)) {
        const info = await this.stat(name);
        if (info !== null) yield info; // null: deleted while we listed
      }
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await fs.unlink(this.path(name));
    } catch (e) {
      if (isErrno(e, 'ENOENT') && (await this.exists())) return;
      throw await this.error(e, 'delete', name);
    }
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    try {
      const st = await fs.stat(this.path(name));
      if (!st.isFile()) return null;
      return { name, size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
    } catch (e) {
      if ((isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) && (await this.exists())) return null;
      throw await this.error(e, 'stat', name);
    }
  }

  async exists(): Promise<boolean> {
    try {
      return (await fs.stat(this.root)).isDirectory();
    } catch {
      return false;
    }
  }

  async create(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true, mode: DIR_MODE });
    } catch (e) {
      throw await this.error(e, 'create', '');
    }
  }

  async close(): Promise<void> {}

  private path(name: string): string {
    if (
      name === '' ||
      name.startsWith('/') ||
      name.includes('\\') ||
      name.includes('\0') ||
      name.split('/').some((p) => p === '' || p === '.' || p === '..')
    ) {
      throw new StorageError('invalid', `${this.root}: invalid object name ${JSON.stringify(name)}`, false);
    }
    return path.join(this.root, name);
  }

  private noBucket(op: string, name: string): StorageError {
    return new StorageError('no-bucket', `local repository ${this.root} does not exist (${op} ${name})`, false);
  }

  /** Maps a file system error to a one-line StorageError naming the repository and object. */
  private async error(e: unknown, op: string, name: string): Promise<StorageError> {
    if (e instanceof StorageError) return e;
    const code = errnoCode(e);
    const what = `${this.root}: cannot ${op} ${name}`;
    const detail = `${code ?? 'error'}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
        if (!(await this.exists())) return this.noBucket(op, name);
        return new StorageError('not-found', `${this.root}: ${name} does not exist`, false, { cause: e });
      case 'ENOSPC':
      case 'EDQUOT':
        return new StorageError('no-space', `${what}: no space left on device (${code})`, false, { cause: e });
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new StorageError('access-denied', `${what}: ${detail}`, false, { cause: e });
      case 'EAGAIN':
      case 'EBUSY':
      case 'EINTR':
      case 'EMFILE':
      case 'ENFILE':
        return new StorageError('transient', `${what}: ${detail}`, true, { cause: e });
      default:
        return new StorageError('invalid', `${what}: ${detail}`, false, { cause: e });
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function isErrno(e: unknown, code: string): boolean {
  return errnoCode(e) === code;
}
