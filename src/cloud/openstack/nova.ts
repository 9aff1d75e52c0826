/** Nova (compute v2.1): microversion negotiation, the server, and the snapshot actions. */
import { CloudError } from '../errors.js';
import { header, parseJson, type HttpResponse } from './http.js';
import type { KeystoneSession } from './keystone.js';

/** The microversion lifeboat wants: createBackup/createImage return {"image_id"} from 2.45. */
export const WANTED_MICROVERSION = '2.45';

export interface NovaServer {
  id: string;
  name: string;
  status: string;
  tenant_id?: string;
  'OS-EXT-STS:task_state'?: string | null;
  'OS-EXT-STS:vm_state'?: string;
  /** "" for volume-backed servers */
  image: '' | { id: string } | null;
  flavor?: { id?: string; original_name?: string };
  addresses?: Record<string, unknown[]>;
  'os-extended-volumes:volumes_attached'?: { id: string; delete_on_termination?: boolean }[];
  key_name?: string | null;
  locked?: boolean;
  metadata?: Record<string, string>;
}

function cmpVersion(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1! - b1! || a2! - b2!;
}

export class Nova {
  private microversion: string | null = null;

  constructor(private readonly ks: KeystoneSession) {}

  /** GET the versioned root: use 2.45 when the cloud's max is at least that, else 2.1 (no header). */
  async negotiate(): Promise<string> {
    if (this.microversion) return this.microversion;
    const root = (await this.ks.apiRoot('compute')).replace(/(\/v2(\.1)?)\/[^/]+$/, '$1');
    let mv = '2.1';
    try {
      const res = await this.ks.request('Nova', { method: 'GET', url: root });
      if (res.status === 200) {
        const v = parseJson<{ version?: { version?: string; min_version?: string } }>(res).version;
        if (v?.version && /^\d+\.\d+$/.test(v.version) && cmpVersion(v.version, WANTED_MICROVERSION) >= 0) mv = WANTED_MICROVERSION;
      }
    } catch (e) {
      if (e instanceof CloudError && (e.kind === 'auth' || e.kind === 'unreachable')) throw e;
    }
    this.microversion = mv;
    this.ks.http.debug?.(`Nova microversion ${mv}`);
    return mv;
  }

  private async headers(): Promise<Record<string, string>> {
    const mv = await this.negotiate();
    return mv === '2.1' ? {} : { 'OpenStack-API-Version': `compute ${mv}`, 'X-OpenStack-Nova-API-Version': mv };
  }

  async getServer(id: string): Promise<NovaServer> {
    const root = await this.ks.apiRoot('compute');
    const res = await this.ks.request('Nova', { method: 'GET', url: `${root}/servers/${encodeURIComponent(id)}`, headers: await this.headers() });
    if (res.status === 404) {
      throw new CloudError('not-found', `${this.ks.where}: server ${id} is not in this project (404): the credentials belong to another project, or the id is wrong`, 404);
    }
    if (res.status !== 200) throw this.ks.fail('Nova', `GET server ${id}`, res);
    return parseJson<{ server: NovaServer }>(res).server;
  }

  /** POST /servers/{id}/action with a fresh token (Nova reuses it for the upload). Returns the raw response. */
  async action(id: string, body: unknown, timeoutMs?: number): Promise<HttpResponse> {
    const root = await this.ks.apiRoot('compute');
    return this.ks.request(
      'Nova',
      { method: 'POST', url: `${root}/servers/${encodeURIComponent(id)}/action`, headers: await this.headers(), body, ...(timeoutMs ? { timeoutMs } : {}) },
      { fresh: true },
    );
  }

  /** The new image's id from a 202: {"image_id"} (≥ 2.45) or the Location header (< 2.45, may be absent). */
  static imageIdFrom(res: HttpResponse): string | undefined {
    if (res.text.trim()) {
      try {
        const j = JSON.parse(res.text) as { image_id?: string | null };
        if (j.image_id) return j.image_id;
      } catch {
        // no body
      }
    }
    const loc = header(res, 'location');
    const m = loc ? /\/images\/([^/?#]+)\/?$/.exec(loc) : null;
    return m ? decodeURIComponent(m[1]!) : undefined;
  }
}
