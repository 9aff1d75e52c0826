/** Opening "this VM's cloud" on OpenStack from lifeboat's config section and the environment. */
import path from 'node:path';
import type { CloudSection } from '../../config/cloud.js';
import { parseDuration } from '../../util/duration.js';
import { CloudError } from '../errors.js';
import { defaultConfigEnv, resolveCloud } from './config.js';
import { KeystoneSession } from './keystone.js';
import { OpenStackProvider } from './provider.js';
import { defaultSelfIdOptions } from './self-id.js';

export interface OpenOptions {
  /** the lifeboat config file's directory: relative paths in `cloud:` are relative to it */
  configDir?: string;
  debug?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

function duration(text: string | undefined, what: string, dflt: number): number {
  if (!text) return dflt;
  try {
    return parseDuration(text);
  } catch (e) {
    throw new CloudError('config', `${what}: ${(e as Error).message}`);
  }
}

export function openOpenStack(section: CloudSection | undefined, o: OpenOptions = {}): OpenStackProvider {
  const env = o.env ?? process.env;
  let sec = section;
  if (sec && typeof sec === 'object' && o.configDir) {
    sec = {
      ...sec,
      ...(sec.clouds_file ? { clouds_file: path.resolve(o.configDir, sec.clouds_file) } : {}),
      ...(sec.openrc ? { openrc: path.resolve(o.configDir, sec.openrc) } : {}),
    };
  }
  const cloud = resolveCloud(sec, { ...defaultConfigEnv(), env });
  const apiTimeout = duration(typeof sec === 'object' ? sec.api_timeout : undefined, 'cloud.api_timeout', 180_000);
  const ks = new KeystoneSession(cloud, {
    timeoutMs: Math.min(apiTimeout, 60_000),
    ...(cloud.ca ? { ca: cloud.ca } : {}),
    insecure: cloud.insecure,
    proxyEnv: env,
    ...(o.debug ? { debug: o.debug } : {}),
  });
  return new OpenStackProvider(ks, {
    pollMs: duration(env.LIFEBOAT_OPENSTACK_POLL_INTERVAL, 'LIFEBOAT_OPENSTACK_POLL_INTERVAL', 5000),
    actionTimeoutMs: apiTimeout,
    selfId: defaultSelfIdOptions(env),
    ...(o.debug ? { debug: o.debug } : {}),
  });
}
