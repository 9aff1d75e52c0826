/**
 * Whole-instance snapshots, independent of the cloud: what a provider (OpenStack today) offers the
 * commands, the hooks and, later, the agent. `cloud` knows nothing of the repository.
 */

/** Metadata lifeboat stores on every instance snapshot (string values, at most 255 characters each). */
export interface SnapshotLabels {
  /** Why the snapshot was taken: "manual", "pre-upgrade", "guard", a schedule name, ... */
  reason: string;
  /** Extra key/values (without the `lifeboat:` prefix), e.g. `command`, `packages`. */
  extra?: Record<string, string>;
}

export interface CreateSnapshotOptions {
  /** The rotation group ("backup type"): daily, weekly, pre-upgrade, manual ... */
  type: string;
  /** How many snapshots of this type to keep (0 keeps none, as Nova does). */
  rotation: number;
  /** Snapshot name (default: `<server>-<type>-<UTC time>`). */
  name?: string;
  labels: SnapshotLabels;
  /** Block until the snapshot is complete (image active, task_state null / volume snapshots available). */
  wait: boolean;
  /** Give up after this many ms (busy server, waiting). */
  timeoutMs: number;
  /** Progress lines for the user. */
  onProgress?: (line: string) => void;
}

export interface InstanceSnapshot {
  id: string;
  name: string;
  /** image status (queued, saving, active, killed, ...) */
  status: string;
  type: string | null;
  reason: string | null;
  /** ms timestamp lifeboat recorded, or the cloud's created_at */
  createdAt: string;
  protected: boolean;
  /** image-backed (one disk image) or volume-backed (Cinder snapshots referenced by the image) */
  kind: 'image' | 'volume';
  /** Cinder snapshot ids (volume-backed) */
  volumeSnapshots: string[];
  size: number | null;
  metadata: Record<string, string>;
}

export interface CreateSnapshotResult {
  snapshot: InstanceSnapshot;
  serverId: string;
  /** true when the snapshot is known to be complete (only with wait) */
  complete: boolean;
  /** Images the rotation deleted, and those it had to keep (busy volume snapshot, protected, ...). */
  rotated: string[];
  keptBusy: string[];
  warnings: string[];
}

export interface DeleteResult {
  id: string;
  deleted: boolean;
  /** volume snapshots deleted first (volume-backed) */
  volumeSnapshotsDeleted: string[];
  /** why the image was kept, when it was */
  keptBecause?: string;
}

/** The interface a cloud implements so the commands can snapshot "this VM". */
export interface InstanceSnapshotProvider {
  /** Short cloud description for messages, e.g. `openstack cloud "mycloud"`. */
  readonly describe: string;
  create(opts: CreateSnapshotOptions): Promise<CreateSnapshotResult>;
  list(opts?: { type?: string }): Promise<InstanceSnapshot[]>;
  delete(id: string, opts?: { timeoutMs?: number }): Promise<DeleteResult>;
  setProtected(id: string, value: boolean): Promise<InstanceSnapshot>;
  /** The exact commands that restore this snapshot (lifeboat never rebuilds its own VM). */
  restoreHelp(id: string): Promise<string[]>;
}
