/** lifeboat's own image properties (`lifeboat:*`), kept within Nova's metadata schema. */
import os from 'node:os';
import type { SnapshotLabels } from '../provider.js';
import { programVersion } from '../../util/version.js';

export const P = {
  instance: 'lifeboat:instance',
  type: 'lifeboat:type',
  reason: 'lifeboat:reason',
  host: 'lifeboat:host',
  timeMs: 'lifeboat:time_ms',
  version: 'lifeboat:version',
} as const;

/** Extra labels the hooks and guard set; empty when not given. */
export const INHERITABLE_EXTRAS = ['trigger', 'packages', 'package_count', 'command'];

/** Nova: keys ^[a-zA-Z0-9-_:. ]{1,255}$, string values of at most 255 characters. */
const KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

export function clip(value: string, max = 255): string {
  const oneLine = value.replace(/[\r\n\t]+/g, ' ');
  return oneLine.length <= max ? oneLine : oneLine.slice(0, max - 1) + '…';
}

export function snapshotMetadata(serverId: string, type: string, labels: SnapshotLabels, timeMs: number): Record<string, string> {
  const md: Record<string, string> = {
    [P.instance]: serverId,
    [P.type]: type,
    [P.reason]: clip(labels.reason),
    [P.host]: clip(os.hostname()),
    [P.timeMs]: String(timeMs),
    [P.version]: programVersion(),
  };
  // always set: a server booted from a lifeboat snapshot inherits the image's properties, and stale
  // ones (another run's package list or command) must not describe this snapshot
  for (const k of INHERITABLE_EXTRAS) md[`lifeboat:${k}`] = '';
  for (const [k, v] of Object.entries(labels.extra ?? {})) {
    const key = `lifeboat:${k}`;
    if (KEY.test(key)) md[key] = clip(v);
  }
  return md;
}

/** `<server>-<type>-20240102T030405Z` (Nova: 1–255 printable characters, no surrounding spaces). */
export function snapshotName(serverName: string, type: string, timeMs: number, explicit?: string): string {
  if (explicit) return clip(explicit.trim());
  const stamp = new Date(timeMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return clip(`${serverName}-${type}-${stamp}`.replace(/[^\x20-\x7e]/g, '_').trim());
}
