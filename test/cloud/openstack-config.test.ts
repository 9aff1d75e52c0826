import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envCloud, parseOpenrc, resolveCloud } from '../../src/cloud/openstack/config.js';
import { authBody, pickEndpoint, tokenUrl } from '../../src/cloud/openstack/keystone.js';
import { cinderTime } from '../../src/cloud/openstack/cinder.js';
import { CloudError } from '../../src/cloud/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-oscfg-'));
  fs.mkdirSync(path.join(dir, 'home', '.config', 'openstack'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cwd'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const ce = (env: NodeJS.ProcessEnv = {}) => ({ env, cwd: path.join(dir, 'cwd'), home: path.join(dir, 'home') });
const userCfg = (name: string, text: string) => fs.writeFileSync(path.join(dir, 'home', '.config', 'openstack', name), text);

const HORIZON = `clouds:
  pw:
    auth:
      auth_url: "https://keystone.example.com:5000"
      username: demo
      project_id: 0123abcd
      project_name: demo
      user_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  app:
    auth:
      auth_url: "https://keystone.example.com:5000/v3"
      application_credential_id: "423f19a4"
      application_credential_secret: "rEaqvJka48mpv"
    region_name: RegionOne
    interface: public
    identity_api_version: 3
    auth_type: v3applicationcredential
`;

describe('clouds.yaml, secure.yaml, OS_* (openstacksdk semantics)', () => {
  it('reads Horizon\'s clouds.yaml with the password from secure.yaml, chosen by OS_CLOUD', () => {
    userCfg('clouds.yaml', HORIZON);
    userCfg('secure.yaml', 'clouds:\n  pw:\n    auth:\n      password: s3cret\n');
    const c = resolveCloud(undefined, ce({ OS_CLOUD: 'pw' }));
    expect(c.name).toBe('pw');
    expect(c.region).toBe('RegionOne');
    expect(c.interface).toBe('public');
    expect(c.auth).toEqual({ type: 'password', user: { name: 'demo', domain: { name: 'Default' } }, password: 's3cret', project: { id: '0123abcd' } });
    expect(authBody(c.auth)).toEqual({
      auth: { identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: 's3cret' } } }, scope: { project: { id: '0123abcd' } } },
    });
  });

  it('application credentials: never a scope', () => {
    userCfg('clouds.yaml', HORIZON);
    const c = resolveCloud({ name: 'app' }, ce());
    expect(authBody(c.auth)).toEqual({ auth: { identity: { methods: ['application_credential'], application_credential: { id: '423f19a4', secret: 'rEaqvJka48mpv' } } } });
    expect(tokenUrl(c.authUrl)).toBe('https://keystone.example.com:5000/v3/auth/tokens');
    expect(tokenUrl('https://x/identity/')).toBe('https://x/identity/v3/auth/tokens');
    expect(tokenUrl('https://identity.stack.cloudvps.com/v2.0')).toBe('https://identity.stack.cloudvps.com/v3/auth/tokens');
  });

  it('./clouds.yaml wins over ~/.config/openstack; OS_CLIENT_CONFIG_FILE over both', () => {
    userCfg('clouds.yaml', HORIZON);
    fs.writeFileSync(path.join(dir, 'cwd', 'clouds.yaml'), 'clouds:\n  local:\n    auth: {auth_url: "http://k", application_credential_id: a, application_credential_secret: bbbb}\n');
    expect(resolveCloud(undefined, ce()).name).toBe('local');
    const explicit = path.join(dir, 'x.yaml');
    fs.writeFileSync(explicit, 'clouds:\n  ex:\n    auth: {auth_url: "http://k", application_credential_id: a, application_credential_secret: bbbb}\n');
    expect(resolveCloud(undefined, ce({ OS_CLIENT_CONFIG_FILE: explicit })).name).toBe('ex');
  });

  it('several clouds and no choice is an error listing them', () => {
    userCfg('clouds.yaml', HORIZON);
    expect(() => resolveCloud(undefined, ce())).toThrow(/several clouds \(pw, app\)/);
    expect(() => resolveCloud('nope', ce())).toThrow(/openstack cloud "nope" not found in .* \(it has: pw, app\)/);
  });

  it('OS_* variables make the envvars cloud (legacy tenant_name, domain_name for both, endpoint_type publicURL)', () => {
    const env = { OS_AUTH_URL: 'http://k:5000', OS_USERNAME: 'u', OS_PASSWORD: 'pwpw', OS_TENANT_NAME: 'proj', OS_DOMAIN_NAME: 'Dom', OS_ENDPOINT_TYPE: 'internalURL', OS_REGION_NAME: 'R2' };
    const c = resolveCloud(undefined, ce(env));
    expect(c.name).toBe('envvars');
    expect(c.interface).toBe('internal');
    expect(c.region).toBe('R2');
    expect(c.auth).toMatchObject({ user: { name: 'u', domain: { name: 'Dom' } }, project: { name: 'proj', domain: { name: 'Dom' } } });
    expect(envCloud({ OS_CLOUD: 'x', OS_REGION_NAME: 'r' })).toBeNull();
  });

  it('parses an openrc without running it (Horizon\'s password prompt is skipped)', () => {
    const env = parseOpenrc('#!/usr/bin/env bash\nexport OS_AUTH_URL=https://k:5000\nexport OS_USERNAME="demo"\necho "Please enter"\nread -sr OS_PASSWORD_INPUT\nexport OS_PASSWORD=$OS_PASSWORD_INPUT\nexport OS_PROJECT_ID=abc\n');
    expect(env).toEqual({ OS_AUTH_URL: 'https://k:5000', OS_USERNAME: 'demo', OS_PROJECT_ID: 'abc' });
  });

  it('missing pieces are one-line config errors naming the cloud', () => {
    userCfg('clouds.yaml', 'clouds:\n  c1:\n    auth: {auth_url: "http://k", username: u, project_name: p, user_domain_name: D, project_domain_name: D}\n');
    const e = (() => {
      try {
        resolveCloud(undefined, ce());
      } catch (err) {
        return err as CloudError;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(CloudError);
    expect(e!.message).toMatch(/^openstack cloud "c1" \(.*clouds\.yaml\): no password \(put it in secure\.yaml or OS_PASSWORD\)$/);
    expect(() => resolveCloud(undefined, ce())).toThrow(CloudError);
  });
});

describe('catalog', () => {
  const catalog = [
    { type: 'compute', endpoints: [
      { interface: 'public', region_id: 'R1', region: 'R1', url: 'https://nova1/v2.1/' },
      { interface: 'internal', region_id: 'R1', region: 'R1', url: 'http://10.0.0.5:8774/v2.1' },
      { interface: 'public', region_id: 'R2', region: 'R2', url: 'https://nova2/v2.1' },
    ] },
    { type: 'volumev3', endpoints: [{ interface: 'public', region: 'R1', url: 'https://cinder/v3/p' }] },
  ];
  it('chooses by type alias, interface and region; first match without a region; no silent fallback', () => {
    expect(pickEndpoint(catalog, 'compute', 'public', 'R2')).toBe('https://nova2/v2.1');
    expect(pickEndpoint(catalog, 'compute', 'public', undefined)).toBe('https://nova1/v2.1');
    expect(pickEndpoint(catalog, 'compute', 'internal', 'R1')).toBe('http://10.0.0.5:8774/v2.1');
    expect(pickEndpoint(catalog, 'compute', 'admin', 'R1')).toBeUndefined();
    expect(pickEndpoint(catalog, 'block-storage', 'public', 'R1')).toBe('https://cinder/v3/p');
  });
  it('Cinder timestamps without a zone are UTC', () => {
    expect(cinderTime('2019-03-12T04:42:00.809352')).toBe(Date.UTC(2019, 2, 12, 4, 42, 0, 809));
    expect(cinderTime('2019-03-12T04:42:00Z')).toBe(Date.UTC(2019, 2, 12, 4, 42, 0));
  });
});
