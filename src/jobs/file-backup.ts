/** A file backup as a job: the archiver over some paths, with tags, for callers other than `lifeboat backup`. */
import type { Repository } from '../repo/repository.js';
import { Archiver, type BackupResult } from '../engine/archiver.js';

export interface FileBackupJobOptions {
  tags: string[];
  hostname?: string;
  excludes?: string[];
  /** a path that could not be read (left out; the snapshot is then incomplete) */
  onError?: (path: string, reason: string) => void;
}

export async function runFileBackup(repo: Repository, paths: string[], o: FileBackupJobOptions): Promise<BackupResult> {
  const archiver = new Archiver(repo, {
    tags: o.tags,
    ...(o.hostname ? { hostname: o.hostname } : {}),
    ...(o.excludes ? { excludes: { exclude: o.excludes } } : {}),
    ...(o.onError ? { onError: o.onError } : {}),
  });
  return archiver.backup(paths);
}
