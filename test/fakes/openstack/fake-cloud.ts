/**
 * A fake OpenStack on 127.0.0.1 for tests: the subset of Keystone v3, Nova (v2.1 + microversions),
 * Glance v2, Cinder v3 and the metadata service that lifeboat (and the `openstack` client for the
 * same calls) uses, with the behaviours of ../shared/reference/openstack.md: status codes and error
 * bodies, task_state transitions and 409s, createBackup rotation as Nova does it (rotation 0,
 * protected images skipped), 400 for volume-backed createBackup, the 0-byte volume-backed image with
 * its block_device_mapping JSON string, async Cinder deletes, Cinder times without `Z`, Glance
 * paging with relative `next` links, token expiry.
 *
 * Deviation: Glance sorts by a hidden millisecond creation time (real Glance: created_at seconds,
 * then id), so rotation in tests does not depend on which second a snapshot fell in.
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

type Dict = Record<string, unknown>;

export interface FakeUser {
  id: string;
  name: string;
  domain: string;
  password: string;
  projectId: string;
  roles: string[];
}
export interface FakeAppCred {
  id: string;
  name: string;
  secret: string;
  userId: string;
  projectId: string;
  roles: string[];
}
export interface FakeServer {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  vmState: string;
  taskState: string | null;
  /** boot image id, or '' for boot-from-volume */
  imageId: string;
  volumes: string[];
  flavor: string;
  /** image properties inherited from the boot image (Nova's system metadata) */
  inherited: Record<string, string>;
  locked: boolean;
}
export interface FakeImage extends Dict {
  id: string;
  name: string | null;
  status: string;
  owner: string;
  protected: boolean;
  visibility: string;
  _ms: number;
}
export interface FakeVolume {
  id: string;
  projectId: string;
  size: number;
  status: string;
}
export interface FakeSnapshot {
  id: string;
  volumeId: string;
  projectId: string;
  status: string;
  name: string;
  size: number;
  createdAt: string;
}
export interface LoggedRequest {
  method: string;
  path: string;
  query: string;
  microversion?: string;
  body?: unknown;
  /** the answer's status code */
  status?: number;
}

export interface FakeCloudOptions {
  tokenTtlMs?: number;
  /** duration of each snapshot step (task_state / image / Cinder transitions) */
  stepMs?: number;
  maxMicroversion?: string;
  region?: string;
}

const ROLES_WRITE = ['member', 'admin'];
const isoNoMs = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** Cinder: microseconds, no zone */
const cinderTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000');

export class FakeCloud {
  url = '';
  readonly users: FakeUser[] = [];
  readonly appCreds: FakeAppCred[] = [];
  readonly servers = new Map<string, FakeServer>();
  readonly images = new Map<string, FakeImage>();
  readonly volumes = new Map<string, FakeVolume>();
  readonly snapshots = new Map<string, FakeSnapshot>();
  readonly tokens = new Map<string, { userId: string; projectId: string | null; roles: string[]; expiresAt: number }>();
  readonly log: LoggedRequest[] = [];
  /** the server the metadata service describes */
  selfServerId = '';
  metadataDown = false;
  computeDiscovery = true;

  // fault injection
  /** the next N snapshot actions answer 409 as if the server were busy */
  conflictNext = 0;
  /** how image uploads end */
  uploadOutcome: 'active' | 'killed' | 'deleted' | 'stalled' = 'active';
  /** Cinder snapshots whose delete bounces back to `available` (Ceph clones) */
  busySnapshots = new Set<string>();
  /** Glance images whose delete answers 409 (in use) */
  busyImages = new Set<string>();
  /** Cinder's per-project snapshot quota (default 10) */
  snapshotQuota = 10;
  /** new Cinder snapshots go to `error` */
  snapshotCreateError = false;
  /** the Nova createBackup rotation deletions, for assertions */
  readonly novaRotationLog: string[] = [];

  readonly opts: Required<FakeCloudOptions>;
  private server: http.Server | null = null;
  private timers = new Set<NodeJS.Timeout>();
  private lastMs = 0;

  constructor(opts: FakeCloudOptions = {}) {
    this.opts = { tokenTtlMs: 3600_000, stepMs: 30, maxMicroversion: '2.96', region: 'RegionOne', ...opts };
  }

  /** A strictly increasing ms clock, so creation order is unambiguous. */
  private now(): number {
    this.lastMs = Math.max(Date.now(), this.lastMs + 1);
    return this.lastMs;
  }

  // ---- seeding ---------------------------------------------------------------------------------

  addProject(): string {
    return randomUUID().replace(/-/g, '');
  }

  addUser(u: Partial<FakeUser> & { name: string; password: string; projectId: string }): FakeUser {
    const user: FakeUser = { id: randomUUID().replace(/-/g, ''), domain: 'Default', roles: ['member', 'reader'], ...u };
    this.users.push(user);
    return user;
  }

  addAppCred(c: Partial<FakeAppCred> & { name: string; secret: string; userId: string; projectId: string }): FakeAppCred {
    const cred: FakeAppCred = { id: randomUUID().replace(/-/g, ''), roles: ['member', 'reader'], ...c };
    this.appCreds.push(cred);
    return cred;
  }

