import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeCloud } from '../fakes/openstack/fake-cloud.js';
import { KeystoneSession } from '../../src/cloud/openstack/keystone.js';
import { Glance } from '../../src/cloud/openstack/glance.js';
import type { ResolvedCloud } from '../../src/cloud/openstack/config.js';

type Fake = Awaited<ReturnType<typeof startFakeCloud>>;
let f: Fake;
afterEach(async () => f.close());

function session(ttlCloud: Fake): KeystoneSession {
  const cloud: ResolvedCloud = {
    name: 'fake',
    source: 'test',
    authUrl: `${ttlCloud.url}/identity`,
    auth: { type: 'application_credential', id: ttlCloud.appCred.id, secret: ttlCloud.appCred.secret },
    region: 'RegionOne',
    interface: 'public',
    insecure: false,
  };
  return new KeystoneSession(cloud, { timeoutMs: 5000 });
}

describe('Keystone session', () => {
  beforeEach(async () => {
    f = await startFakeCloud();
  });

  it('reuses the token, and renews it once on a 401', async () => {
    const ks = session(f);
    const g = new Glance(ks);
    await g.list({});
    await g.list({});
    const auths = () => f.cloud.requests((q) => q.path === '/identity/v3/auth/tokens').length;
    expect(auths()).toBe(1);
    f.cloud.revokeAllTokens();
    await g.list({});
    expect(auths()).toBe(2);
  });

  it('renews a token before it expires (short lifetimes: in its last quarter)', async () => {
    await f.close();
    f = await startFakeCloud({ tokenTtlMs: 400 });
    const ks = session(f);
    const g = new Glance(ks);
    await g.list({});
    await g.list({});
    const auths = () => f.cloud.requests((q) => q.path === '/identity/v3/auth/tokens').length;
    expect(auths()).toBe(1);
    await new Promise((r) => setTimeout(r, 320));
    await g.list({});
    expect(auths()).toBe(2);
    expect(f.cloud.requests((q) => q.status === 401)).toHaveLength(0);
  });

  it('a scope with an application credential is refused by the fake as by Keystone', async () => {
    const res = await fetch(`${f.url}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id: f.appCred.id, secret: f.appCred.secret } }, scope: { project: { id: f.projectId } } } }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 401, title: 'Unauthorized', message: 'Application credentials cannot request a scope.' } });
  });
});
