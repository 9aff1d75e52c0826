/**
 * Backup of one byte stream as a single file: stdin (`--stdin`) or a command's stdout
 * (`--stdin-from-command`). The file is stored as /NAME (intermediate directories made up when
 * NAME has slashes). For a command, its exit status decides: non-zero or killed means an
 * error, and no snapshot is written.
 */
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import os from 'node:os';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/formats.js';
import { SealPool } from '../repo/seal-pool.js';
import { storeStream } from '../repo/write-path.js';
import { rfc3339Nanos } from '../util/time.js';
import { programVersion } from '../util/version.js';
import { toHex } from '../util/hex.js';
import type { TreeNode } from './tree.js';
import { Archiver, summaryRecord, type BackupResult } from './archiver.js';
import { groupName, userName } from './owners.js';

export interface StreamBackupOptions {
  hostname?: string;
  tags?: string[];
  dryRun?: boolean;
  workers?: number;
  time?: Date;
  /** Told the bytes read so far. */
  onBytes?: (n: number) => void;
}

export interface StreamSource {
  stream: AsyncIterable<Buffer | Uint8Array>;
  /** Resolves when the producer finished well; rejects (with the reason) when it failed. */
  done: Promise<void>;
  /** Stops the producer (on our own failure). */
  abort?: () => void;
  info: Snapshot['source'];
}

export interface CommandSourceOptions {
  /** Where the command's stderr goes (default: ours). */
  stderr?: NodeJS.WritableStream;
  /** The command's environment (default: ours). */
  env?: NodeJS.ProcessEnv;
  /** Kill the command (SIGTERM, then SIGKILL 10 s later) and fail when it runs longer. */
  timeoutMs?: number;
  /** How messages name the command (default: argv[0]). */
  label?: string;
  /** Added to the message when the command does not exist, e.g. "install the Debian package X". */
  notFoundHint?: string;
  /** The snapshot's `source` (default: {type: 'command', command: argv}). */
  info?: Snapshot['source'];
  /** Run the command as this user and group (needs root), in this directory. */
  uid?: number;
  gid?: number;
  cwd?: string;
}

/** A command's stdout as a stream; its stderr goes to ours, the last lines kept for the error. */
export function commandSource(argv: string[], opts: CommandSourceOptions = {}): StreamSource {
  if (argv.length === 0) throw new Error('--stdin-from-command needs a command after --');
  const label = opts.label ?? argv[0]!;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, uid: opts.uid, gid: opts.gid, cwd: opts.cwd });
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    killTimer.unref();
  }, opts.timeoutMs);
  timer?.unref();
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    (opts.stderr ?? process.stderr).write(d);
    tail = (tail + d.toString('utf8')).slice(-4096);
  });
  const lastLines = () => {
    const lines = tail.trimEnd().split('\n').slice(-5).join(' | ');
    return lines ? `: ${lines}` : '';
  };
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new Error(missing ? `${label}: command not found${opts.notFoundHint ? ` (${opts.notFoundHint})` : ''}` : `command ${label} could not be started: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      if (timedOut) reject(new Error(`command ${label} timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s and was stopped${lastLines()}`));
      else if (signal) reject(new Error(`command ${label} was killed by ${signal}${lastLines()}`));
      else if (code !== 0) reject(new Error(`command ${label} exited with status ${code}${lastLines()}`));
      else resolve();
    });
  });
  done.catch(() => undefined);
  // read at once (with back-pressure): an unread stdout of a command that exits early loses its data
  const stream = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
  child.stdout!.pipe(stream);
  return {
    stream,
    done,
    abort: () => void child.kill('SIGTERM'),
    info: opts.info ?? { type: 'command', command: argv },
  };
}

export function stdinSource(): StreamSource {
  return { stream: process.stdin, done: Promise.resolve(), info: { type: 'stdin' } };
}

/** Backs up one stream as /NAME; throws (and writes no snapshot) when the source failed. */
export async function backupStream(repo: Repository, name: string, source: StreamSource, opts: StreamBackupOptions = {}): Promise<BackupResult> {
  const parts = name.split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..')) throw new Error(`invalid --stdin-filename "${name}"`);
  const started = Date.now();
  const archiver = new Archiver(repo, { dryRun: opts.dryRun });
  const s = archiver.summary;
  const pool = opts.dryRun ? null : await SealPool.create({ encryption: repo.keys.encryption, blobId: repo.keys.blobId }, opts.workers === undefined ? {} : { workers: opts.workers });
  let treeId: string;
  const nowNs = BigInt(started) * 1_000_000n;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const meta = { uid, gid, user: userName(uid), group: groupName(gid), mtimeNs: nowNs, ctimeNs: nowNs };
  try {
    let size = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const piece of source.stream) {
        const b = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
        size += b.length;
        opts.onBytes?.(size);
        yield b;
      }
    }
    let ids: string[];
    try {
      if (pool) {
        const r = await storeStream(repo, pool, counted());
        ids = r.ids.map(toHex);
        s.dataAdded += r.newBytes;
        s.dataAddedPacked += r.storedBytes;
        s.dataBlobs += r.newChunks;
      } else {
        const r = await archiver.sink()(counted());
        ids = r.ids.map(toHex);
        s.dataAdded += r.newBytes;
      }
    } catch (e) {
      source.abort?.();
      await source.done.catch(() => undefined);
      throw e;
    }
    await source.done;
    const file: TreeNode = { name: Buffer.from(parts[parts.length - 1]!), type: 'file', mode: 0o100644, ...meta, size, content: ids };
    let id = await archiver.saveTree([file]);
    for (let i = parts.length - 2; i >= 0; i--) {
      id = await archiver.saveTree([{ name: Buffer.from(parts[i]!), type: 'dir', mode: 0o40755, ...meta, subtree: id }]);
    }
    treeId = id;
    s.filesNew = 1;
    s.filesRead = 1;
    s.totalFilesProcessed = 1;
    s.totalBytesProcessed = size;
    s.bytesRead = size;
    if (pool) await repo.flush();
  } finally {
    await pool?.close();
  }
  s.totalDurationMs = Date.now() - started;
  const snapshot: Snapshot = {
    version: 1,
    time: rfc3339Nanos(BigInt((opts.time ?? new Date(started)).getTime()) * 1_000_000n),
    tree: treeId,
    paths: ['/' + parts.join('/')],
    hostname: opts.hostname ?? os.hostname(),
    username: os.userInfo().username,
    uid,
    gid,
    tags: opts.tags ?? [],
    source: source.info,
    summary: summaryRecord(s),
    program_version: `lifeboat ${programVersion()}`,
  };
  const snapshotId = opts.dryRun ? null : await repo.saveSnapshot(snapshot);
  return { snapshotId, snapshot, summary: s };
}