  addImage(p: Partial<FakeImage> & { owner: string }): FakeImage {
    const ms = p._ms ?? this.now();
    const img: FakeImage = {
      id: randomUUID(),
      name: 'image',
      status: 'active',
      protected: false,
      visibility: 'private',
      size: 1024,
      disk_format: 'qcow2',
      container_format: 'bare',
      min_disk: 0,
      min_ram: 0,
      checksum: null,
      os_hidden: false,
      tags: [],
      created_at: isoNoMs(ms),
      updated_at: isoNoMs(ms),
      ...p,
      _ms: ms,
    };
    this.images.set(img.id, img);
    return img;
  }

  addServer(s: { name: string; projectId: string; userId: string; volumeBacked?: boolean; extraVolumes?: number; inherited?: Record<string, string> }): FakeServer {
    const vols: string[] = [];
    const nvol = (s.volumeBacked ? 1 : 0) + (s.extraVolumes ?? 0);
    for (let i = 0; i < nvol; i++) {
      const v: FakeVolume = { id: randomUUID(), projectId: s.projectId, size: 20, status: 'in-use' };
      this.volumes.set(v.id, v);
      vols.push(v.id);
    }
    let imageId = '';
    if (!s.volumeBacked) {
      imageId = this.addImage({ owner: s.projectId, name: 'debian-12', visibility: 'public', hw_qemu_guest_agent: 'yes', os_distro: 'debian' }).id;
    }
    const srv: FakeServer = {
      id: randomUUID(),
      name: s.name,
      projectId: s.projectId,
      userId: s.userId,
      vmState: 'active',
      taskState: null,
      imageId,
      volumes: vols,
      flavor: 'm1.small',
      inherited: { base_image_ref: imageId, os_distro: 'debian', hw_qemu_guest_agent: 'yes', owner_project_name: 'demo', boot_roles: 'member', ...(s.inherited ?? {}) },
      locked: false,
    };
    this.servers.set(srv.id, srv);
    return srv;
  }

  /** Makes every token invalid (as after a Keystone restart with new keys). */
  revokeAllTokens(): void {
    this.tokens.clear();
  }

  /** Sets a task_state for a while (a busy server). */
  busyFor(serverId: string, taskState: string, ms: number): void {
    const s = this.servers.get(serverId)!;
    s.taskState = taskState;
    this.later(ms, () => (s.taskState = null));
  }

  requests(filter: (r: LoggedRequest) => boolean = () => true): LoggedRequest[] {
    return this.log.filter(filter);
  }

  // ---- server ----------------------------------------------------------------------------------

