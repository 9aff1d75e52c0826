/** Glance v2 images: list (property filters, paging with relative `next`), get, delete, protect. */
import { CloudError } from '../errors.js';
import { parseJson } from './http.js';
import type { KeystoneSession } from './keystone.js';

/** An image as Glance v2 returns it: properties flattened to top-level string values. */
export interface GlanceImage {
  id: string;
  name: string | null;
  status: string;
  protected: boolean;
  size: number | null;
  created_at: string;
  updated_at?: string;
  owner?: string;
  visibility?: string;
  [property: string]: unknown;
}

export class Glance {
  constructor(private readonly ks: KeystoneSession) {}

  /** Every image matching the property filters (all pages), newest first. */
  async list(filters: Record<string, string>, pageSize = 100): Promise<GlanceImage[]> {
    const root = await this.ks.apiRoot('image');
    const unversioned = await this.ks.imageEndpoint();
    const q = new URLSearchParams({ ...filters, sort: 'created_at:desc', limit: String(pageSize) });
    let url: string | undefined = `${root}/images?${q.toString()}`;
    const out: GlanceImage[] = [];
    const seen = new Set<string>();
    for (let page = 0; url; page++) {
      if (page > 10_000) throw new CloudError('failed', `${this.ks.where}: Glance paging does not end`);
      const res = await this.ks.request('Glance', { method: 'GET', url });
      if (res.status !== 200) throw this.ks.fail('Glance', 'listing images', res);
      const body = parseJson<{ images: GlanceImage[]; next?: string }>(res);
      for (const img of body.images) {
        if (!seen.has(img.id)) out.push(img);
        seen.add(img.id);
      }
      // `next` is relative to the unversioned endpoint ("/v2/images?...&marker=<id>")
      url = body.next ? (/^https?:/.test(body.next) ? body.next : unversioned + body.next) : undefined;
    }
    return out;
  }

  async get(id: string): Promise<GlanceImage | null> {
    const root = await this.ks.apiRoot('image');
    const res = await this.ks.request('Glance', { method: 'GET', url: `${root}/images/${encodeURIComponent(id)}` });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.ks.fail('Glance', `GET image ${id}`, res);
    return parseJson<GlanceImage>(res);
  }

  /** DELETE: 'deleted' (204, or 404: already gone), or the status that kept it (403 protected, 409 in use). */
  async delete(id: string): Promise<{ ok: true } | { ok: false; status: number; reason: string }> {
    const root = await this.ks.apiRoot('image');
    const res = await this.ks.request('Glance', { method: 'DELETE', url: `${root}/images/${encodeURIComponent(id)}` });
    if (res.status === 204 || res.status === 200 || res.status === 404) return { ok: true };
    if (res.status === 403 || res.status === 409) return { ok: false, status: res.status, reason: this.ks.fail('Glance', `deleting image ${id}`, res).message };
    throw this.ks.fail('Glance', `deleting image ${id}`, res);
  }

  async setProtected(id: string, value: boolean): Promise<GlanceImage> {
    const root = await this.ks.apiRoot('image');
    const res = await this.ks.request('Glance', {
      method: 'PATCH',
      url: `${root}/images/${encodeURIComponent(id)}`,
      body: [{ op: 'replace', path: '/protected', value }],
      contentType: 'application/openstack-images-v2.1-json-patch',
    });
    if (res.status === 404) throw new CloudError('not-found', `${this.ks.where}: image ${id} not found`, 404);
    if (res.status !== 200) throw this.ks.fail('Glance', `${value ? 'protecting' : 'unprotecting'} image ${id}`, res);
    return parseJson<GlanceImage>(res);
  }
}
