/**
 * Finding snapshots the way restic users name them: a full id, a unique id prefix, or
 * `latest`, narrowed by host, tags and paths.
 */
import type { Snapshot } from '../repo/formats.js';

export interface SnapshotEntry {
  id: string;
  snapshot: Snapshot;
}

export interface SnapshotFilter {
  hosts?: string[];
  /** Each entry is a comma-separated group; a snapshot matches when it has every tag of some group. */
  tags?: string[];
  /** A snapshot matches when its paths equal this set (order ignored). */
  paths?: string[];
}

export function matchesFilter(s: Snapshot, f: SnapshotFilter): boolean {
  if (f.hosts && f.hosts.length > 0 && !f.hosts.includes(s.hostname)) return false;
  if (f.tags && f.tags.length > 0) {
    const have = new Set(s.tags);
    const ok = f.tags.some((group) => group.split(',').filter(Boolean).every((t) => have.has(t)));
    if (!ok) return false;
  }
  if (f.paths && f.paths.length > 0) {
    const want = [...f.paths].sort();
    const got = [...s.paths].sort();
    if (want.length !== got.length || want.some((p, i) => p !== got[i])) return false;
  }
  return true;
}

/** Snapshots matching the filter, oldest first (by time, then id). */
export function filterSnapshots(all: SnapshotEntry[], f: SnapshotFilter): SnapshotEntry[] {
  return all
    .filter((e) => matchesFilter(e.snapshot, f))
    .sort((a, b) => Date.parse(a.snapshot.time) - Date.parse(b.snapshot.time) || a.id.localeCompare(b.id));
}

/** Resolves `latest`, an id or a unique id prefix; throws a one-line reason otherwise. */
export function findSnapshot(all: SnapshotEntry[], ref: string, f: SnapshotFilter = {}): SnapshotEntry {
  if (ref === 'latest') {
    const list = filterSnapshots(all, f);
    const last = list[list.length - 1];
    if (!last) throw new Error(`no snapshot found${describeFilter(f)}`);
    return last;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new Error(`invalid snapshot id "${ref}" (an id, a unique id prefix, or latest)`);
  const found = all.filter((e) => e.id.startsWith(ref));
  if (found.length === 0) throw new Error(`no snapshot matches ${ref}`);
  if (found.length > 1) throw new Error(`snapshot id prefix ${ref} is ambiguous (${found.length} matches)`);
  return found[0]!;
}

function describeFilter(f: SnapshotFilter): string {
  const parts: string[] = [];
  if (f.hosts?.length) parts.push(`host ${f.hosts.join(',')}`);
  if (f.tags?.length) parts.push(`tags ${f.tags.join(' or ')}`);
  if (f.paths?.length) parts.push(`paths ${f.paths.join(',')}`);
  return parts.length ? ` for ${parts.join(', ')}` : '';
}