  /** Starts on 127.0.0.1 (HTTPS with a key and certificate). */
  async start(tlsOpts?: { key: Buffer; cert: Buffer }): Promise<{ url: string; close: () => Promise<void> }> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          this.handle(req, res, Buffer.concat(chunks).toString('utf8'));
        } catch (e) {
          send(res, 500, { computeFault: { code: 500, message: String(e) } });
        }
      });
    };
    this.server = tlsOpts ? https.createServer(tlsOpts, handler) : http.createServer(handler);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `${tlsOpts ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return { url: this.url, close: () => this.close() };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
      this.server = null;
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  catalog(projectId: string): unknown[] {
    const ep = (type: string, name: string, url: string, internal?: string) => ({
      type,
      name,
      id: randomUUID().replace(/-/g, ''),
      endpoints: [
        { id: randomUUID().replace(/-/g, ''), interface: 'public', region: this.opts.region, region_id: this.opts.region, url },
        // internal endpoints are on an address nothing listens on (as from a VM that cannot reach them)
        { id: randomUUID().replace(/-/g, ''), interface: 'internal', region: this.opts.region, region_id: this.opts.region, url: internal ?? url.replace(/^https?:\/\/127\.0\.0\.1:\d+/, 'http://127.0.0.1:9') },
      ],
    });
    return [
      ep('identity', 'keystone', `${this.url}/identity`),
      ep('compute', 'nova', `${this.url}/compute/v2.1`),
      ep('image', 'glance', `${this.url}/image`),
      ep('block-storage', 'cinder', `${this.url}/volume/v3/${projectId}`),
      ep('volumev3', 'cinderv3', `${this.url}/volume/v3/${projectId}`),
    ];
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, bodyText: string): void {
    const u = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const p = u.pathname.replace(/\/+$/, '') || '/';
    let body: unknown;
    if (bodyText) {
      try {
        body = JSON.parse(bodyText);
      } catch {
        body = bodyText;
      }
    }
    const mvHeader = hdr(req, 'openstack-api-version') ?? hdr(req, 'x-openstack-nova-api-version');
    const logged: LoggedRequest = { method, path: p, query: u.search, ...(mvHeader ? { microversion: mvHeader } : {}) };
    // never keep credentials in the log
    if (body !== undefined && !p.endsWith('/auth/tokens')) logged.body = body;
    this.log.push(logged);
    res.on('finish', () => (logged.status = res.statusCode));

    if (p === '/openstack/latest/meta_data.json') return this.metadata(res);
    if (p === '/identity' || p === '/identity/v3' || p.startsWith('/identity/')) return this.keystone(method, p, req, res, body);
    if (p === '/image' && method === 'GET') {
      return send(res, 300, { versions: [{ id: 'v2.9', status: 'CURRENT', links: [{ rel: 'self', href: `${this.url}/image/v2/` }] }, { id: 'v2.0', status: 'SUPPORTED', links: [{ rel: 'self', href: `${this.url}/image/v2/` }] }] });
    }
    if (p === '/compute' && method === 'GET') {
      return send(res, 200, { versions: [{ id: 'v2.1', status: 'CURRENT', version: this.opts.maxMicroversion, min_version: '2.1', links: [{ rel: 'self', href: `${this.url}/compute/v2.1/` }] }] });
    }
    if (p === '/volume' && method === 'GET') {
      return send(res, 300, { versions: [{ id: 'v3.0', status: 'CURRENT', version: '3.71', min_version: '3.0', links: [{ rel: 'self', href: `${this.url}/volume/v3/` }] }] });
    }
    const tok = this.checkToken(req);
    if (p.startsWith('/compute/v2.1')) {
      if (!tok) return unauthorized(res);
      return this.nova(method, p.slice('/compute/v2.1'.length), u, req, res, body, tok);
    }
    if (p.startsWith('/image/v2')) {
      if (!tok) return unauthorized(res);
      return this.glance(method, p.slice('/image/v2'.length), u, req, res, body, tok);
    }
    if (p.startsWith('/volume/v3/')) {
      if (!tok) return unauthorized(res);
      return this.cinder(method, p.slice('/volume/v3'.length), res, tok);
    }
    send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  }

  private checkToken(req: http.IncomingMessage): { userId: string; projectId: string; roles: string[] } | null {
    const t = hdr(req, 'x-auth-token');
    const tok = t ? this.tokens.get(t) : undefined;
    if (!tok || tok.expiresAt <= Date.now() || !tok.projectId) return null;
    return { userId: tok.userId, projectId: tok.projectId, roles: tok.roles };
  }

  // ---- metadata service ------------------------------------------------------------------------

  private metadata(res: http.ServerResponse): void {
    const s = this.servers.get(this.selfServerId);
    if (this.metadataDown || !s) return send(res, 404, '404 Not Found', 'text/plain');
    send(res, 200, {
      uuid: s.id,
      meta: {},
      keys: [],
      hostname: `${s.name}.novalocal`,
      name: s.name,
      launch_index: 0,
      availability_zone: 'nova',
      random_seed: randomBytes(32).toString('base64'),
      project_id: s.projectId,
      devices: [],
    });
  }

  // ---- Keystone --------------------------------------------------------------------------------

  private keystone(method: string, p: string, _req: http.IncomingMessage, res: http.ServerResponse, body: unknown): void {
    const versionV3 = { id: 'v3.14', status: 'stable', updated: '2020-04-07T00:00:00Z', links: [{ rel: 'self', href: `${this.url}/identity/v3/` }], 'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }] };
    if (method === 'GET' && p === '/identity') return send(res, 300, { versions: { values: [versionV3] } });
    if (method === 'GET' && p === '/identity/v3') return send(res, 200, { version: versionV3 });
    if (method === 'POST' && p === '/identity/v3/auth/tokens') return this.issueToken(res, body);
    send(res, 404, { error: { code: 404, title: 'Not Found', message: 'The resource could not be found.' } });
  }

  private issueToken(res: http.ServerResponse, body: unknown): void {
    const unauth = (message = 'The request you have made requires authentication.') => {
      res.setHeader('WWW-Authenticate', `Keystone uri="${this.url}/identity"`);
      send(res, 401, { error: { code: 401, title: 'Unauthorized', message } });
    };
    const a = (body as Dict | undefined)?.auth as Dict | undefined;
    const identity = a?.identity as Dict | undefined;
    const methods = identity?.methods as string[] | undefined;
    if (!a || !identity || !Array.isArray(methods)) {
      return send(res, 400, { error: { code: 400, title: 'Bad Request', message: "Invalid input for field 'identity': 'methods' is a required property" } });
    }
    let user: FakeUser | undefined;
    let projectId: string | null = null;
    let roles: string[] = [];
    let appCred: FakeAppCred | undefined;
    const scope = a.scope as Dict | undefined;
    const findUser = (u: Dict | undefined) => {
      if (!u) return undefined;
      if (typeof u.id === 'string') return this.users.find((x) => x.id === u.id);
      const dom = u.domain as Dict | undefined;
      const domName = dom?.name ?? (dom?.id === 'default' ? 'Default' : dom?.id);
      return this.users.find((x) => x.name === u.name && x.domain === domName);
    };
    if (methods[0] === 'password') {
      const pu = (identity.password as Dict | undefined)?.user as Dict | undefined;
      user = findUser(pu);
      if (!user || pu?.password !== user.password) return unauth();
      if (scope) {
        const sp = scope.project as Dict | undefined;
        // every fake project is named "demo"
        const ok = sp?.id !== undefined ? sp.id === user.projectId : sp?.name === 'demo';
        if (!ok) return unauth();
        projectId = user.projectId;
        roles = user.roles;
      }
    } else if (methods[0] === 'application_credential') {
      if (scope) return unauth('Application credentials cannot request a scope.');
      const ac = identity.application_credential as Dict | undefined;
      if (typeof ac?.id === 'string') appCred = this.appCreds.find((c) => c.id === ac.id);
      else if (typeof ac?.name === 'string') {
        const owner = findUser(ac.user as Dict | undefined);
        if (!owner) return unauth('Could not find Application Credential: ' + ac.name);
        appCred = this.appCreds.find((c) => c.name === ac.name && c.userId === owner.id);
      }
      if (!appCred || ac?.secret !== appCred.secret) return unauth();
      user = this.users.find((x) => x.id === appCred!.userId);
      projectId = appCred.projectId;
      roles = appCred.roles;
    } else {
      return unauth(`Attempted to authenticate with an unsupported method.`);
    }
    const token = 'gAAAAA' + randomBytes(120).toString('base64url');
    const now = Date.now();
    const expiresAt = now + this.opts.tokenTtlMs;
    this.tokens.set(token, { userId: user!.id, projectId, roles, expiresAt });
    const iso = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');
    res.setHeader('X-Subject-Token', token);
    send(res, 201, {
      token: {
        methods,
        user: { id: user!.id, name: user!.name, domain: { id: 'default', name: user!.domain }, password_expires_at: null },
        audit_ids: [randomBytes(16).toString('base64url')],
        expires_at: iso(expiresAt),
        issued_at: iso(now),
        ...(projectId
          ? {
              project: { id: projectId, name: 'demo', domain: { id: 'default', name: 'Default' } },
              is_domain: false,
              roles: roles.map((r) => ({ id: r + 'id', name: r })),
              catalog: this.catalog(projectId),
            }
          : {}),
        ...(appCred ? { application_credential: { id: appCred.id, name: appCred.name, restricted: true } } : {}),
      },
    });
  }

  // ---- Nova ------------------------------------------------------------------------------------

  private microversion(req: http.IncomingMessage, res: http.ServerResponse): string | null {
    const h1 = hdr(req, 'openstack-api-version');
    const h2 = hdr(req, 'x-openstack-nova-api-version');
    let v = '2.1';
    if (h1 && /^compute\s/i.test(h1)) v = h1.replace(/^compute\s+/i, '').trim();
    else if (h2) v = h2.trim();
    const max = this.opts.maxMicroversion;
    if (v === 'latest') v = max;
    if (!/^\d+\.\d+$/.test(v)) {
      send(res, 400, { badRequest: { code: 400, message: `Invalid API version request string ${v}` } });
      return null;
    }
    if (cmpV(v, '2.1') < 0 || cmpV(v, max) > 0) {
      send(res, 406, { computeFault: { code: 406, message: `Version ${v} is not supported by the API. Minimum is 2.1 and maximum is ${max}.` } });
      return null;
    }
    res.setHeader('OpenStack-API-Version', `compute ${v}`);
    res.setHeader('X-OpenStack-Nova-API-Version', v);
    res.setHeader('Vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
    return v;
  }

  private serverView(s: FakeServer, mv: string): Dict {
    return {
      id: s.id,
      name: s.name,
      status: s.vmState === 'active' ? 'ACTIVE' : s.vmState === 'stopped' ? 'SHUTOFF' : s.vmState.toUpperCase(),
      tenant_id: s.projectId,
      user_id: s.userId,
      metadata: {},
      hostId: 'abc',
      image: s.imageId ? { id: s.imageId, links: [{ rel: 'bookmark', href: `${this.url}/compute/images/${s.imageId}` }] } : '',
      flavor: cmpV(mv, '2.47') >= 0 ? { original_name: s.flavor, vcpus: 1, ram: 2048, disk: 20, ephemeral: 0, swap: 0 } : { id: s.flavor, links: [] },
      created: '2024-01-01T00:00:00Z',
      updated: '2024-01-01T00:00:00Z',
      addresses: { 'demo-net': [{ version: 4, addr: '10.0.0.5', 'OS-EXT-IPS:type': 'fixed' }] },
      accessIPv4: '',
      accessIPv6: '',
      links: [],
      key_name: 'admin-key',
      'OS-EXT-STS:task_state': s.taskState,
      'OS-EXT-STS:vm_state': s.vmState,
      'OS-EXT-STS:power_state': 1,
      'OS-EXT-AZ:availability_zone': 'nova',
      'os-extended-volumes:volumes_attached': s.volumes.map((id) => ({ id, delete_on_termination: false })),
      ...(cmpV(mv, '2.9') >= 0 ? { locked: s.locked } : {}),
    };
  }

  private nova(method: string, p: string, u: URL, req: http.IncomingMessage, res: http.ServerResponse, body: unknown, tok: { userId: string; projectId: string; roles: string[] }): void {
    if (p === '' && method === 'GET') {
      if (!this.computeDiscovery) return send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
      return send(res, 200, { version: { id: 'v2.1', status: 'CURRENT', version: this.opts.maxMicroversion, min_version: '2.1', updated: '2013-07-23T11:33:21Z', links: [{ rel: 'self', href: `${this.url}/compute/v2.1/` }] } });
    }
    const mv = this.microversion(req, res);
    if (!mv) return;
    const mine = [...this.servers.values()].filter((s) => s.projectId === tok.projectId);
    if ((p === '/servers' || p === '/servers/detail') && method === 'GET') {
      const name = u.searchParams.get('name');
      const list = mine.filter((s) => !name || new RegExp(name).test(s.name));
      return send(res, 200, { servers: list.map((s) => (p === '/servers' ? { id: s.id, name: s.name, links: [] } : this.serverView(s, mv))) });
    }
    let m = /^\/servers\/([^/]+)$/.exec(p);
    if (m && method === 'GET') {
      const s = mine.find((x) => x.id === m![1]);
      if (!s) return send(res, 404, { itemNotFound: { code: 404, message: `Instance ${m[1]} could not be found.` } });
      return send(res, 200, { server: this.serverView(s, mv) });
    }
    m = /^\/servers\/([^/]+)\/action$/.exec(p);
    if (m && method === 'POST') {
      const s = mine.find((x) => x.id === m![1]);
      if (!s) return send(res, 404, { itemNotFound: { code: 404, message: `Instance ${m[1]} could not be found.` } });
      const b = (body ?? {}) as Dict;
      if ('createBackup' in b) return this.createBackup(s, b.createBackup, mv, res, tok);
      if ('createImage' in b) return this.createImage(s, b.createImage, mv, res, tok);
      return send(res, 400, { badRequest: { code: 400, message: 'There is no such action: ' + Object.keys(b).join(',') } });
    }
    m = /^\/flavors\/([^/]+)$/.exec(p);
    if (m && method === 'GET') {
      return send(res, 200, { flavor: { id: m[1], name: m[1], ram: 2048, vcpus: 1, disk: 20, 'OS-FLV-EXT-DATA:ephemeral': 0, swap: '', links: [] } });
    }
    send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  }

  /** Nova's schema checks shared by createBackup and createImage. */
  private validate(action: string, a: unknown, allowed: string[], res: http.ServerResponse): Dict | null {
    const bad = (msg: string) => {
      send(res, 400, { badRequest: { code: 400, message: `Invalid input for field/attribute ${action}. ${msg}` } });
      return null;
    };
    if (!a || typeof a !== 'object' || Array.isArray(a)) return bad(`Value: ${JSON.stringify(a)}. ${JSON.stringify(a)} is not of type 'object'`);
    const o = a as Dict;
    for (const k of Object.keys(o)) if (!allowed.includes(k)) return bad(`Value: ${JSON.stringify(o)}. Additional properties are not allowed ('${k}' was unexpected)`);
    if (typeof o.name !== 'string' || o.name.length < 1 || o.name.length > 255 || o.name !== o.name.trim() || /[^\x20-\x7e]/.test(o.name)) {
      return bad(`Value: ${JSON.stringify(o.name)}. 'name' is a required property or invalid`);
    }
    if (o.metadata !== undefined) {
      if (!o.metadata || typeof o.metadata !== 'object') return bad(`'metadata' is not of type 'object'`);
      for (const [k, v] of Object.entries(o.metadata as Dict)) {
        if (!/^[a-zA-Z0-9-_:. ]{1,255}$/.test(k)) return bad(`Value: ${k}. '${k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'`);
        if (typeof v !== 'string' || v.length > 255) return bad(`Value: ${JSON.stringify(v)}. metadata value of ${k} is invalid`);
      }
    }
    return o;
  }

  private stateConflict(s: FakeServer, action: string, res: http.ServerResponse): boolean {
    if (this.conflictNext > 0) {
      this.conflictNext--;
      send(res, 409, { conflictingRequest: { code: 409, message: `Cannot '${action}' instance ${s.id} while it is in task_state image_uploading` } });
      return true;
    }
    if (s.taskState !== null) {
      send(res, 409, { conflictingRequest: { code: 409, message: `Cannot '${action}' instance ${s.id} while it is in task_state ${s.taskState}` } });
      return true;
    }
    if (!['active', 'stopped', 'paused', 'suspended'].includes(s.vmState)) {
      send(res, 409, { conflictingRequest: { code: 409, message: `Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vmState}` } });
      return true;
    }
    return false;
  }

  private createBackup(s: FakeServer, a: unknown, mv: string, res: http.ServerResponse, tok: { userId: string; roles: string[] }): void {
    if (!tok.roles.some((r) => ROLES_WRITE.includes(r))) {
      return send(res, 403, { forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-create-backup to be performed." } });
    }
    const o = this.validate('createBackup', a, ['name', 'backup_type', 'rotation', 'metadata'], res);
    if (!o) return;
    if (typeof o.backup_type !== 'string') return send(res, 400, { badRequest: { code: 400, message: "Invalid input for field/attribute createBackup. 'backup_type' is a required property" } });
    const rot = typeof o.rotation === 'number' ? o.rotation : typeof o.rotation === 'string' && /^\d+$/.test(o.rotation) ? Number(o.rotation) : NaN;
    if (!Number.isInteger(rot) || rot < 0) return send(res, 400, { badRequest: { code: 400, message: `Invalid input for field/attribute rotation. Value: ${String(o.rotation)}. ${String(o.rotation)} is not of type 'integer', 'string'` } });
    if (!s.imageId) return send(res, 400, { badRequest: { code: 400, message: 'Backup is not supported for volume-backed instances.' } });
    if (this.stateConflict(s, 'createBackup', res)) return;
    const img = this.addImage({
      owner: s.projectId,
      name: o.name as string,
      status: 'queued',
      size: null,
      ...s.inherited,
      instance_uuid: s.id,
      user_id: tok.userId,
      image_type: 'backup',
      backup_type: o.backup_type,
      ...((o.metadata as Dict | undefined) ?? {}),
    });
    s.taskState = 'image_backup';
    this.runUpload(s, img, ['image_pending_upload', 'image_uploading'], () => this.rotate(s, o.backup_type as string, rot));
    if (cmpV(mv, '2.45') >= 0) return send(res, 202, { image_id: img.id });
    if (rot > 0) res.setHeader('Location', `${this.url}/compute/v2.1/images/${img.id}`);
    send(res, 202, '');
  }

  /** task_state steps, the upload, then (createBackup) rotation, then task_state null. */
  private runUpload(s: FakeServer, img: FakeImage, steps: string[], after?: () => void): void {
    const step = this.opts.stepMs;
    steps.forEach((ts, i) =>
      this.later(step * (i + 1), () => {
        s.taskState = ts;
        if (ts === 'image_uploading' || ts === 'image_pending_upload') img.status = 'saving';
      }),
    );
    this.later(step * (steps.length + 1), () => {
      if (this.uploadOutcome === 'killed') img.status = 'killed';
      else if (this.uploadOutcome === 'deleted') this.images.delete(img.id);
      else if (this.uploadOutcome === 'stalled') img.status = 'saving';
      else {
        img.status = 'active';
        img.size = 1_073_741_824;
        img.checksum = randomBytes(16).toString('hex');
        img.updated_at = isoNoMs(Date.now());
        after?.();
      }
      s.taskState = null;
    });
  }

  /** nova/compute/manager.py _rotate_backups: newest first, delete the oldest count − rotation, skip failures. */
  private rotate(s: FakeServer, backupType: string, rotation: number): void {
    const imgs = [...this.images.values()]
      .filter((i) => i.image_type === 'backup' && i.backup_type === backupType && i.instance_uuid === s.id)
      .sort((a, b) => b._ms - a._ms);
    if (imgs.length <= rotation) return;
    const excess = imgs.length - rotation;
    for (let i = 0; i < excess; i++) {
      const img = imgs.pop()!;
      if (img.protected || this.busyImages.has(img.id)) continue; // Glance 403/409: logged and skipped
      this.images.delete(img.id);
      this.novaRotationLog.push(img.id);
    }
  }

  private createImage(s: FakeServer, a: unknown, mv: string, res: http.ServerResponse, tok: { userId: string; roles: string[] }): void {
    const o = this.validate('createImage', a, ['name', 'metadata'], res);
    if (!o) return;
    const volumeBacked = !s.imageId;
    if (!tok.roles.some((r) => ROLES_WRITE.includes(r))) {
      const rule = volumeBacked ? 'os_compute_api:servers:create_image:allow_volume_backed' : 'os_compute_api:servers:create_image';
      return send(res, 403, { forbidden: { code: 403, message: `Policy doesn't allow ${rule} to be performed.` } });
    }
    if (this.stateConflict(s, 'createImage', res)) return;
    const location = (id: string) => (cmpV(mv, '2.45') >= 0 ? null : `${this.url}/image/v2/images/${id}`);
    if (!volumeBacked) {
      const img = this.addImage({
        owner: s.projectId,
        name: o.name as string,
        status: 'queued',
        size: null,
        ...s.inherited,
        instance_uuid: s.id,
        user_id: tok.userId,
        image_type: 'snapshot',
        ...((o.metadata as Dict | undefined) ?? {}),
      });
      s.taskState = 'image_snapshot_pending';
      this.runUpload(s, img, ['image_snapshot', 'image_pending_upload', 'image_uploading']);
      const loc = location(img.id);
      if (loc) res.setHeader('Location', loc);
      return send(res, 202, loc ? '' : { image_id: img.id });
    }
    // snapshot_volume_backed: quota check, a Cinder snapshot per attached volume, a 0-byte active image
    const used = [...this.snapshots.values()].filter((x) => x.projectId === s.projectId).length;
    if (used + s.volumes.length > this.snapshotQuota) {
      return send(res, 403, { forbidden: { code: 403, message: `Quota exceeded for snapshots: Requested ${s.volumes.length}, but already used ${used} of ${this.snapshotQuota} snapshots` } });
    }
    const bdm: Dict[] = [];
    s.volumes.forEach((volId, i) => {
      const snap: FakeSnapshot = { id: randomUUID(), volumeId: volId, projectId: s.projectId, status: 'creating', name: `snapshot for ${o.name as string}`, size: 20, createdAt: cinderTime(Date.now()) };
      this.snapshots.set(snap.id, snap);
      this.later(this.opts.stepMs * 2, () => {
        if (snap.status === 'creating') snap.status = this.snapshotCreateError ? 'error' : 'available';
      });
      bdm.push({
        source_type: 'snapshot', destination_type: 'volume', snapshot_id: snap.id, boot_index: i === 0 ? 0 : null,
        device_name: i === 0 ? '/dev/vda' : `/dev/vd${String.fromCharCode(98 + i - 1)}`, volume_size: 20, delete_on_termination: false,
        disk_bus: 'virtio', device_type: 'disk', guest_format: null, volume_type: null, no_device: null, volume_id: null, image_id: null, tag: null, encrypted: null,
      });
    });
    const img = this.addImage({
      owner: s.projectId,
      name: o.name as string,
      status: 'active',
      size: 0,
      // inherited from the boot image's system metadata; no own instance_uuid/image_type/user_id
      ...s.inherited,
      root_device_name: '/dev/vda',
      bdm_v2: 'True',
      block_device_mapping: JSON.stringify(bdm),
      ...((o.metadata as Dict | undefined) ?? {}),
    });
    const loc = location(img.id);
    if (loc) res.setHeader('Location', loc);
    send(res, 202, loc ? '' : { image_id: img.id });
  }

  // ---- Glance ----------------------------------------------------------------------------------

  private imageView(i: FakeImage): Dict {
    const out: Dict = {};
    for (const [k, v] of Object.entries(i)) if (!k.startsWith('_')) out[k] = v;
    out.self = `/v2/images/${i.id}`;
    out.file = `/v2/images/${i.id}/file`;
    out.schema = '/v2/schemas/image';
    return out;
  }

  private glance(method: string, p: string, u: URL, req: http.IncomingMessage, res: http.ServerResponse, body: unknown, tok: { projectId: string; roles: string[] }): void {
    const visible = (i: FakeImage) => i.owner === tok.projectId || i.visibility === 'public' || i.visibility === 'community';
    const glanceErr = (code: number, title: string, msg: string) => send(res, code, `${code} ${title}\n\n${msg}\n\n   `, 'text/plain; charset=UTF-8');
    if (p === '/images' && method === 'GET') return this.listImages(u, res, visible, glanceErr);
    if (p === '/schemas/image' || p === '/schemas/images') return send(res, 200, { name: p.endsWith('images') ? 'images' : 'image', properties: {}, additionalProperties: { type: 'string' } });
    const m = /^\/images\/([^/]+)$/.exec(p);
    if (!m) return glanceErr(404, 'Not Found', 'The resource could not be found.');
    const img = this.images.get(m[1]!);
    if (!img || !visible(img)) return glanceErr(404, 'Not Found', `No image found with ID ${m[1]}`);
    if (method === 'GET') return send(res, 200, this.imageView(img));
    const canWrite = img.owner === tok.projectId && tok.roles.some((r) => ROLES_WRITE.includes(r));
    if (method === 'DELETE') {
      if (!canWrite) return glanceErr(403, 'Forbidden', 'You are not authorized to complete delete_image action.');
      if (img.protected) return glanceErr(403, 'Forbidden', `Image ${img.id} is protected and cannot be deleted.`);
      if (this.busyImages.has(img.id)) return glanceErr(409, 'Conflict', 'Image status transition from active to deleted is not allowed');
      this.images.delete(img.id);
      res.writeHead(204);
      return void res.end();
    }
    if (method === 'PATCH') {
      const ct = hdr(req, 'content-type') ?? '';
      if (!ct.startsWith('application/openstack-images-v2.1-json-patch')) {
        return glanceErr(415, 'Unsupported Media Type', `Unsupported Content-Type`);
      }
      if (!canWrite) return glanceErr(403, 'Forbidden', 'You are not authorized to complete modify_image action.');
      for (const op of (Array.isArray(body) ? body : []) as Dict[]) {
        const key = String(op.path ?? '').replace(/^\//, '');
        if (key === 'protected' && typeof op.value !== 'boolean') return glanceErr(400, 'Bad Request', `Invalid value for protected`);
        if (op.op === 'replace' || op.op === 'add') img[key] = op.value;
        else if (op.op === 'remove') delete img[key];
      }
      img.updated_at = isoNoMs(Date.now());
      return send(res, 200, this.imageView(img));
    }
    glanceErr(405, 'Method Not Allowed', 'The method is not allowed for this resource.');
  }

  private listImages(u: URL, res: http.ServerResponse, visible: (i: FakeImage) => boolean, glanceErr: (c: number, t: string, m: string) => void): void {
    const q = u.searchParams;
    if (q.has('sort') && (q.has('sort_key') || q.has('sort_dir'))) return glanceErr(400, 'Bad Request', 'The request may not specify both sort and sort_key/sort_dir');
    const limitText = q.get('limit');
    let limit = 25;
    if (limitText !== null) {
      if (!/^\d+$/.test(limitText)) return glanceErr(400, 'Bad Request', 'limit param must be an integer');
      limit = Math.min(Number(limitText), 1000);
    }
    const reserved = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status', 'os_hidden', 'visibility', 'status', 'name', 'owner', 'tag', 'created_at', 'updated_at', 'size_min', 'size_max']);
    let list = [...this.images.values()].filter(visible).filter((i) => i.os_hidden !== true || q.get('os_hidden') === 'true');
    const inOrEq = (key: string, val: unknown) => {
      const f = q.get(key);
      if (f === null) return true;
      const wanted = f.startsWith('in:') ? f.slice(3).split(',') : [f];
      return wanted.includes(String(val));
    };
    list = list.filter((i) => inOrEq('status', i.status) && inOrEq('name', i.name) && inOrEq('visibility', i.visibility) && inOrEq('owner', i.owner));
    for (const [k, v] of q) if (!reserved.has(k)) list = list.filter((i) => typeof i[k] === 'string' && i[k] === v);
    // sort: created_at desc by default (with the hidden ms clock); other keys as strings
    const sortSpec = q.get('sort') ?? (q.get('sort_key') ? `${q.get('sort_key')}:${q.get('sort_dir') ?? 'desc'}` : 'created_at:desc');
    const [key, dir] = sortSpec.split(',')[0]!.split(':') as [string, string | undefined];
    const sign = (dir ?? 'desc') === 'asc' ? 1 : -1;
    list.sort((a, b) => {
      const c = key === 'created_at' ? a._ms - b._ms : String(a[key] ?? '').localeCompare(String(b[key] ?? ''));
      return sign * (c || a.id.localeCompare(b.id));
    });
    const marker = q.get('marker');
    if (marker) {
      const idx = list.findIndex((i) => i.id === marker);
      if (idx < 0) return glanceErr(400, 'Bad Request', `Invalid marker. Image ${marker} could not be found.`);
      list = list.slice(idx + 1);
    }
    const page = list.slice(0, limit);
    const params = new URLSearchParams([...q].filter(([k]) => k !== 'marker'));
    const qs = params.toString();
    const out: Dict = { images: page.map((i) => this.imageView(i)), first: `/v2/images${qs ? '?' + qs : ''}`, schema: '/v2/schemas/images' };
    if (page.length === limit && limit > 0) {
      params.set('marker', page[page.length - 1]!.id);
      out.next = `/v2/images?${params.toString()}`;
    }
    send(res, 200, out);
  }

  // ---- Cinder ----------------------------------------------------------------------------------

  private snapView(s: FakeSnapshot): Dict {
    return {
      id: s.id, name: s.name, description: null, status: s.status, volume_id: s.volumeId, size: s.size,
      created_at: s.createdAt, updated_at: null, metadata: {}, 'os-extended-snapshot-attributes:progress': s.status === 'available' ? '100%' : '0%',
    };
  }

  private cinder(method: string, p: string, res: http.ServerResponse, tok: { projectId: string; roles: string[] }): void {
    const m = /^\/([^/]+)\/snapshots(?:\/([^/]+))?$/.exec(p);
    if (!m) return send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
    if (m[1] !== tok.projectId) {
      return send(res, 400, { badRequest: { code: 400, message: 'Malformed request url' } });
    }
    if (!m[2]) {
      if (method !== 'GET') return send(res, 405, { computeFault: { code: 405, message: 'Method not allowed' } });
      const list = [...this.snapshots.values()].filter((s) => s.projectId === tok.projectId);
      return send(res, 200, { snapshots: list.map((s) => this.snapView(s)) });
    }
    const snap = this.snapshots.get(m[2]);
    if (!snap || snap.projectId !== tok.projectId) return send(res, 404, { itemNotFound: { code: 404, message: `Snapshot ${m[2]} could not be found.` } });
    if (method === 'GET') return send(res, 200, { snapshot: this.snapView(snap) });
    if (method === 'DELETE') {
      if (!tok.roles.some((r) => ROLES_WRITE.includes(r))) {
        return send(res, 403, { forbidden: { code: 403, message: 'Policy does not allow volume:delete_snapshot to be performed.' } });
      }
      if (snap.status !== 'available' && snap.status !== 'error') {
        return send(res, 400, { badRequest: { code: 400, message: 'Invalid snapshot: Volume Snapshot status must be available or error and must not be part of a group.' } });
      }
      snap.status = 'deleting';
      this.later(this.opts.stepMs * 2, () => {
        if (this.busySnapshots.has(snap.id)) snap.status = 'available'; // SnapshotIsBusy: silently back
        else this.snapshots.delete(snap.id);
      });
      res.writeHead(202);
      return void res.end();
    }
    send(res, 405, { computeFault: { code: 405, message: 'Method not allowed' } });
  }
}

