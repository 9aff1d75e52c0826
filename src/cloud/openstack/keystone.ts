/**
 * Keystone v3: password and application-credential tokens, reused until shortly before they
 * expire and renewed once on a service's 401; endpoint choice from the token's catalog.
 */
import { CloudError, redact, registerSecret } from '../errors.js';
import { errorMessage, header, httpRequest, parseJson, type HttpOptions, type HttpRequest, type HttpResponse } from './http.js';
import type { AuthSpec, ResolvedCloud } from './config.js';

export type ServiceType = 'compute' | 'image' | 'block-storage';

/** Catalog types per service, in order of preference (os-service-types aliases). */
const TYPE_ALIASES: Record<ServiceType, string[]> = {
  compute: ['compute'],
  image: ['image'],
  'block-storage': ['block-storage', 'volumev3', 'volume', 'block-store', 'volumev2'],
};

interface CatalogEndpoint {
  interface: string;
  region?: string | null;
  region_id?: string | null;
  url: string;
}
interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

interface TokenBody {
  token: {
    expires_at: string;
    project?: { id: string; name?: string };
    catalog?: CatalogEntry[];
    roles?: { name: string }[];
  };
}

/** The token URL keystoneauth posts to: auth_url + /v3 (unless already there) + /auth/tokens. */
export function tokenUrl(authUrl: string): string {
  // a Keystone v2.0 URL (old openrc files) names the same Keystone: use its v3 API
  const base = authUrl.replace(/\/+$/, '').replace(/\/v2\.0$/, '');
  return `${/\/v3$/.test(base) ? base : base + '/v3'}/auth/tokens`;
}

export function authBody(auth: AuthSpec): unknown {
  if (auth.type === 'password') {
    return {
      auth: {
        identity: { methods: ['password'], password: { user: { ...auth.user, password: auth.password } } },
        ...(auth.project ? { scope: { project: auth.project } } : {}),
      },
    };
  }
  // never a scope with an application credential: Keystone answers 401
  const cred: Record<string, unknown> = auth.id ? { id: auth.id, secret: auth.secret } : { name: auth.name, secret: auth.secret, user: auth.user };
  return { auth: { identity: { methods: ['application_credential'], application_credential: cred } } };
}

/** Picks an endpoint URL from the catalog by service type, interface and region (no silent fallback). */
export function pickEndpoint(catalog: CatalogEntry[], type: ServiceType, iface: string, region: string | undefined): string | undefined {
  for (const t of TYPE_ALIASES[type]) {
    for (const entry of catalog.filter((e) => e.type === t)) {
      const ep = entry.endpoints.find(
        (e) => e.interface.replace(/URL$/, '').toLowerCase() === iface && (!region || (e.region_id || e.region) === region),
      );
      if (ep) return ep.url.replace(/\/+$/, '');
    }
  }
  return undefined;
}

/** A token refreshed this long before it expires. */
const REFRESH_MARGIN_MS = 5 * 60_000;

export class KeystoneSession {
  private tok: { value: string; expiresAt: number; issuedAt: number; catalog: CatalogEntry[]; projectId?: string } | null = null;
  private versionedUrls = new Map<ServiceType, string>();
  readonly where: string;

  constructor(
    readonly cloud: ResolvedCloud,
    readonly http: HttpOptions,
  ) {
    this.where = `openstack cloud "${cloud.name}"`;
  }

  /** A valid token; re-authenticates when none is held, it expires within 5 minutes, or minValidMs asks for more. */
  async token(minValidMs = REFRESH_MARGIN_MS): Promise<string> {
    // short-lived tokens: renew at the last quarter of their life instead
    const margin = this.tok ? Math.min(minValidMs, (this.tok.expiresAt - this.tok.issuedAt) / 4) : 0;
    if (this.tok && this.tok.expiresAt - Date.now() > margin) return this.tok.value;
    await this.authenticate();
    return this.tok!.value;
  }

  /** A token obtained just now (Nova reuses it for the image upload: start snapshots with a fresh one). */
  async freshToken(): Promise<string> {
    if (this.tok && Date.now() - this.tok.issuedAt < 60_000) return this.tok.value;
    await this.authenticate();
    return this.tok!.value;
  }

  get projectId(): string | undefined {
    return this.tok?.projectId;
  }

