/** Cinder v3 snapshots (the data of volume-backed instance snapshots). */
import { parseJson } from './http.js';
import type { KeystoneSession } from './keystone.js';

export interface CinderSnapshot {
  id: string;
  status: string;
  volume_id: string;
  name?: string | null;
  size?: number;
  created_at: string;
}

/** Cinder timestamps have no zone ("2019-03-12T04:42:00.809352"): they are UTC. */
export function cinderTime(s: string): number {
  return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(s) ? s : s + 'Z');
}

export class Cinder {
  constructor(private readonly ks: KeystoneSession) {}

  async getSnapshot(id: string): Promise<CinderSnapshot | null> {
    const root = await this.ks.apiRoot('block-storage');
    const res = await this.ks.request('Cinder', { method: 'GET', url: `${root}/snapshots/${encodeURIComponent(id)}` });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.ks.fail('Cinder', `GET snapshot ${id}`, res);
    return parseJson<{ snapshot: CinderSnapshot }>(res).snapshot;
  }

  /** DELETE (async, 202): 'accepted', 'gone' (404), or 'refused' with the reason (400 not available/error). */
  async deleteSnapshot(id: string): Promise<{ result: 'accepted' | 'gone' } | { result: 'refused'; reason: string }> {
    const root = await this.ks.apiRoot('block-storage');
    const res = await this.ks.request('Cinder', { method: 'DELETE', url: `${root}/snapshots/${encodeURIComponent(id)}` });
    if (res.status === 202 || res.status === 204) return { result: 'accepted' };
    if (res.status === 404) return { result: 'gone' };
    if (res.status === 400 || res.status === 409 || res.status === 403) return { result: 'refused', reason: this.ks.fail('Cinder', `deleting snapshot ${id}`, res).message };
    throw this.ks.fail('Cinder', `deleting snapshot ${id}`, res);
  }
}
