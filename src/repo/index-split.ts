import type { IndexPack } from './formats.js';

/** Blobs per index file (format §7): a few MiB stored, so no reader ever holds a huge one. */
export const INDEX_FILE_BLOBS = 50_000;

/**
 * Groups packs into index files of at most `maxBlobs` blobs. A pack holding more blobs than
 * that (many tiny blobs) is split: each file names it with a part of its blobs (format §7).
 */
export function splitIndexPacks(packs: Iterable<IndexPack>, maxBlobs = INDEX_FILE_BLOBS): IndexPack[][] {
  const files: IndexPack[][] = [];
  let current: IndexPack[] = [];
  let count = 0;
  const push = (p: IndexPack) => {
    if (count > 0 && count + p.blobs.length > maxBlobs) {
      files.push(current);
      current = [];
      count = 0;
    }
    current.push(p);
    count += p.blobs.length;
  };
  for (const p of packs) {
    for (let i = 0; i < p.blobs.length; i += maxBlobs) {
      push(i === 0 && p.blobs.length <= maxBlobs ? p : { ...p, blobs: p.blobs.slice(i, i + maxBlobs) });
    }
  }
  if (current.length > 0) files.push(current);
  return files;
}
