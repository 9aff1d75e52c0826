/**
 * Instance snapshots of this VM on OpenStack.
 *
 * - image-backed servers: Nova `createBackup` (backup_type + rotation; Nova rotates after upload);
 * - boot-from-volume servers (Nova refuses createBackup with 400): `createImage`, which snapshots
 *   every attached volume in Cinder and makes a 0-byte image listing them; lifeboat rotates these
 *   itself: the Cinder snapshots are deleted first (and confirmed gone), then the image — an image
 *   whose snapshots cannot be deleted (busy) is kept, since it is their only index.
 * - a busy server (task_state set, 409) is waited for and retried within the timeout.
 */
import type {
  CreateSnapshotOptions,
  CreateSnapshotResult,
  DeleteResult,
  InstanceSnapshot,
  InstanceSnapshotProvider,
} from '../provider.js';
import { CloudError } from '../errors.js';
import { errorMessage } from './http.js';
import { execFile } from 'node:child_process';
import type { KeystoneSession } from './keystone.js';
import { Nova, type NovaServer } from './nova.js';
import { Glance, type GlanceImage } from './glance.js';
import { Cinder } from './cinder.js';
import { discoverServerId, type SelfIdOptions } from './self-id.js';
import { P, snapshotMetadata, snapshotName } from './labels.js';

