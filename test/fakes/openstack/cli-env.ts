/** Environment for running the built CLI against a fake cloud: clouds.yaml, discovery pointed at the fake. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FakeCloud } from './fake-cloud.js';

export interface CloudEnvOptions {
  username?: string;
  password?: string;
  authUrl?: string;
  appCred?: { id: string; secret: string };
  interface?: string;
  extraConfig?: string;
}

/** Writes clouds.yaml (+ secure.yaml with the password) into a new temp dir; returns env for runCli. */
export function cloudEnv(cloud: FakeCloud, o: CloudEnvOptions = {}): { dir: string; env: Record<string, string | undefined> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-cloud-'));
  const authUrl = o.authUrl ?? `${cloud.url}/identity`;
  const auth = o.appCred
    ? `    auth_type: v3applicationcredential\n    auth:\n      auth_url: ${authUrl}\n      application_credential_id: ${o.appCred.id}\n      application_credential_secret: ${o.appCred.secret}\n`
    : `    auth:\n      auth_url: ${authUrl}\n      username: ${o.username ?? 'demo'}\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n`;
  fs.writeFileSync(
    path.join(dir, 'clouds.yaml'),
    `clouds:\n  fake:\n${auth}    region_name: RegionOne\n    interface: ${o.interface ?? 'public'}\n    identity_api_version: 3\n${o.extraConfig ?? ''}`,
  );
  if (!o.appCred) {
    fs.writeFileSync(path.join(dir, 'secure.yaml'), `clouds:\n  fake:\n    auth:\n      password: ${o.password ?? 'demo-pass-Secr3t'}\n`);
  }
  fs.mkdirSync(path.join(dir, 'nodmi'));
  const env: Record<string, string | undefined> = {
    HOME: dir,
    OS_CLIENT_CONFIG_FILE: path.join(dir, 'clouds.yaml'),
    OS_CLIENT_SECURE_FILE: path.join(dir, 'secure.yaml'),
    OS_CLOUD: 'fake',
    LIFEBOAT_OPENSTACK_METADATA_URL: cloud.url,
    LIFEBOAT_OPENSTACK_DMI_DIR: path.join(dir, 'nodmi'),
    LIFEBOAT_OPENSTACK_CLOUD_INIT_ID: path.join(dir, 'no-instance-id'),
    LIFEBOAT_OPENSTACK_CONFIG_DRIVE: path.join(dir, 'no-config-drive'),
    LIFEBOAT_OPENSTACK_POLL_INTERVAL: '40ms',
    LIFEBOAT_CONFIG: undefined,
  };
  // the developer's own OpenStack variables must not leak into the tests
  for (const k of Object.keys(process.env)) if (k.startsWith('OS_') && !(k in env)) env[k] = undefined;
  return { dir, env };
}
