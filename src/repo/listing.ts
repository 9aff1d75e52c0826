import type { Storage } from '../storage/types.js';
import { isHexId } from '../util/hex.js';

export type ContentFolder = 'index' | 'snapshots' | 'keys' | 'data';

export interface ListedObject {
  id: string;
  size: number;
  mtimeMs: number;
}

/**
 * The content-named objects under a folder (format §1): `data/<xx>/<id>` for packs, `<folder>/<id>`
 * otherwise. Names that do not match the pattern (temporary files, probes) are ignored.
 */
export async function listObjects(storage: Storage, folder: ContentFolder): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const o of storage.list(`${folder}/`)) {
    const id = o.name.slice(o.name.lastIndexOf('/') + 1);
    if (!isHexId(id)) continue;
    const expected = folder === 'data' ? `data/${id.slice(0, 2)}/${id}` : `${folder}/${id}`;
    if (o.name !== expected) continue;
    out.push({ id, size: o.size, mtimeMs: o.mtimeMs });
  }
  return out;
}