export interface OpenStackProviderOptions {
  /** poll interval while waiting (default 5 s) */
  pollMs: number;
  /** timeout of the createImage request itself (volume-backed createImage is synchronous; default 180 s) */
  actionTimeoutMs: number;
  selfId: SelfIdOptions;
  debug?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Flush the guest's dirty pages before the hypervisor takes the disk (best effort, bounded). */
function syncDisks(): Promise<void> {
  return new Promise((resolve) => {
    execFile('sync', { timeout: 60_000 }, () => resolve());
  });
}

/** An image still queued/saving this long after Nova's task_state went back to null has failed. */
const STALLED_GRACE_MS = 60_000;

/** nova/compute/api.py: backup/snapshot are allowed in these vm_states (with task_state null). */
const SNAPSHOT_VM_STATES = ['active', 'stopped', 'paused', 'suspended'];

/** Cinder snapshot ids referenced by a volume-backed image's block_device_mapping (a JSON string in Glance v2). */
export function bdmSnapshotIds(img: GlanceImage): string[] {
  const raw = img.block_device_mapping;
  if (raw === undefined || raw === null || raw === '') return [];
  let list: unknown;
  try {
    list = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list
    .filter((b): b is { source_type: string; snapshot_id: string } => !!b && typeof b === 'object' && (b as { source_type?: unknown }).source_type === 'snapshot' && typeof (b as { snapshot_id?: unknown }).snapshot_id === 'string')
    .map((b) => b.snapshot_id);
}

const isVolumeImage = (img: GlanceImage) => img.bdm_v2 === 'True' || img.bdm_v2 === true || bdmSnapshotIds(img).length > 0;

function timeOf(img: GlanceImage): number {
  const ms = Number(img[P.timeMs]);
  return Number.isFinite(ms) && ms > 0 ? ms : Date.parse(img.created_at);
}

export function toSnapshot(img: GlanceImage): InstanceSnapshot {
  const md: Record<string, string> = {};
  for (const [k, v] of Object.entries(img)) if (k.startsWith('lifeboat:') && typeof v === 'string') md[k] = v;
  const volume = isVolumeImage(img);
  return {
    id: img.id,
    name: img.name ?? '',
    status: img.status,
    type: (img[P.type] as string | undefined) ?? (typeof img.backup_type === 'string' ? img.backup_type : null),
    reason: (img[P.reason] as string | undefined) ?? null,
    createdAt: new Date(timeOf(img)).toISOString(),
    protected: !!img.protected,
    kind: volume ? 'volume' : 'image',
    volumeSnapshots: bdmSnapshotIds(img),
    size: typeof img.size === 'number' ? img.size : null,
    metadata: md,
  };
}

export class OpenStackProvider implements InstanceSnapshotProvider {
  readonly nova: Nova;
  readonly glance: Glance;
  readonly cinder: Cinder;
  private serverCache: NovaServer | null = null;

  constructor(
    readonly ks: KeystoneSession,
    readonly opts: OpenStackProviderOptions,
  ) {
    this.nova = new Nova(ks);
    this.glance = new Glance(ks);
    this.cinder = new Cinder(ks);
  }

  get describe(): string {
    return this.ks.where;
  }

  private err(kind: ConstructorParameters<typeof CloudError>[0], msg: string, status?: number): CloudError {
    return new CloudError(kind, `${this.ks.where}: ${msg}`, status);
  }

  /** This VM's server, found by discovery (or config) and confirmed with GET /servers/{id}. */
  async server(): Promise<NovaServer> {
    if (this.serverCache) return (this.serverCache = await this.nova.getServer(this.serverCache.id));
    let id = this.ks.cloud.serverId;
    if (!id) {
      const found = await discoverServerId({ ...this.opts.selfId, ...(this.opts.debug ? { debug: this.opts.debug } : {}) });
      if (!found) {
        throw new CloudError(
          'not-openstack',
          `${this.ks.where}: cannot find this VM's server id (no metadata service, config drive, OpenStack DMI UUID or cloud-init id): set cloud.server_id in lifeboat's config`,
        );
      }
      this.opts.debug?.(`server id ${found.id} from the ${found.source}`);
      id = found.id;
    }
    this.serverCache = await this.nova.getServer(id);
    return this.serverCache;
  }

  /** Waits until the server's task_state is null; returns the server. */
  private async waitIdle(deadline: number, onProgress?: (l: string) => void): Promise<NovaServer> {
    let said = '';
    for (;;) {
      const s = await this.server();
      const ts = s['OS-EXT-STS:task_state'] ?? null;
      const vm = s['OS-EXT-STS:vm_state'];
      if (ts === null && vm && !SNAPSHOT_VM_STATES.includes(vm)) {
        throw this.err('conflict', `server ${s.id} is in vm_state ${vm} (status ${s.status}): Nova snapshots only active, stopped, paused or suspended servers`);
      }
      if (ts === null) return s;
      if (Date.now() >= deadline) {
        throw this.err('timeout', `server ${s.id} stayed busy (task_state ${ts}) until the timeout`);
      }
      if (said !== ts) onProgress?.(`server busy (task_state ${ts}), waiting`);
      said = ts;
      await sleep(Math.min(this.opts.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  async create(o: CreateSnapshotOptions): Promise<CreateSnapshotResult> {
    const deadline = Date.now() + o.timeoutMs;
    const warnings: string[] = [];
    let server = await this.waitIdle(deadline, o.onProgress);
    let volumeBacked = !server.image || typeof server.image !== 'object' || !server.image.id;
    const timeMs = Date.now();
    const name = snapshotName(server.name, o.type, timeMs, o.name);
    const metadata = snapshotMetadata(server.id, o.type, o.labels, timeMs);

    let imageId: string | undefined;
    for (let attempt = 0; ; attempt++) {
      await syncDisks();
      const body = volumeBacked
        ? { createImage: { name, metadata } }
        : { createBackup: { name, backup_type: o.type, rotation: o.rotation, metadata } };
      const action = volumeBacked ? 'createImage' : 'createBackup';
      const res = await this.nova.action(server.id, body, this.opts.actionTimeoutMs);
      if (res.status === 202 || res.status === 200) {
        imageId = Nova.imageIdFrom(res);
        o.onProgress?.(`${action} accepted for server ${server.id}${imageId ? `: image ${imageId}` : ''}`);
        break;
      }
      if (res.status === 400 && !volumeBacked && /volume-backed/i.test(errorMessage(res))) {
        // the server's image said image-backed, Nova says otherwise: use createImage
        volumeBacked = true;
        continue;
      }
      if (res.status === 409) {
        if (/vm_state/.test(errorMessage(res))) throw this.ks.fail('Nova', action, res);
        if (Date.now() >= deadline) throw this.ks.fail('Nova', `${action} (server still busy at the timeout)`, res);
        o.onProgress?.(`server busy (409: ${errorMessage(res)}), retrying`);
        await sleep(Math.min(this.opts.pollMs * Math.min(1 + attempt, 4), Math.max(0, deadline - Date.now())));
        server = await this.waitIdle(deadline, o.onProgress);
        continue;
      }
      throw this.ks.fail('Nova', `${action} for server ${server.id}`, res);
    }
    if (volumeBacked && o.rotation === 0) warnings.push('rotation 0 keeps no snapshot of this type: the new one is deleted too (as Nova does)');
    if (!volumeBacked && (server['os-extended-volumes:volumes_attached']?.length ?? 0) > 0) {
      warnings.push('attached volumes are not part of an image-backed snapshot (root disk only)');
    }
    if (!imageId) imageId = await this.findNew(server.id, timeMs, deadline);

    let img: GlanceImage | null = await this.glance.get(imageId);
    if (!img && !(o.rotation === 0 && !volumeBacked)) throw this.err('failed', `the new image ${imageId} disappeared (Nova deletes it when the snapshot fails)`);
    let complete = false;
    const result: CreateSnapshotResult = {
      snapshot: img ? toSnapshot(img) : { ...toSnapshot({ id: imageId, name, status: 'deleted', protected: false, size: null, created_at: new Date(timeMs).toISOString(), ...metadata }) },
      serverId: server.id,
      complete,
      rotated: [],
      keptBusy: [],
      warnings,
    };
    if (volumeBacked) {
      // the guest may still be frozen: always wait for the Cinder snapshots before rotating or returning
      img = await this.waitVolumeSnapshots(img!, deadline, o.onProgress);
      complete = true;
      const r = await this.rotateOwn(server, o.type, o.rotation, deadline, o.onProgress);
      result.rotated = r.deleted;
      result.keptBusy = r.kept;
      const after = await this.glance.get(imageId);
      result.snapshot = after ? toSnapshot(after) : { ...toSnapshot(img), status: 'deleted' };
    } else if (o.wait) {
      const done = await this.waitImageBacked(server.id, imageId, o.rotation, deadline, o.onProgress);
      complete = true;
      if (done) result.snapshot = toSnapshot(done);
      else result.snapshot = { ...result.snapshot, status: 'deleted' };
    }
    result.complete = complete;
    return result;
  }

  /** Below 2.45 without a Location (rotation 0): find the new image by our own properties. */
  private async findNew(serverId: string, timeMs: number, deadline: number): Promise<string> {
    for (;;) {
      const imgs = await this.glance.list({ [P.instance]: serverId, [P.timeMs]: String(timeMs) });
      if (imgs[0]) return imgs[0].id;
      if (Date.now() >= deadline) throw this.err('timeout', 'the new image did not appear in Glance');
      await sleep(this.opts.pollMs);
    }
  }

  /** Image-backed: image `active` and the server's task_state null. Returns null when rotation 0 deleted it. */
  private async waitImageBacked(serverId: string, imageId: string, rotation: number, deadline: number, onProgress?: (l: string) => void): Promise<GlanceImage | null> {
    let last = '';
    let sawActive: GlanceImage | null = null;
    let idleSince = 0;
    for (;;) {
      const img = await this.glance.get(imageId);
      if (!img) {
        if (rotation === 0 && sawActive) return null;
        if (rotation === 0) {
          const s = await this.nova.getServer(serverId);
          if ((s['OS-EXT-STS:task_state'] ?? null) === null) return null;
        } else {
          throw this.err('failed', `image ${imageId} was deleted while uploading (the snapshot failed in Nova)`);
        }
      } else if (img.status === 'killed' || img.status === 'deleted' || img.status === 'pending_delete' || img.status === 'deactivated') {
        throw this.err('failed', `image ${imageId} went to ${img.status}: the snapshot failed`);
      } else {
        if (img.status !== last) onProgress?.(`image ${imageId}: ${img.status}`);
        last = img.status;
        const s = await this.nova.getServer(serverId);
        const idle = (s['OS-EXT-STS:task_state'] ?? null) === null;
        if (img.status === 'active') {
          sawActive = img;
          if (idle) return img;
        } else if (idle) {
          // Nova is done with the server but the image never became active
          idleSince ||= Date.now();
          if (Date.now() - idleSince > Math.min(STALLED_GRACE_MS, this.opts.pollMs * 20)) {
            throw this.err('failed', `image ${imageId} is still ${img.status} but Nova finished with the server: the snapshot failed`);
          }
        } else idleSince = 0;
      }
      if (Date.now() >= deadline) throw this.err('timeout', `image ${imageId} not complete at the timeout (status ${img?.status ?? 'gone'})`);
      await sleep(Math.min(this.opts.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /** Volume-backed: every Cinder snapshot the image references is `available`. */
  private async waitVolumeSnapshots(img: GlanceImage, deadline: number, onProgress?: (l: string) => void): Promise<GlanceImage> {
    const ids = bdmSnapshotIds(img);
    if (ids.length === 0) throw this.err('failed', `image ${img.id} of a volume-backed server references no volume snapshot`);
    const pending = new Set(ids);
    for (;;) {
      for (const id of [...pending]) {
        const s = await this.cinder.getSnapshot(id);
        if (!s) throw this.err('failed', `volume snapshot ${id} of image ${img.id} disappeared`);
        if (s.status === 'available') {
          pending.delete(id);
          onProgress?.(`volume snapshot ${id} (volume ${s.volume_id}) available`);
        } else if (s.status === 'error' || s.status === 'error_deleting' || s.status === 'deleting') {
          throw this.err('failed', `volume snapshot ${id} of image ${img.id} went to ${s.status}`);
        }
      }
      if (pending.size === 0) return img;
      if (Date.now() >= deadline) throw this.err('timeout', `volume snapshots ${[...pending].join(', ')} not available at the timeout`);
      await sleep(Math.min(this.opts.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /** lifeboat's images of this server and type, newest first (ms timestamps: Glance's created_at has 1 s resolution). */
  private async ownImages(serverId: string, type?: string): Promise<GlanceImage[]> {
    const imgs = await this.glance.list({ [P.instance]: serverId, ...(type ? { [P.type]: type } : {}) });
    return imgs.sort((a, b) => timeOf(b) - timeOf(a));
  }

  /**
   * lifeboat's rotation for volume-backed snapshots, with Nova's semantics: keep the newest
   * `rotation` of this (server, type) — protected images count and are skipped — and delete the rest.
   */
  private async rotateOwn(server: NovaServer, type: string, rotation: number, deadline: number, onProgress?: (l: string) => void): Promise<{ deleted: string[]; kept: string[] }> {
    const imgs = (await this.ownImages(server.id, type)).filter(isVolumeImage);
    const excess = imgs.slice(rotation);
    const deleted: string[] = [];
    const kept: string[] = [];
    const myVolumes = new Set((server['os-extended-volumes:volumes_attached'] ?? []).map((v) => v.id));
    for (const img of excess.reverse()) {
      if (img.protected) {
        onProgress?.(`rotation: keeping protected image ${img.id}`);
        kept.push(img.id);
        continue;
      }
      const r = await this.deleteVolumeImage(img, deadline, myVolumes, onProgress);
      if (r.deleted) deleted.push(img.id);
      else kept.push(img.id);
    }
    return { deleted, kept };
  }

  /**
   * Deletes a volume-backed image's Cinder snapshots (each confirmed gone), then the image. Keeps
   * the image when a snapshot cannot be deleted (busy: it would lose the only index of the data).
   * With `myVolumes`, snapshots of other servers' volumes (inherited lifeboat properties) are not touched.
   */
  private async deleteVolumeImage(img: GlanceImage, deadline: number, myVolumes: Set<string> | null, onProgress?: (l: string) => void): Promise<DeleteResult> {
    const snaps = bdmSnapshotIds(img);
    const done: string[] = [];
    const pending = new Map<string, number>();
    for (const id of snaps) {
      const s = await this.cinder.getSnapshot(id);
      if (!s) {
        done.push(id);
        continue;
      }
      if (myVolumes && myVolumes.size > 0 && !myVolumes.has(s.volume_id)) {
        return { id: img.id, deleted: false, volumeSnapshotsDeleted: done, keptBecause: `volume snapshot ${id} belongs to volume ${s.volume_id}, not one of this server's` };
      }
      const r = await this.cinder.deleteSnapshot(id);
      if (r.result === 'gone') done.push(id);
      else if (r.result === 'refused') {
        onProgress?.(`keeping image ${img.id}: ${r.reason}`);
        return { id: img.id, deleted: false, volumeSnapshotsDeleted: done, keptBecause: r.reason };
      } else pending.set(id, 0);
    }
    // Cinder deletes asynchronously: poll to 404; a busy (Ceph clone) snapshot goes back to available
    while (pending.size > 0) {
      await sleep(Math.min(this.opts.pollMs, Math.max(0, deadline - Date.now())));
      for (const [id, polls] of [...pending]) {
        const s = await this.cinder.getSnapshot(id);
        if (!s) {
          pending.delete(id);
          done.push(id);
          onProgress?.(`volume snapshot ${id} deleted`);
        } else if (s.status === 'available' || s.status === 'error_deleting' || (s.status === 'error' && polls > 0)) {
          const why = s.status === 'available' ? 'is busy (in use by a clone or volume); it stays, and so does the image' : `went to ${s.status}`;
          onProgress?.(`keeping image ${img.id}: volume snapshot ${id} ${why}`);
          return { id: img.id, deleted: false, volumeSnapshotsDeleted: done, keptBecause: `volume snapshot ${id} ${why}` };
        } else pending.set(id, polls + 1);
      }
      if (pending.size > 0 && Date.now() >= deadline) {
        return { id: img.id, deleted: false, volumeSnapshotsDeleted: done, keptBecause: `volume snapshots ${[...pending.keys()].join(', ')} still deleting at the timeout` };
      }
    }
    const d = await this.glance.delete(img.id);
    if (!d.ok) return { id: img.id, deleted: false, volumeSnapshotsDeleted: done, keptBecause: d.reason };
    onProgress?.(`image ${img.id} deleted`);
    return { id: img.id, deleted: true, volumeSnapshotsDeleted: done };
  }

  /** An image of this server (lifeboat's, or a Nova backup/snapshot of it); refuses any other image. */
  private async ownedImage(id: string): Promise<{ img: GlanceImage; server: NovaServer }> {
    const server = await this.server();
    const img = await this.glance.get(id);
    if (!img) throw this.err('not-found', `image ${id} not found`, 404);
    const mine = img[P.instance] === server.id || (img[P.instance] === undefined && img.instance_uuid === server.id && !isVolumeImage(img));
    if (!mine) throw this.err('bad-request', `image ${id} is not an instance snapshot of this server (${server.id})`);
    return { img, server };
  }

  async list(o: { type?: string } = {}): Promise<InstanceSnapshot[]> {
    const server = await this.server();
    const own = await this.ownImages(server.id, o.type);
    const byId = new Map(own.map((i) => [i.id, i]));
    // Nova backups of this server made without lifeboat (openstack server backup create)
    const nova = await this.glance.list({ instance_uuid: server.id, ...(o.type ? { backup_type: o.type } : {}) });
    for (const img of nova) if (!byId.has(img.id) && img[P.instance] === undefined && !isVolumeImage(img)) byId.set(img.id, img);
    return [...byId.values()].sort((a, b) => timeOf(b) - timeOf(a)).map(toSnapshot);
  }

  async delete(id: string, o: { timeoutMs?: number } = {}): Promise<DeleteResult> {
    const { img } = await this.ownedImage(id);
    if (img.protected) throw this.err('forbidden', `image ${id} is protected: run "lifeboat instance-snapshot unprotect ${id}" first`, 403);
    if (isVolumeImage(img)) {
      const r = await this.deleteVolumeImage(img, Date.now() + (o.timeoutMs ?? 10 * 60_000), null);
      if (!r.deleted) throw this.err('conflict', `image ${id} kept: ${r.keptBecause}`);
      return r;
    }
    const d = await this.glance.delete(id);
    if (!d.ok) throw new CloudError(d.status === 409 ? 'conflict' : 'forbidden', d.reason, d.status);
    return { id, deleted: true, volumeSnapshotsDeleted: [] };
  }

  async setProtected(id: string, value: boolean): Promise<InstanceSnapshot> {
    await this.ownedImage(id);
    return toSnapshot(await this.glance.setProtected(id, value));
  }

  async restoreHelp(id: string): Promise<string[]> {
    const { img, server } = await this.ownedImage(id);
    const snap = toSnapshot(img);
    const flavor = server.flavor?.original_name ?? server.flavor?.id ?? '<flavor>';
    const nets = Object.keys(server.addresses ?? {});
    const netArgs = nets.length ? nets.map((n) => `--network ${shellQuote(n)}`).join(' ') : '--network <network>';
    const key = server.key_name ? ` --key-name ${shellQuote(server.key_name)}` : '';
    const cloud = this.ks.cloud.source === 'environment' ? '' : `OS_CLOUD=${shellQuote(this.ks.cloud.name)} `;
    const lines: string[] = [
      `# snapshot ${snap.id} "${snap.name}" of server ${server.name} (${server.id}), taken ${snap.createdAt}, ${snap.kind}-backed, status ${snap.status}`,
    ];
    if (snap.status !== 'active') lines.push(`# WARNING: the image is ${snap.status}, not active: it cannot be restored yet`);
    lines.push('# Run these from another machine (not from this VM: a rebuild stops it).');
    if (snap.kind === 'image') {
      lines.push(
        '# 1. Roll this server back in place (keeps its id, addresses and attached volumes; replaces the root disk; the server must not be locked):',
        `${cloud}openstack server rebuild --image ${snap.id} ${server.id}`,
        '# 2. Or start a new server from the snapshot (move a floating IP over once it works):',
        `${cloud}openstack server create --image ${snap.id} --flavor ${shellQuote(flavor)} ${netArgs}${key} --wait ${shellQuote(server.name + '-restored')}`,
      );
    } else {
      lines.push(
        '# Boot-from-volume: rebuild cannot use this 0-byte image; a new server gets new volumes made from its volume snapshots:',
        `${cloud}openstack server create --image ${snap.id} --flavor ${shellQuote(flavor)} ${netArgs}${key} --wait ${shellQuote(server.name + '-restored')}`,
        '# Or revert a volume in place (the volume must be detached and the snapshot must be its newest; Cinder API >= 3.40):',
      );
      for (const s of snap.volumeSnapshots) lines.push(`cinder --os-volume-api-version 3.40 revert-to-snapshot ${s}`);
    }
    return lines;
  }
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
