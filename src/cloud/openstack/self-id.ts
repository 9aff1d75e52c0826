/**
 * This VM's own server id: the metadata service, then the config drive, then DMI (libvirt sets the
 * SMBIOS system UUID to the instance UUID), then cloud-init's cached instance-id. The caller confirms
 * it with GET /servers/{id}.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from './http.js';

export interface SelfIdOptions {
  /** metadata service base URL (default http://169.254.169.254; LIFEBOAT_OPENSTACK_METADATA_URL) */
  metadataUrl: string;
  /** a mounted config drive, or '' to look for the `config-2` label */
  configDriveDir: string;
  /** /sys/class/dmi/id */
  dmiDir: string;
  /** cloud-init's cached instance id */
  cloudInitFile: string;
  /** tried sources, for the error message */
  debug?: (line: string) => void;
}

export function defaultSelfIdOptions(env: NodeJS.ProcessEnv = process.env): SelfIdOptions {
  return {
    metadataUrl: (env.LIFEBOAT_OPENSTACK_METADATA_URL || 'http://169.254.169.254').replace(/\/+$/, ''),
    configDriveDir: env.LIFEBOAT_OPENSTACK_CONFIG_DRIVE ?? '',
    dmiDir: env.LIFEBOAT_OPENSTACK_DMI_DIR || '/sys/class/dmi/id',
    cloudInitFile: env.LIFEBOAT_OPENSTACK_CLOUD_INIT_ID || '/var/lib/cloud/data/instance-id',
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface SelfId {
  id: string;
  source: 'metadata service' | 'config drive' | 'DMI' | 'cloud-init';
  /** what the metadata said about the project, if anything */
  projectId?: string;
}

function uuidOf(text: string): string | undefined {
  const v = text.trim().toLowerCase();
  return UUID.test(v) ? v : undefined;
}

async function fromMetadataService(o: SelfIdOptions): Promise<SelfId | undefined> {
  try {
    const res = await httpRequest({ method: 'GET', url: `${o.metadataUrl}/openstack/latest/meta_data.json` }, { timeoutMs: 3000 });
    if (res.status !== 200) return undefined;
    const j = JSON.parse(res.text) as { uuid?: string; project_id?: string };
    const id = j.uuid ? uuidOf(j.uuid) : undefined;
    return id ? { id, source: 'metadata service', ...(j.project_id ? { projectId: j.project_id } : {}) } : undefined;
  } catch (e) {
    o.debug?.(`metadata service: ${(e as Error).message}`);
    return undefined;
  }
}

function readMetaJson(dir: string): SelfId | undefined {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'openstack', 'latest', 'meta_data.json'), 'utf8')) as { uuid?: string; project_id?: string };
    const id = j.uuid ? uuidOf(j.uuid) : undefined;
    return id ? { id, source: 'config drive', ...(j.project_id ? { projectId: j.project_id } : {}) } : undefined;
  } catch {
    return undefined;
  }
}

/** The config drive: a directory given, one already mounted, or the `config-2` device mounted read-only for a moment. */
function fromConfigDrive(o: SelfIdOptions): SelfId | undefined {
  if (o.configDriveDir) return readMetaJson(o.configDriveDir);
  const dev = '/dev/disk/by-label/config-2';
  let real: string;
  try {
    real = fs.realpathSync(dev);
  } catch {
    return undefined;
  }
  try {
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [src, target] = line.split(' ');
      if (src === real || src === dev) {
        const r = readMetaJson(target!.replace(/\\040/g, ' '));
        if (r) return r;
      }
    }
  } catch {
    // no /proc/mounts
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-config-drive-'));
  try {
    execFileSync('mount', ['-o', 'ro', real, tmp], { stdio: 'ignore', timeout: 10_000 });
    try {
      return readMetaJson(tmp);
    } finally {
      execFileSync('umount', [tmp], { stdio: 'ignore', timeout: 10_000 });
    }
  } catch (e) {
    o.debug?.(`config drive: ${(e as Error).message}`);
    return undefined;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** SMBIOS system UUID (root-only file), sanity-checked against Nova's vendor strings when present. */
function fromDmi(o: SelfIdOptions): SelfId | undefined {
  try {
    const read = (f: string) => {
      try {
        return fs.readFileSync(path.join(o.dmiDir, f), 'utf8').trim();
      } catch {
        return '';
      }
    };
    const vendor = read('sys_vendor');
    const product = read('product_name');
    if (!/openstack/i.test(`${vendor} ${product}`)) {
      o.debug?.(`DMI: not an OpenStack Nova guest (sys_vendor "${vendor}", product_name "${product}")`);
      return undefined;
    }
    const id = uuidOf(read('product_uuid'));
    return id ? { id, source: 'DMI' } : undefined;
  } catch {
    return undefined;
  }
}

function fromCloudInit(o: SelfIdOptions): SelfId | undefined {
  try {
    const id = uuidOf(fs.readFileSync(o.cloudInitFile, 'utf8'));
    return id ? { id, source: 'cloud-init' } : undefined;
  } catch {
    return undefined;
  }
}

/** The first source that yields a UUID, or undefined. */
export async function discoverServerId(o: SelfIdOptions): Promise<SelfId | undefined> {
  return (await fromMetadataService(o)) ?? fromConfigDrive(o) ?? fromDmi(o) ?? fromCloudInit(o);
}
