/**
 * The rollback point taken before a package upgrade (what the apt/dnf hooks and `guard` call): an
 * instance snapshot of type `pre-upgrade` and/or a quick file backup of what an upgrade changes
 * (/etc, the package database, a software manifest), tagged `pre-upgrade`. Both parts are attempted;
 * the result says which worked. The file part needs no cloud at all.
 */
import path from 'node:path';
import type { Repository } from '../repo/repository.js';
import type { CreateSnapshotResult, InstanceSnapshotProvider } from '../cloud/provider.js';
import { CloudError } from '../cloud/errors.js';
import { runFileBackup } from './file-backup.js';
import { defaultUpgradePaths, writeSoftwareManifest } from './software-manifest.js';

export type PreUpgradeMode = 'snapshot' | 'files' | 'both';

export interface PreUpgradeOptions {
  mode: PreUpgradeMode;
  /** false when the mode is only the default: a missing cloud / repository then skips that part */
  modeExplicit: boolean;
  reason: string;
  /** extra lifeboat:* labels on the instance snapshot (command, packages, ...) */
  labels?: Record<string, string>;
  /** the transaction about to run, one package per line (recorded in the manifest) */
  transaction?: string[];
  rotation: number;
  wait: boolean;
  timeoutMs: number;
  /** file paths (default /etc + the package database) */
  paths?: string[];
  /** where the software manifest is written (it is backed up from there) */
  stateDir: string;
  openProvider: () => InstanceSnapshotProvider;
  /** null when no repository is configured */
  withRepository: (<T>(fn: (repo: Repository) => Promise<T>) => Promise<T>) | null;
  onProgress?: (line: string) => void;
  onFileError?: (path: string, reason: string) => void;
}

export interface PreUpgradeResult {
  ok: boolean;
  snapshot: CreateSnapshotResult | null;
  snapshotError: string | null;
  files: { snapshotId: string; incomplete: boolean; paths: string[] } | null;
  filesError: string | null;
  skipped: string[];
}

function isNoCloud(e: unknown): boolean {
  return e instanceof CloudError && (e.kind === 'not-openstack' || (e.kind === 'config' && /no OpenStack cloud configured/.test(e.message)));
}

export async function runPreUpgrade(o: PreUpgradeOptions): Promise<PreUpgradeResult> {
  const r: PreUpgradeResult = { ok: true, snapshot: null, snapshotError: null, files: null, filesError: null, skipped: [] };
  const wantSnapshot = o.mode === 'snapshot' || o.mode === 'both';
  const wantFiles = o.mode === 'files' || o.mode === 'both';

  if (wantFiles) {
    if (!o.withRepository) {
      if (o.modeExplicit) r.filesError = 'no repository configured for the pre-upgrade file backup';
      else r.skipped.push('files (no repository configured)');
    } else {
      try {
        const manifestDir = path.join(o.stateDir, 'software-manifest');
        writeSoftwareManifest(manifestDir, o.transaction ?? []);
        const paths = [...new Set([...(o.paths ?? defaultUpgradePaths()), manifestDir])];
        o.onProgress?.(`backing up ${paths.join(', ')}`);
        const res = await o.withRepository((repo) =>
          runFileBackup(repo, paths, { tags: ['pre-upgrade'], ...(o.onFileError ? { onError: o.onFileError } : {}) }),
        );
        r.files = { snapshotId: res.snapshotId ?? '', incomplete: res.summary.incomplete, paths };
      } catch (e) {
        r.filesError = (e as Error).message;
      }
    }
  }

  if (wantSnapshot) {
    try {
      const provider = o.openProvider();
      r.snapshot = await provider.create({
        type: 'pre-upgrade',
        rotation: o.rotation,
        labels: { reason: o.reason, extra: o.labels ?? {} },
        wait: o.wait,
        timeoutMs: o.timeoutMs,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
    } catch (e) {
      if (!o.modeExplicit && isNoCloud(e)) r.skipped.push(`instance snapshot (${(e as Error).message})`);
      else r.snapshotError = (e as Error).message;
    }
  }
  r.ok = !r.snapshotError && !r.filesError && (r.snapshot !== null || r.files !== null);
  if (!r.snapshot && !r.files && !r.snapshotError && !r.filesError) {
    r.snapshotError = `nothing could be saved: ${r.skipped.join('; ')}`;
  }
  return r;
}

/** One line for logs and hooks. */
export function describePreUpgrade(r: PreUpgradeResult): string[] {
  const lines: string[] = [];
  if (r.snapshot) {
    const s = r.snapshot.snapshot;
    lines.push(`instance snapshot ${s.id} "${s.name}" (${s.kind}-backed): ${r.snapshot.complete ? 'complete' : `${s.status}, completing in the cloud`}`);
  }
  if (r.files) lines.push(`file backup: snapshot ${r.files.snapshotId.slice(0, 8)}${r.files.incomplete ? ' (incomplete: some files unreadable)' : ''} of ${r.files.paths.join(', ')}`);
  for (const s of r.skipped) lines.push(`skipped: ${s}`);
  return lines;
}
