/** The roles a sealed object can have; each is bound into the AEAD's associated data. */
export type ObjectType = 'config' | 'index' | 'snapshot' | 'lock' | 'pack-header';

const AD_CACHE = new Map<string, Buffer>();

/** Associated data for a sealed object of the given type: ASCII `lifeboat/v1/<type>`. */
export function objectAd(type: ObjectType | 'key'): Buffer {
  let ad = AD_CACHE.get(type);
  if (!ad) {
    ad = Buffer.from(`lifeboat/v1/${type}`, 'ascii');
    AD_CACHE.set(type, ad);
  }
  return ad;
}