function hdr(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function cmpV(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1! - b1! || a2! - b2!;
}

function send(res: http.ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': text === '' && contentType === 'application/json' ? 'text/html; charset=UTF-8' : contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function unauthorized(res: http.ServerResponse): void {
  res.setHeader('WWW-Authenticate', 'Keystone uri="/identity"');
  send(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
}

/**
 * A ready fake: one project with a `demo` user (member), a reader user, an application credential,
 * an image-backed server `web1` and a boot-from-volume server `db1`.
 */
export async function startFakeCloud(opts: FakeCloudOptions & { tls?: { key: Buffer; cert: Buffer } } = {}): Promise<{
  cloud: FakeCloud;
  url: string;
  close: () => Promise<void>;
  projectId: string;
  demo: FakeUser;
  reader: FakeUser;
  appCred: FakeAppCred;
  web1: FakeServer;
  db1: FakeServer;
}> {
  const cloud = new FakeCloud(opts);
  const { url, close } = await cloud.start(opts.tls);
  const projectId = cloud.addProject();
  const demo = cloud.addUser({ name: 'demo', password: 'demo-pass-Secr3t', projectId });
  const reader = cloud.addUser({ name: 'auditor', password: 'auditor-pass-Secr3t', projectId, roles: ['reader'] });
  const appCred = cloud.addAppCred({ name: 'backup-agent', secret: 'rEaqvJka48mpvAppSecret', userId: demo.id, projectId });
  const web1 = cloud.addServer({ name: 'web1', projectId, userId: demo.id });
  const db1 = cloud.addServer({ name: 'db1', projectId, userId: demo.id, volumeBacked: true, extraVolumes: 1 });
  cloud.selfServerId = web1.id;
  return { cloud, url, close, projectId, demo, reader, appCred, web1, db1 };
}