  private async authenticate(): Promise<void> {
    const url = tokenUrl(this.cloud.authUrl);
    const res = await httpRequest({ method: 'POST', url, body: authBody(this.cloud.auth) }, this.http).catch((e: unknown) => {
      if (e instanceof CloudError) throw new CloudError(e.kind, `${this.where}: Keystone: ${e.message}`);
      throw e;
    });
    if (res.status === 401) {
      const receipt = header(res, 'openstack-auth-receipt') ? ' (the user needs multi-factor authentication: use an application credential)' : '';
      throw new CloudError('auth', `${this.where}: authentication failed at ${new URL(url).origin}: wrong or expired credentials (401: ${errorMessage(res)})${receipt}`, 401);
    }
    if (res.status === 403) throw new CloudError('forbidden', `${this.where}: Keystone refused the token (403: ${errorMessage(res)})`, 403);
    if (res.status === 404) throw new CloudError('config', `${this.where}: no Keystone v3 at ${url} (404): check auth_url`, 404);
    if (res.status !== 201 && res.status !== 200) {
      throw new CloudError(res.status >= 500 ? 'failed' : 'bad-request', `${this.where}: Keystone answered ${res.status}: ${errorMessage(res)}`, res.status);
    }
    const value = header(res, 'x-subject-token');
    if (!value) throw new CloudError('failed', `${this.where}: Keystone returned no X-Subject-Token`);
    registerSecret(value);
    const body = parseJson<TokenBody>(res);
    const expiresAt = Date.parse(body.token.expires_at);
    if (!body.token.catalog || body.token.catalog.length === 0) {
      throw new CloudError('config', `${this.where}: the token has no service catalog (unscoped? set a project)`);
    }
    this.tok = {
      value,
      issuedAt: Date.now(),
      expiresAt: Number.isFinite(expiresAt) ? expiresAt : Date.now() + 3600_000,
      catalog: body.token.catalog,
      ...(body.token.project?.id ? { projectId: body.token.project.id } : {}),
    };
    this.http.debug?.(`${this.where}: token obtained, expires ${body.token.expires_at}`);
  }

  /** The service's base URL from the catalog (as listed, trailing slashes removed). */
  async endpoint(type: ServiceType): Promise<string> {
    await this.token();
    const url = pickEndpoint(this.tok!.catalog, type, this.cloud.interface, this.cloud.region);
    if (!url) {
      const region = this.cloud.region ? ` in region ${this.cloud.region}` : '';
      throw new CloudError('config', `${this.where}: the catalog has no ${type} endpoint with interface ${this.cloud.interface}${region}`);
    }
    return url;
  }

  /** The versioned API root we talk to: compute …/v2.1, image …/v2, block-storage …/v3/<project>. */
  async apiRoot(type: ServiceType): Promise<string> {
    const cached = this.versionedUrls.get(type);
    if (cached) return cached;
    const ep = await this.endpoint(type);
    let root: string;
    if (type === 'compute') root = /\/v2(\.1)?(\/[^/]+)?$/.test(ep) ? ep : `${ep}/v2.1`;
    else if (type === 'image') root = `${ep.replace(/\/v2(\.\d+)?$/, '')}/v2`;
    else if (/\/v3(\/|$)/.test(ep)) root = ep;
    else if (/\/v[12](\/|$)/.test(ep)) root = ep.replace(/\/v[12](\/|$)/, '/v3$1');
    else root = `${ep}/v3/${this.projectId ?? ''}`.replace(/\/+$/, '');
    this.versionedUrls.set(type, root);
    return root;
  }

  /** Unversioned image endpoint: Glance's `next` links are relative to it. */
  async imageEndpoint(): Promise<string> {
    return (await this.endpoint('image')).replace(/\/v2(\.\d+)?$/, '');
  }

  /**
   * An authenticated request to a service. A 401 renews the token once and retries; network errors
   * become one-line CloudErrors naming the cloud.
   */
  async request(service: string, req: HttpRequest, opts: { fresh?: boolean } = {}): Promise<HttpResponse> {
    let token = opts.fresh ? await this.freshToken() : await this.token();
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await httpRequest({ ...req, headers: { ...req.headers, 'X-Auth-Token': token } }, this.http);
      } catch (e) {
        if (e instanceof CloudError) throw new CloudError(e.kind, `${this.where}: ${service}: ${e.message}`);
        throw e;
      }
      if (res.status === 401 && attempt === 0) {
        this.tok = null;
        token = await this.token();
        continue;
      }
      if (res.status === 401) {
        throw new CloudError('auth', `${this.where}: ${service} rejected a new token (401: ${errorMessage(res)})`, 401);
      }
      return res;
    }
  }

  /** For messages: the error of a response, one line, naming the cloud. */
  fail(service: string, what: string, res: HttpResponse): CloudError {
    const msg = errorMessage(res);
    let kind: ConstructorParameters<typeof CloudError>[0];
    let why = '';
    if (res.status === 403) {
      kind = /quota|limit/i.test(msg) ? 'quota' : 'forbidden';
      if (kind === 'forbidden') why = ' (does the user have the member role in this project?)';
    } else if (res.status === 413 || (res.status === 400 && /quota/i.test(msg))) kind = 'quota';
    else if (res.status === 404) kind = 'not-found';
    else if (res.status === 409) kind = 'conflict';
    else if (res.status === 400 || res.status === 406) kind = 'bad-request';
    else kind = 'failed';
    return new CloudError(kind, redact(`${this.where}: ${service}: ${what} failed (${res.status}: ${msg})${why}`), res.status);
  }
}
