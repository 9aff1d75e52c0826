/** The instance-snapshot provider for this VM, from lifeboat's config (only OpenStack today). */
import type { LifeboatConfig } from '../config/schema.js';
import type { InstanceSnapshotProvider } from './provider.js';
import { openOpenStack } from './openstack/index.js';
import { parseDuration } from '../util/duration.js';
import { CloudError } from './errors.js';

export interface SnapshotDefaults {
  rotation: number;
  wait: boolean;
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/** raymii's create-snapshot.sh default */
export const DEFAULT_ROTATION = 7;
export const PRE_UPGRADE_ROTATION = 3;

export function openProvider(config: { file: string; config: LifeboatConfig } | null, debug?: (l: string) => void): InstanceSnapshotProvider {
  return openOpenStack(config?.config.cloud, {
    ...(config ? { configDir: config.file.replace(/\/[^/]*$/, '') || '/' } : {}),
    ...(debug ? { debug } : {}),
  });
}

/** Rotation, wait and timeout for a snapshot type: flags > `instance_snapshots.rotations.<type>` (or pre_upgrade) > defaults. */
export function snapshotDefaults(config: LifeboatConfig | undefined, type: string): SnapshotDefaults {
  const is = config?.instance_snapshots;
  const named = is?.rotations?.[type];
  const pre = type === 'pre-upgrade' ? is?.pre_upgrade : undefined;
  const timeoutText = named?.timeout ?? pre?.timeout;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (timeoutText) {
    try {
      timeoutMs = parseDuration(timeoutText);
    } catch (e) {
      throw new CloudError('config', `instance_snapshots timeout: ${(e as Error).message}`);
    }
  }
  return {
    rotation: named?.rotation ?? pre?.rotation ?? (type === 'pre-upgrade' ? PRE_UPGRADE_ROTATION : DEFAULT_ROTATION),
    // before an upgrade the point in time exists only once the snapshot is done: wait by default
    wait: named?.wait ?? pre?.wait ?? type === 'pre-upgrade',
    timeoutMs,
  };
}
