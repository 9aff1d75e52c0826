/**
 * WORKAROUND for a race in Repository.addSealedBlob (src/repo/repository.ts, not owned by the
 * backup side): when a call awaits finishPack() (waiting for an upload slot) another call can
 * start a new PackWriter, which the first call then replaces with its own — the blobs added to
 * the replaced writer are marked pending but never uploaded nor indexed, so a snapshot names
 * blobs that are not in the repository. Several files stored at once (storeStream on one
 * repository, as the archiver does) trigger it. Until addSealedBlob re-reads `this.packers`
 * after its await, calls are serialised here; the wait for an upload slot was back-pressure
 * for every stream anyway.
 */
import type { Repository } from '../repo/repository.js';

const GUARDED = Symbol('lifeboat.serialisedBlobWrites');

export function serialiseBlobWrites(repo: Repository): void {
  const r = repo as Repository & { [GUARDED]?: true };
  if (r[GUARDED]) return;
  r[GUARDED] = true;
  const original = repo.addSealedBlob.bind(repo);
  let chain: Promise<unknown> = Promise.resolve();
  repo.addSealedBlob = (blob) => {
    const p = chain.then(() => original(blob));
    chain = p.catch(() => undefined);
    return p;
  };
}
